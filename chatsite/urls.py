from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from chat.web.views.accounts import LoginView, signup

# The site's own error pages, and JSON under /api/ (chat/web/errorpages.py).
handler400 = "chat.web.errorpages.bad_request"
handler403 = "chat.web.errorpages.permission_denied"
handler404 = "chat.web.errorpages.page_not_found"
handler500 = "chat.web.errorpages.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/signup/", signup, name="signup"),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("chat.web.urls")),
]
