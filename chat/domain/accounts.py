"""People's accounts: who may log in, and which names a person may sign up under.

Bot accounts (chat.domain.bots) publish with keys and never log in: the backend
below refuses them before any password is checked, so that a password an
admin once gave a bot opens nothing. The names of bots, the
publisher's name (CHAT_PUBLISHER) and CHAT_RESERVED_USERNAMES are not
offered at sign-up, in any case: nobody signs up as `announcements` and
speaks for the site.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.apps import AppConfig
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User
from django.core.checks import CheckMessage
from django.core.checks import Warning as CheckWarning
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.http import HttpRequest

from chat.domain.bots import is_bot
from chat.models import Bot


class PeopleBackend(ModelBackend):
    """Django's ModelBackend for people alone: a bot's name ends a log-in, whatever the
    password, and a bot's session (were one ever made) reads as nobody.

    First of AUTHENTICATION_BACKENDS. Its PermissionDenied ends
    django.contrib.auth.authenticate, so the ModelBackend listed after it (kept
    for the sessions made before this one existed) never checks the password again.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if isinstance(username, str) and Bot.objects.filter(user__username=username).exists():
            raise PermissionDenied("bot accounts do not log in")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            raise PermissionDenied("wrong username or password")
        return user

    def get_user(self, user_id: Any) -> Any:
        # The bot mark comes with the account: a page load costs no extra query.
        user = get_user_model()._default_manager.select_related("chat_bot").filter(pk=user_id)
        found = user.first()
        return found if found is not None and self.user_can_authenticate(found) else None

    def user_can_authenticate(self, user: Any) -> bool:
        return super().user_can_authenticate(user) and not is_bot(user)


def username_reserved(username: str) -> bool:
    """Whether a person may not sign up as `username`: a bot's, the publisher's or a
    reserved name, compared without case."""
    folded = username.casefold()
    reserved = {settings.CHAT_PUBLISHER, *settings.CHAT_RESERVED_USERNAMES}
    if folded in {name.casefold() for name in reserved}:
        return True
    return Bot.objects.filter(user__username__iexact=username).exists()


class SignupForm(UserCreationForm[User]):
    """Django's sign-up form, refusing the names that speak for the site."""

    def clean_username(self) -> str:
        # Django returns None when it found the name taken (its error is recorded).
        username = super().clean_username()
        if username and username_reserved(username):
            raise forms.ValidationError(
                "This name is reserved for the site. Please choose another.", code="reserved"
            )
        return username


def publisher_check(
    *, app_configs: Sequence[AppConfig] | None, databases: Sequence[str] | None, **kwargs: Any
) -> list[CheckMessage]:
    """System check (database tag): CHAT_PUBLISHER does not name a person's account.

    Such an account (signed up before names were reserved) is never used to publish:
    chat.actions.publish refuses until it is renamed or another publisher name is chosen.
    """
    problems: list[CheckMessage] = []
    for alias in databases or []:
        try:
            holders = list(
                get_user_model()
                .objects.using(alias)
                .filter(username__iexact=settings.CHAT_PUBLISHER, chat_bot__isnull=True)
                .values_list("username", flat=True)
            )
        except DatabaseError:
            continue  # no tables yet
        if holders:
            problems.append(
                CheckWarning(
                    f"CHAT_PUBLISHER={settings.CHAT_PUBLISHER!r} names a person's account"
                    f" ({holders[0]!r}) in database {alias!r}: publishing as it is refused.",
                    hint="Rename that account in the admin, or set CHAT_PUBLISHER to a name"
                    " nobody holds.",
                    id="chat.W002",
                )
            )
    return problems
