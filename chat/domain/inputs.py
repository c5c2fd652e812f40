"""What people type, checked before anything is stored: message bodies, client ids, ids.

Every write that takes text (messages, names, searches) refuses the same
characters for the same reasons, from here.
"""

from __future__ import annotations

import re

from django.conf import settings

from chat.errors import ChatError
from chat.protocol import MAX_ID

# Ids beyond what the database stores are answered as "no such message".
MAX_NUMBER = MAX_ID

_SURROGATES_OR_NUL = re.compile("[\x00\ud800-\udfff]")

# The characters of Unicode's White_Space property. (str.strip() would also
# remove U+001C..U+001F, which are not white space.)
WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def text_check(value: str, *, field: str) -> None:
    """Refuse NUL and unpaired surrogates, which JSON peers and databases reject."""
    if _SURROGATES_OR_NUL.search(value):
        raise ChatError("bad_request", f"{field} contains NUL or an unpaired surrogate")


def body_clean(
    body: object, *, limit: int | None = None, noun: str = "message", may_be_empty: bool = False
) -> str:
    """Validate the body of a `noun`: a string, 1..`limit` (CHAT_BODY_MAX) code points
    once stripped (0 too when `may_be_empty`: a message with attachments)."""
    if not isinstance(body, str):
        raise ChatError("bad_request", "body must be a string")
    text_check(body, field="body")
    body = body.strip(WHITE_SPACE)
    limit = settings.CHAT_BODY_MAX if limit is None else limit
    if not body and not may_be_empty:
        raise ChatError("empty", f"the {noun} is empty")
    if len(body) > limit:
        raise ChatError("too_long", f"a {noun} has at most {limit} characters")
    return body


def client_id_clean(client_id: object) -> str | None:
    """Validate an optional client_id: absent/null, or a string of 1..64 characters."""
    if client_id is None:
        return None
    if not isinstance(client_id, str) or not 1 <= len(client_id) <= settings.CHAT_CLIENT_ID_MAX:
        limit = settings.CHAT_CLIENT_ID_MAX
        raise ChatError("bad_request", f"client_id must be a string of 1 to {limit} characters")
    text_check(client_id, field="client_id")
    return client_id
