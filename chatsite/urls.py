from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from chat.views import LoginView, signup

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/signup/", signup, name="signup"),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("chat.urls")),
]
