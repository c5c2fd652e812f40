"""Signing up and logging in (the form, and /api/token/), and the CSRF refusal page."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, login
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from chat.domain.accounts import SignupForm
from chat.domain.limits import (
    login_keys,
    signup_keys,
    throttle_count,
    throttle_wait,
    wait_detail,
)
from chat.errors import ChatError
from chat.web.tokens import token_issue
from chat.web.views.common import api_error, json_object


def too_many(request: HttpRequest, template: str, context: dict[str, Any], wait: float) -> Any:
    """A form page refused for flooding: 429, with the wait in words."""
    response = render(request, template, {**context, "throttled": wait_detail(wait)}, status=429)
    response["Retry-After"] = str(int(wait))
    return response


class LoginView(auth_views.LoginView):
    """Django's log-in, refusing guesses beyond CHAT_LOGIN_LIMIT before any password check."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        _, seconds = settings.CHAT_LOGIN_LIMIT
        keys = login_keys(request, str(request.POST.get("username", "")))
        wait = throttle_wait(keys, seconds=seconds)
        if wait:
            context = self.get_context_data(form=self.form_class(request))
            return too_many(request, "registration/login.html", context, wait)
        response = super().post(request, *args, **kwargs)
        if not request.user.is_authenticated:
            throttle_count(keys, seconds=seconds)
        return response


def signup(request: HttpRequest) -> HttpResponse:
    """Create an account and log it in; at most CHAT_SIGNUP_LIMIT tries per address."""
    if request.user.is_authenticated:
        return redirect("chat:lobby")
    form = SignupForm(request.POST or None)
    if request.method == "POST":
        count_keys, seconds = signup_keys(request), settings.CHAT_SIGNUP_LIMIT[1]
        wait = throttle_wait(count_keys, seconds=seconds)
        if wait:
            form = SignupForm()
            return too_many(request, "registration/signup.html", {"form": form}, wait)
        throttle_count(count_keys, seconds=seconds)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="chat.domain.accounts.PeopleBackend")
        return redirect("chat:lobby")
    return render(request, "registration/signup.html", {"form": form})


@csrf_exempt
@require_POST
def api_token(request: HttpRequest) -> JsonResponse:
    """Credentials in the body (no CSRF), or `{}` from a session (with CSRF)."""
    try:
        body = json_object(request)
    except ChatError as error:
        return api_error(400, error.code, error.detail)
    if not body:
        # No session, nothing for CSRF to protect: say 401 (as the contract does)
        # rather than letting csrf_protect answer an HTML 403.
        if not request.user.is_authenticated:
            return api_error(401, "unauthenticated", "log in, or send username and password")
        return _session_token(request)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        return api_error(400, "bad_request", "username and password must be strings")
    # The same budget as the log-in form: a token is a log-in.
    keys, seconds = login_keys(request, username), settings.CHAT_LOGIN_LIMIT[1]
    wait = throttle_wait(keys, seconds=seconds)
    if wait:
        response = JsonResponse(
            {"error": "rate_limited", "detail": wait_detail(wait), "retry_after": wait},
            status=429,
        )
        response["Retry-After"] = str(int(wait))
        return response
    user = authenticate(request, username=username, password=password)
    if user is None:
        throttle_count(keys, seconds=seconds)
        return api_error(401, "unauthenticated", "wrong username or password, or inactive user")
    return JsonResponse({"token": token_issue(user=user), "expires_in": settings.CHAT_TOKEN_TTL})


@csrf_protect
def _session_token(request: HttpRequest) -> JsonResponse:
    if not request.user.is_authenticated:
        return api_error(401, "unauthenticated", "log in, or send username and password")
    return JsonResponse(
        {"token": token_issue(user=request.user), "expires_in": settings.CHAT_TOKEN_TTL}
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF refusals: JSON under /api/, the site's own page elsewhere."""
    if request.path.startswith("/api/"):
        return api_error(403, "forbidden", f"CSRF check failed: {reason}")
    # Django's page carries inline styles, which the site's CSP refuses.
    return render(request, "403_csrf.html", status=403)
