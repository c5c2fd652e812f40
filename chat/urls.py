from django.urls import path

from chat import views

app_name = "chat"

urlpatterns = [
    path("", views.lobby, name="lobby"),
    path("rooms/<str:slug>/", views.room_page, name="room"),
    path("dm/<str:username>/", views.direct, name="direct"),
    path("api/token/", views.api_token, name="api-token"),
    path("api/rooms/", views.api_rooms, name="api-rooms"),
    path("api/rooms/<str:slug>/messages/", views.api_messages, name="api-messages"),
    path("healthz", views.healthz, name="healthz"),
]
