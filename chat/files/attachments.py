"""Files and images: an upload's name and type, its thumbnail, and who may fetch it.

A file comes over HTTP first (`POST /api/uploads/` -> attachment_create): its
bytes go to the default storage under a random name, and its row, without a
message, belongs to its uploader. A `message.send` then names its ids, and
message_create attaches them in the message's own transaction
(attachments_attach). Uploads no message named are deleted a day later
(attachments_unattached_delete, run by `manage.py chat_uploads_cleanup`).

Nothing the client says about a file is believed: its type is sniffed from its
bytes (a small signature table, and Pillow reading an image whole: chat.files.images),
its name is cleaned, and only a PNG, JPEG, GIF or WebP that Pillow decoded is
ever shown inline. Everything else, SVG included, is a download. (docs/files.md)
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models.signals import post_delete
from django.utils import timezone

from chat.errors import ChatError
from chat.files.images import INLINE_TYPES, image_inspect
from chat.models import Attachment, Message, Room
from chat.protocol import MAX_ID

if TYPE_CHECKING:
    from django.db.models import QuerySet

# Code points of a cleaned name, and of the extension kept when a long one is cut.
NAME_MAX = 200
EXTENSION_MAX = 16
OCTET_STREAM = "application/octet-stream"
TEXT = "text/plain"
# Bytes read to tell a file's type.
SNIFF_BYTES = 4 * 1024

# (content type, [(offset, bytes), ...]): every pair must match. The common
# types a chat carries, so that a download says what it is; anything else is
# text (UTF-8 without control characters) or application/octet-stream.
SIGNATURES: list[tuple[str, list[tuple[int, bytes]]]] = [
    ("image/png", [(0, b"\x89PNG\r\n\x1a\n")]),
    ("image/jpeg", [(0, b"\xff\xd8\xff")]),
    ("image/gif", [(0, b"GIF87a")]),
    ("image/gif", [(0, b"GIF89a")]),
    ("image/webp", [(0, b"RIFF"), (8, b"WEBP")]),
    ("audio/wav", [(0, b"RIFF"), (8, b"WAVE")]),
    ("application/pdf", [(0, b"%PDF-")]),
    ("application/zip", [(0, b"PK\x03\x04")]),
    ("application/gzip", [(0, b"\x1f\x8b")]),
    ("application/x-7z-compressed", [(0, b"7z\xbc\xaf\x27\x1c")]),
    ("audio/ogg", [(0, b"OggS")]),
    ("audio/mpeg", [(0, b"ID3")]),
    ("video/webm", [(0, b"\x1aE\xdf\xa3")]),
    ("video/mp4", [(4, b"ftypisom")]),
    ("video/mp4", [(4, b"ftypmp4")]),
]
_IMAGE_FORMATS = {content_type: name for name, content_type in INLINE_TYPES.items()}
# What a text file may hold besides printable characters.
_TEXT_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_PATH_SEPARATORS = re.compile(r"[/\\]")
_SPACES = re.compile(r"\s+")
_EXTENSION = re.compile(rf"\.[\w-]{{1,{EXTENSION_MAX}}}\Z")


# --- names --------------------------------------------------------------------------------


def name_clean(raw: object) -> str:
    """A file's name as shown and downloaded: never a path, never control characters.

    Only the last part of a path is kept; control and format characters (bidi
    overrides among them), surrogates and NUL are dropped; runs of white space
    become one space; dots and spaces at either end go (no hidden names, none
    that Windows refuses). A name over NAME_MAX code points is cut, keeping its
    extension. Nothing left: "file".
    """
    name = unicodedata.normalize("NFC", raw if isinstance(raw, str) else "")
    name = _PATH_SEPARATORS.split(name)[-1]
    name = "".join(character for character in name if _kept(character))
    name = _SPACES.sub(" ", name).strip(" .")
    if len(name) > NAME_MAX:
        match = _EXTENSION.search(name)
        extension = match[0] if match else ""
        name = name[: NAME_MAX - len(extension)].rstrip(" .") + extension
    return name or "file"


def _kept(character: str) -> bool:
    category = unicodedata.category(character)
    if category in ("Cc", "Cs", "Co", "Cn"):
        # A tab or a line break is white space, which becomes a space.
        return character in "\t\n\r"
    # Format characters hide what a name says (U+202E turns "gpj.exe" around);
    # the joiners stay, which emoji need.
    return category != "Cf" or character in "\u200c\u200d"


# --- types --------------------------------------------------------------------------------


def type_sniff(head: bytes) -> str:
    """The content type the first bytes of a file say it is (SIGNATURES, else text or
    application/octet-stream). Images are only claimed here: image_inspect decides."""
    for content_type, parts in SIGNATURES:
        if all(head[offset : offset + len(magic)] == magic for offset, magic in parts):
            return content_type
    if head and _looks_like_text(head):
        return TEXT
    return OCTET_STREAM


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        # Cut in the middle of a character at the end of what was read.
        if error.start < len(head) - 3:
            return False
        text = head[: error.start].decode("utf-8")
    return not _TEXT_CONTROLS.search(text)


# --- uploads ------------------------------------------------------------------------------


def upload_limit_error() -> ChatError:
    """The refusal of a file over CHAT_UPLOAD_MAX_BYTES (HTTP 413)."""
    limit = settings.CHAT_UPLOAD_MAX_BYTES
    return ChatError(
        "too_large", f"a file has at most {size_words(limit)} ({limit} bytes)", limit=limit
    )


def size_words(size: int) -> str:
    """A size in bytes as people read it: 512 bytes, 3.4 KiB, 10 MiB."""
    if size < 1024:
        return f"{size} bytes"
    for unit in ("KiB", "MiB", "GiB"):
        size_in_unit = size / 1024
        if size_in_unit < 1024 or unit == "GiB":
            text = f"{size_in_unit:.1f}".removesuffix(".0")
            return f"{text} {unit}"
        size = int(size_in_unit)
    raise AssertionError("unreachable")


def quota_check(*, uploader_id: int, adding: int) -> None:
    """ChatError(over_quota) when `adding` bytes would take the uploader's stored files
    (Attachment.objects.stored_bytes) over CHAT_UPLOAD_QUOTA_BYTES (HTTP 413)."""
    quota = settings.CHAT_UPLOAD_QUOTA_BYTES
    used = Attachment.objects.filter(uploader_id=uploader_id).stored_bytes()
    if used + adding > quota:
        raise ChatError(
            "over_quota",
            f"your files take {size_words(used)} of the {size_words(quota)} each person may"
            f" keep: this one ({size_words(adding)}) does not fit",
            quota=quota,
            used=used,
        )


def attachment_create(*, uploader: User, file: File[Any], name: object) -> Attachment:
    """Store an uploaded file for `uploader`, attached to no message yet; the attachment.

    Over CHAT_UPLOAD_MAX_BYTES: ChatError(too_large). The type is sniffed from
    the bytes, an image is decoded and given a thumbnail (chat.files.images: within a
    worker's memory, on its decode pool, or ChatError(unavailable) when the pool
    stays full), the name is cleaned. The bytes are stored before the row, and
    removed again if the row fails.

    What would take the uploader's files (with their thumbnails) over
    CHAT_UPLOAD_QUOTA_BYTES: ChatError(over_quota), checked before the decode
    and again, with the file's and its thumbnail's bytes, while the uploader's
    row is locked, in the transaction that stores the row: two uploads at once
    never both fit into the room that one leaves.
    """
    size = file.size
    if size is None or size > settings.CHAT_UPLOAD_MAX_BYTES:
        raise upload_limit_error()
    quota_check(uploader_id=uploader.pk, adding=size)  # before the costly part
    file.seek(0)
    content_type = type_sniff(file.read(SNIFF_BYTES))
    inspected = None
    if content_type in _IMAGE_FORMATS:
        inspected = image_inspect(file, claimed=content_type)
        if inspected is None:
            content_type = OCTET_STREAM  # claims to be an image, is not one
    thumbnail_size = 0 if inspected is None else len(inspected.thumbnail)
    file.seek(0)
    key = f"{timezone.now():%Y/%m}/{secrets.token_hex(16)}"
    stored: list[str] = []
    try:
        # Stored outside the transaction: on SQLite it holds the one write lock.
        stored.append(default_storage.save(f"attachments/{key}", file))
        if inspected is not None:
            thumbnail = ContentFile(inspected.thumbnail)
            stored.append(default_storage.save(f"thumbnails/{key}.webp", thumbnail))
        with transaction.atomic():
            User.objects.select_for_update().filter(pk=uploader.pk).first()
            quota_check(uploader_id=uploader.pk, adding=size + thumbnail_size)
            return Attachment.objects.create(
                uploader=uploader,
                file=stored[0],
                thumbnail=stored[1] if len(stored) > 1 else "",
                thumbnail_size=thumbnail_size,
                name=name_clean(name),
                size=size,
                content_type=content_type if inspected is None else inspected.content_type,
                image=inspected is not None,
                width=None if inspected is None else inspected.width,
                height=None if inspected is None else inspected.height,
            )
    except BaseException:
        for stored_name in stored:
            default_storage.delete(stored_name)
        raise


def attachment_ids_clean(value: object) -> list[int]:
    """The upload ids a message names: absent/null for none, else a list of at most
    CHAT_ATTACHMENTS_MAX whole numbers (a repeated id counts once), or bad_request."""
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(
        isinstance(item, int) and not isinstance(item, bool) for item in value
    ):
        raise ChatError("bad_request", "attachments must be a list of upload ids")
    ids = list(dict.fromkeys(value))
    if len(ids) > settings.CHAT_ATTACHMENTS_MAX:
        limit = settings.CHAT_ATTACHMENTS_MAX
        raise ChatError("bad_request", f"a message has at most {limit} attachments")
    return ids


def attachments_attach(*, message: Message, uploader_id: int, ids: list[int]) -> list[Attachment]:
    """Attach the uploads `ids` to `message`, in message_create's transaction; them, in order.

    Each must be an upload of `uploader_id` that no message names yet: else
    ChatError(bad_attachment), and the transaction (the message too) is rolled
    back. The rows are locked first, so two messages never take one upload.
    """
    valid = [pk for pk in ids if 1 <= pk <= MAX_ID]
    rows = list(
        Attachment.objects.select_for_update()
        .filter(pk__in=valid, uploader_id=uploader_id, message__isnull=True)
        .order_by("pk")
    )
    if len(rows) != len(ids):
        raise ChatError(
            "bad_attachment",
            "attachments names an upload that is not yours, is attached already, or is gone",
        )
    Attachment.objects.filter(pk__in=[row.pk for row in rows]).update(message=message)
    for row in rows:
        row.message = message
    return rows


# --- who may fetch a file -----------------------------------------------------------------


def attachment_for_reader(*, user: User | AnonymousUser, pk: int) -> Attachment:
    """The attachment `pk` if `user` may fetch it; ChatError(not_found) otherwise.

    Its uploader may, while its message (if any) is not deleted; anyone else
    only once it is attached, to a message not deleted, in a room they may read
    (Room.objects.visible_to: the rule of chat.domain.access). Moderators (staff with
    the admin's view permission on attachments) may open any, to judge it.
    Whoever may not gets the answer of an id that names nothing.
    """
    attachment = (
        Attachment.objects.select_related("message").filter(pk=pk).first()
        if 1 <= pk <= MAX_ID
        else None
    )
    if attachment is None:
        raise ChatError("not_found", "no such file")
    reader: User | AnonymousUser = user if user.is_active else AnonymousUser()
    message = attachment.message
    mine = reader.is_authenticated and attachment.uploader_id == reader.pk
    if message is None:
        if mine or _moderator(reader):
            return attachment
        raise ChatError("not_found", "no such file")
    if message.deleted_at is not None:
        if _moderator(reader):
            return attachment
        raise ChatError("not_found", "no such file")
    if mine or Room.objects.visible_to(reader).filter(pk=message.room_id).exists():
        return attachment
    if _moderator(reader):
        return attachment
    raise ChatError("not_found", "no such file")


def _moderator(user: User | AnonymousUser) -> bool:
    return bool(user.is_staff and user.has_perm("chat.view_attachment"))


# --- uploads never attached ---------------------------------------------------------------


def attachments_unattached_delete(*, older_than: timedelta, batch: int = 500) -> int:
    """Delete the uploads no message named that came more than `older_than` ago, and
    their stored files; how many.

    Each batch is locked, then deleted, in one transaction: an upload a message
    takes meanwhile is either attached first (and kept) or gone first (and the
    message refused with bad_attachment), never lost from a stored message.
    """
    cutoff = timezone.now() - older_than
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(_unattached(cutoff).select_for_update().values_list("pk", flat=True)[:batch])
            if ids:
                _unattached(cutoff).filter(pk__in=ids).delete()
        deleted += len(ids)
        if len(ids) < batch:
            return deleted


def _unattached(cutoff: Any) -> QuerySet[Attachment]:
    return Attachment.objects.filter(message__isnull=True, created__lt=cutoff).order_by("created")


def _files_delete_on_commit(sender: Any, instance: Attachment, **kwargs: Any) -> None:
    """A deleted attachment's stored files go once the deletion commits."""
    names = [name for name in (instance.file.name, instance.thumbnail.name) if name]

    def delete() -> None:
        for name in names:
            default_storage.delete(name)

    transaction.on_commit(delete)


def connect() -> None:
    """Delete stored files with their rows, on every path (cleanup, admin, cascades)."""
    post_delete.connect(_files_delete_on_commit, sender=Attachment, dispatch_uid="chat-files")
