"""Files across real daphne workers (docs/files.md): uploaded over HTTP to one worker,
named by a `message.send`, seen with the message by every socket of the room on
both; and behind the shipped nginx, whose `internal` location serves a file
only when a worker hands it over (X-Accel-Redirect).

The workers keep their files in a MEDIA_ROOT of the test's own (DJANGO_MEDIA_ROOT
in their environment).
"""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image

from tests.integration.conftest import Client, Cluster
from tests.integration.test_nginx import nginx_start

pytestmark = pytest.mark.integration

LIMIT = 10 * 1024 * 1024  # CHAT_UPLOAD_MAX_BYTES' default


def png(size: tuple[int, int] = (320, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "orange").save(buffer, "PNG")
    return buffer.getvalue()


def multipart(data: bytes, name: str) -> tuple[bytes, str]:
    boundary = "chatsite-live-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def request(
    url: str, *, token: str | None = None, data: bytes | None = None, name: str = "f.bin"
) -> tuple[int, dict[str, str], bytes]:
    """GET `url`, or POST `data` as an upload; (status, headers, body), errors included."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    body = None
    if data is not None:
        body, headers["Content-Type"] = multipart(data, name)
    call = urllib.request.Request(url, data=body, headers=headers, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(call, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


async def no_message(client: Client, seconds: float = 0.5) -> bool:
    """True when nothing but presence and typing arrives on `client` for `seconds`."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frame = await client.receive(left)
        except TimeoutError:
            return True
        if frame["type"] not in {"presence", "typing"}:
            return False
    return True


@pytest.fixture
def media() -> Iterator[Path]:
    """The workers' MEDIA_ROOT: outside pytest's private temporary directory, so
    that nginx's workers, another user, can reach what the site wrote there."""
    path = Path(tempfile.mkdtemp(prefix="chatsite-media-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_a_file_sent_on_one_worker_reaches_the_room_on_both(cluster_factory, room, media):
    cluster: Cluster = cluster_factory(2, DJANGO_MEDIA_ROOT=str(media))
    uploader, reader, stranger = "user00", "user01", "user02"
    image = png()
    status, _, body = await asyncio.to_thread(
        request,
        cluster.workers[0].url + "/api/uploads/",
        token=cluster.token(uploader, 0),
        data=image,
        name="sunset.png",
    )
    assert status == 201, body
    attachment = json.loads(body)
    assert (attachment["image"], attachment["width"], attachment["height"]) == (True, 320, 200)
    # The bytes are in the workers' MEDIA_ROOT, under a name of the server's.
    stored = [path for path in media.rglob("*") if path.is_file()]
    assert image in [path.read_bytes() for path in stored]
    assert not any("sunset" in str(path) for path in stored)

    a = await cluster.connect(uploader, 0, room)
    b = await cluster.connect(reader, 1, room)
    await a.send(
        {"type": "message.send", "body": "", "client_id": "f1", "attachments": [attachment["id"]]}
    )
    mine = await a.receive_type("message")
    theirs = await b.receive_type("message")
    assert mine["id"] == theirs["id"] == 1
    assert mine["attachments"] == theirs["attachments"] == [attachment]

    # The other worker serves it to the reader; to someone not signed in it is nothing.
    file_url = cluster.workers[1].url + attachment["url"]
    status, headers, served = await asyncio.to_thread(
        request, file_url, token=cluster.token(reader, 1)
    )
    assert (status, headers["Content-Type"], served) == (200, "image/png", image)
    status, headers, thumbnail = await asyncio.to_thread(
        request, cluster.workers[1].url + attachment["thumbnail_url"], token=cluster.token(reader)
    )
    assert (status, headers["Content-Type"]) == (200, "image/webp")
    with Image.open(io.BytesIO(thumbnail)) as small:
        assert small.format == "WEBP" and small.size[0] <= 480
    assert (await asyncio.to_thread(request, file_url))[0] == 404

    # Someone else's upload, named by another user on the other worker: refused there
    # alone; nothing is stored, nothing reaches the room.
    status, _, body = await asyncio.to_thread(
        request,
        cluster.workers[0].url + "/api/uploads/",
        token=cluster.token(uploader, 0),
        data=b"not yours\n",
        name="notes.txt",
    )
    assert status == 201
    not_theirs = json.loads(body)["id"]
    c = await cluster.connect(stranger, 1, room)
    await c.send(
        {"type": "message.send", "body": "mine", "client_id": "x1", "attachments": [not_theirs]}
    )
    error = await c.receive_type("error")
    assert (error["code"], error["client_id"]) == ("bad_attachment", "x1")
    assert await no_message(a) and await no_message(b)
    # The room's next message is number 2: the refusal took no number.
    await b.send({"type": "message.send", "body": "after", "client_id": "n2"})
    assert (await a.receive_type("message"))["id"] == 2
    # Until it is attached, the upload is its uploader's alone, on any worker.
    unattached = cluster.workers[1].url + f"/files/{not_theirs}/notes.txt"
    assert (await asyncio.to_thread(request, unattached, token=cluster.token(stranger)))[0] == 404
    assert (await asyncio.to_thread(request, unattached, token=cluster.token(uploader)))[0] == 200
    for client in (a, b, c):
        await client.close()


# --- behind nginx --------------------------------------------------------------------------


@pytest.fixture
def behind_nginx(cluster_factory, media: Path, tmp_path: Path):
    cluster = cluster_factory(
        2, DJANGO_MEDIA_ROOT=str(media), CHAT_FILES_ACCEL_REDIRECT="/protected-media/"
    )
    site = tmp_path / "nginx"
    site.mkdir()
    for url, _ in nginx_start(cluster, site, media=media):
        yield cluster, url


def header_only_upload(url: str, length: int) -> tuple[int, bytes]:
    """POST /api/uploads/ claiming `length` bytes and sending none: what answers at once."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.putrequest("POST", "/api/uploads/")
        connection.putheader("Content-Type", "multipart/form-data; boundary=x")
        connection.putheader("Content-Length", str(length))
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_nginx_serves_a_file_only_when_a_worker_hands_it_over(behind_nginx, media):
    cluster, url = behind_nginx
    image = png((64, 64))
    token = cluster.token("user03")
    status, _, body = request(url + "/api/uploads/", token=token, data=image, name="dot.png")
    assert status == 201, body
    attachment = json.loads(body)
    status, headers, served = request(url + attachment["url"], token=token)
    assert (status, served) == (200, image)
    # The worker's type and disposition pass through; nginx adds back the rest.
    assert headers["Content-Type"] == "image/png"
    assert headers["Content-Disposition"] == 'inline; filename="dot.png"'
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in headers["Content-Security-Policy"]
    assert "X-Accel-Redirect" not in headers
    # Whoever may not read it gets 404 from the worker, and nothing from nginx.
    assert request(url + attachment["url"], token=cluster.token("user04"))[0] == 404
    # The internal location is out of reach from outside, whatever the path.
    [key] = [
        path.relative_to(media).as_posix()
        for path in media.rglob("*")
        if path.is_file() and path.read_bytes() == image
    ]
    assert request(url + "/protected-media/" + key)[0] == 404
    assert request(url + "/protected-media/" + key, token=token)[0] == 404


def test_nginx_takes_a_file_of_the_limit_and_refuses_more_unread(behind_nginx):
    cluster, url = behind_nginx
    token = cluster.token("user05")
    # A file of exactly the limit, with its framing, gets through nginx and is stored.
    status, _, body = request(url + "/api/uploads/", token=token, data=os.urandom(LIMIT))
    assert status == 201, body[:300]
    assert json.loads(body)["size"] == LIMIT
    # One byte more: the worker refuses it, in the API's words.
    status, _, body = request(url + "/api/uploads/", token=token, data=os.urandom(LIMIT + 1))
    assert (status, json.loads(body)["limit"]) == (413, LIMIT)
    # Far more: nginx answers from the Content-Length alone, in the same words.
    status, body = header_only_upload(url, 64 * 1024 * 1024)
    answer: dict[str, Any] = json.loads(body)
    assert (status, answer["error"], answer["limit"]) == (413, "too_large", LIMIT)
    # A worker without nginx in front answers the same (daphne hands it the body whole).
    worker = cluster.workers[0].url
    status, _, body = request(worker + "/api/uploads/", token=token, data=os.urandom(LIMIT + 1))
    assert (status, json.loads(body)["limit"]) == (413, LIMIT)
