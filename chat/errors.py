"""The one exception type of the chat: it carries a protocol error code."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chat.protocol import CloseCode

# The error codes of docs/protocol-v1.md (Server to client).
ERROR_CODES = frozenset(
    {
        "bad_request",
        "too_long",
        "empty",
        "rate_limited",
        "room_archived",
        "muted",
        "forbidden",
        "not_found",
        "unavailable",
        # Extensions (docs/protocol.md, Files and images): a file over
        # CHAT_UPLOAD_MAX_BYTES (HTTP 413), an upload that would take its uploader's
        # files over CHAT_UPLOAD_QUOTA_BYTES (HTTP 413), and `attachments` naming an
        # upload that is not the sender's own, unattached one.
        "too_large",
        "over_quota",
        "bad_attachment",
        # Extensions (docs/protocol.md, Rooms people make): a slug or a membership that
        # exists already (HTTP 409), the last owner leaving a room that is not archived
        # (HTTP 409), and an invite that expired, was used up or was revoked (HTTP 410).
        "conflict",
        "last_owner",
        "invite_invalid",
    }
)


class ChatError(Exception):
    """A refusal the client is told about, as `error` {code, detail}."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        retry_after: float | None = None,
        close_code: CloseCode | None = None,
        limit: int | None = None,
        quota: int | None = None,
        used: int | None = None,
    ) -> None:
        assert code in ERROR_CODES, code
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.retry_after = retry_after
        # Set when the refusal ends the socket (a deactivated account: 4403).
        self.close_code = close_code
        # The limit a `too_large` refusal went over, in bytes.
        self.limit = limit
        # An `over_quota` refusal's quota, and the bytes the uploader's files take.
        self.quota = quota
        self.used = used
