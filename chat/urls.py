from django.urls import path

from chat import views

app_name = "chat"

urlpatterns = [
    path("", views.lobby, name="lobby"),
    path("watch/", views.broadcasts_page, name="broadcasts"),
    path("rooms/<str:slug>/", views.room_page, name="room"),
    path("rooms/<str:slug>/live/", views.live_page, name="live"),
    path("rooms/<str:slug>/join/", views.join, name="join"),
    path("invite/<str:code>/", views.invite_page, name="invite"),
    path("dm/<str:username>/", views.direct, name="direct"),
    path("search/", views.search_page, name="search"),
    path("people/", views.people_page, name="people"),
    path("api/token/", views.api_token, name="api-token"),
    path("api/rooms/", views.api_rooms, name="api-rooms"),
    path("api/search/", views.api_search, name="api-search"),
    path("api/users/", views.api_users, name="api-users"),
    path("api/rooms/<str:slug>/messages/", views.api_messages, name="api-messages"),
    path("api/rooms/<str:slug>/", views.api_room, name="api-room"),
    path("api/rooms/<str:slug>/members/", views.api_members, name="api-members"),
    path("api/rooms/<str:slug>/members/<str:username>/", views.api_member, name="api-member"),
    path("api/rooms/<str:slug>/join/", views.api_join, name="api-join"),
    path("api/rooms/<str:slug>/invites/", views.api_invites, name="api-invites"),
    path("api/rooms/<str:slug>/invites/<str:code>/", views.api_invite, name="api-invite"),
    path("api/invites/<str:code>/accept/", views.api_invite_accept, name="api-invite-accept"),
    path("api/rooms/<str:slug>/notify/", views.api_notify, name="api-notify"),
    path("api/rooms/<str:slug>/state/", views.api_state, name="api-state"),
    path("api/uploads/", views.api_uploads, name="api-uploads"),
    path("files/<int:pk>/thumbnail/", views.file_thumbnail, name="file-thumbnail"),
    path("files/<int:pk>/<str:name>", views.file_download, name="file"),
    path("healthz", views.healthz, name="healthz"),
]
