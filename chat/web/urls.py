from django.urls import path

from chat.web.views import accounts, api, files, health, pages, people, search

app_name = "chat"

urlpatterns = [
    path("", pages.lobby, name="lobby"),
    path("watch/", pages.broadcasts_page, name="broadcasts"),
    path("rooms/<str:slug>/", pages.room_page, name="room"),
    path("rooms/<str:slug>/live/", pages.live_page, name="live"),
    path("rooms/<str:slug>/join/", pages.join, name="join"),
    path("invite/<str:code>/", pages.invite_page, name="invite"),
    path("dm/<str:username>/", pages.direct, name="direct"),
    path("search/", search.search_page, name="search"),
    path("people/", people.people_page, name="people"),
    path("api/token/", accounts.api_token, name="api-token"),
    path("api/rooms/", api.api_rooms, name="api-rooms"),
    path("api/search/", search.api_search, name="api-search"),
    path("api/users/", people.api_users, name="api-users"),
    path("api/rooms/<str:slug>/messages/", api.api_messages, name="api-messages"),
    path("api/rooms/<str:slug>/", api.api_room, name="api-room"),
    path("api/rooms/<str:slug>/members/", api.api_members, name="api-members"),
    path("api/rooms/<str:slug>/members/<str:username>/", api.api_member, name="api-member"),
    path("api/rooms/<str:slug>/join/", api.api_join, name="api-join"),
    path("api/rooms/<str:slug>/invites/", api.api_invites, name="api-invites"),
    path("api/rooms/<str:slug>/invites/<str:code>/", api.api_invite, name="api-invite"),
    path("api/invites/<str:code>/accept/", api.api_invite_accept, name="api-invite-accept"),
    path("api/rooms/<str:slug>/notify/", api.api_notify, name="api-notify"),
    path("api/rooms/<str:slug>/state/", api.api_state, name="api-state"),
    path("api/uploads/", api.api_uploads, name="api-uploads"),
    path("files/<int:pk>/thumbnail/", files.file_thumbnail, name="file-thumbnail"),
    path("files/<int:pk>/<str:name>", files.file_download, name="file"),
    path("healthz", health.healthz, name="healthz"),
]
