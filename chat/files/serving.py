"""How a file's bytes reach someone who may read it (chat.files.attachments decides who may).

Three ways, chosen by settings alone (docs/files.md):

- by default the worker streams the file from the storage (FileResponse);
- behind nginx, with CHAT_FILES_ACCEL_REDIRECT, the answer is only headers and
  `X-Accel-Redirect`: nginx sends the bytes from its `internal` location over
  MEDIA_ROOT, which no URL reaches from outside;
- with S3-compatible storage (CHAT_S3_BUCKET), a redirect to a signed URL that
  expires in CHAT_S3_URL_SECONDS, naming the type and disposition the store
  must answer with.

Only images Pillow decoded are shown inline; everything else is a download, and
nothing is sniffed by the browser.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.utils.cache import get_conditional_response
from django.utils.http import content_disposition_header, http_date

from chat.files.attachments import TEXT
from chat.models import Attachment

THUMBNAIL_TYPE = "image/webp"
# A file's bytes never change under its id, but who may fetch it can: a browser
# keeps it for itself and asks again before each use (a reader removed from the
# room is refused at once); an unchanged file is answered 304, without its bytes.
CACHE_CONTROL = "private, no-cache"
# A file is never a page: nothing in it runs, even if a browser rendered it.
FILE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"


def file_response(
    request: HttpRequest, attachment: Attachment, *, thumbnail: bool = False
) -> HttpResponseBase:
    """The answer to a fetch of `attachment` (or its thumbnail) by a reader: 304 when
    the reader's copy is current (If-None-Match, If-Modified-Since)."""
    if thumbnail:
        stored, content_type, inline = str(attachment.thumbnail.name), THUMBNAIL_TYPE, True
        disposition = content_disposition_header(False, "thumbnail.webp")
    else:
        stored, inline = str(attachment.file.name), attachment.image
        content_type = attachment.content_type
        if content_type == TEXT:
            content_type += "; charset=utf-8"
        disposition = content_disposition_header(not inline, attachment.name)
    assert disposition is not None
    response: HttpResponseBase
    if settings.CHAT_S3_BUCKET:
        storage: Any = default_storage  # django-storages' S3Storage.url takes parameters
        url = storage.url(
            stored,
            parameters={
                "ResponseContentType": content_type,
                "ResponseContentDisposition": disposition,
                "ResponseCacheControl": CACHE_CONTROL,
            },
        )
        response = HttpResponseRedirect(url)
        # The redirect outlives its signature otherwise.
        response["Cache-Control"] = "private, no-store"
        return response
    # The bytes under an id never change: the id (and which of the two) is the tag.
    etag = f'"{attachment.pk}-{"thumbnail" if thumbnail else attachment.size}"'
    unchanged = get_conditional_response(
        request, etag=etag, last_modified=int(attachment.created.timestamp())
    )
    if unchanged is not None:
        unchanged["Cache-Control"] = CACHE_CONTROL
        return unchanged
    if settings.CHAT_FILES_ACCEL_REDIRECT:
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = settings.CHAT_FILES_ACCEL_REDIRECT + quote(stored)
    else:
        response = FileResponse(default_storage.open(stored, "rb"), content_type=content_type)
    response["Content-Disposition"] = disposition
    response["Cache-Control"] = CACHE_CONTROL
    response["ETag"] = etag
    response["Last-Modified"] = http_date(attachment.created.timestamp())
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = FILE_CSP
    return response
