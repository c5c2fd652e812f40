"""Short-lived signed tokens for clients that carry no session cookie."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core import signing

from chat.protocol import CloseCode

SALT = "chat.token"


def _password_mark(user: User) -> str:
    # Part of the session hash: a password change invalidates every token.
    return user.get_session_auth_hash()[:16]


def token_issue(*, user: User) -> str:
    """A token naming `user`, valid for CHAT_TOKEN_TTL seconds."""
    return signing.dumps({"u": user.pk, "p": _password_mark(user)}, salt=SALT)


@dataclass(frozen=True)
class TokenCheck:
    user: User | None
    # The socket close code when the token does not authenticate: 4401 for a
    # bad or expired token, 4403 for a deactivated user.
    close_code: int | None


def token_check(token: str) -> TokenCheck:
    """Who a token names, or why it does not authenticate."""
    try:
        payload = signing.loads(token, salt=SALT, max_age=settings.CHAT_TOKEN_TTL)
        user = get_user_model().objects.get(pk=payload["u"])
    except (signing.BadSignature, KeyError, TypeError, ValueError, get_user_model().DoesNotExist):
        return TokenCheck(user=None, close_code=CloseCode.UNAUTHENTICATED)
    if _password_mark(user) != payload.get("p"):
        return TokenCheck(user=None, close_code=CloseCode.UNAUTHENTICATED)
    if not user.is_active:
        return TokenCheck(user=None, close_code=CloseCode.FORBIDDEN)
    return TokenCheck(user=user, close_code=None)
