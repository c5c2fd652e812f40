"""The nginx config docker-compose uses, run by a real nginx in front of two workers."""

from __future__ import annotations

import asyncio
import http.client
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest
import websockets

from tests.integration.conftest import ROOT, Client, free_port
from tests.integration.test_security_live import cookies_of

pytestmark = pytest.mark.integration


def nginx_start(cluster, tmp_path: Path, *, media: Path | None = None):
    """nginx on a free port with deploy/nginx/chat.conf, upstream = the cluster's workers.

    Yields (its URL, its access log). The site's server block is used as
    shipped; only where it listens and logs (and reads the media volume, when
    `media` is given) is local.
    """
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(binary).exists(), "nginx is installed by deploy/ensure-services.sh nginx"
    port = free_port()
    upstream = "\n".join(f"    server 127.0.0.1:{worker.port};" for worker in cluster.workers)
    (tmp_path / "upstream.conf").write_text(f"upstream chat_workers {{\n{upstream}\n}}\n")
    site = (ROOT / "deploy" / "nginx" / "chat.conf").read_text()
    assert "listen 80;" in site and "alias /srv/media/;" in site
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};").replace(
        "/var/log/nginx/access.log", str(tmp_path / "access.log")
    )
    if media is not None:
        site = site.replace("alias /srv/media/;", f"alias {media}/;")
    (tmp_path / "chat.conf").write_text(site)
    # nginx's workers run as another user: its temporary files (request bodies
    # beyond its buffer) go where that user may reach, not in pytest's own directory.
    temp = Path(tempfile.mkdtemp(prefix="chatsite-nginx-"))
    temp.chmod(0o755)
    (tmp_path / "nginx.conf").write_text(
        f"""
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log warn;
events {{}}
http {{
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {tmp_path}/upstream.conf;
    include {tmp_path}/chat.conf;
}}
"""
    )
    process = subprocess.Popen(
        [binary, "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                assert response.status == 200
                break
        except OSError as error:
            assert process.poll() is None, (tmp_path / "error.log").read_text()
            assert time.monotonic() < deadline, f"nginx did not answer: {error!r}"
            time.sleep(0.1)
    try:
        yield url, tmp_path / "access.log"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def nginx(cluster, tmp_path: Path):
    """nginx in front of the two workers of `cluster`."""
    yield from nginx_start(cluster, tmp_path)


async def test_a_chat_through_nginx(cluster, nginx, room):
    url, access_log = nginx
    clients = []
    for username in ("user04", "user05", "user06", "user07"):
        token = cluster.token(username)
        socket = await websockets.connect(
            url.replace("http", "ws", 1) + f"/ws/rooms/{room}/?token={token}"
        )
        client = Client(username, socket)
        client.welcome = await client.receive_type("welcome")
        clients.append(client)
    await clients[0].send({"type": "message.send", "body": "via nginx", "client_id": "n1"})
    for client in clients:
        message = await client.receive_type("message")
        assert (message["id"], message["body"]) == (1, "via nginx")
    await clients[3].send({"type": "message.send", "body": "and back"})
    for client in clients:
        assert (await client.receive_type("message"))["body"] == "and back"
    for client in clients:
        await client.close()
    await asyncio.sleep(0.2)
    socket_lines = [line for line in access_log.read_text().splitlines() if "/ws/rooms/" in line]
    assert len(socket_lines) == 4
    # Both workers carried sockets: nginx spread them.
    for worker in cluster.workers:
        assert any(f"127.0.0.1:{worker.port}" in line for line in socket_lines), socket_lines
    # Tokens never reach nginx's access log.
    assert not any("token=" in line for line in socket_lines)


def signup_through(url: str, username: str, headers: dict[str, str]) -> int:
    """Sign up through the form, as a browser does (its CSRF cookie and token); the status."""
    port = int(url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/accounts/signup/", headers=headers)
        response = connection.getresponse()
        page = response.read().decode()
        assert response.status == 200, response.status
        csrf = cookies_of(response)["csrftoken"]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token is not None
        form = {
            "username": username,
            "password1": "a much longer passphrase 42",
            "password2": "a much longer passphrase 42",
            "csrfmiddlewaretoken": token[1],
        }
        connection.request(
            "POST",
            "/accounts/signup/",
            body=urlencode(form),
            headers={
                **headers,
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={csrf}",
                # A browser's form post: Django's CSRF check compares it with Host.
                "Origin": url,
            },
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_a_spoofed_forwarded_for_changes_nothing_behind_nginx(cluster_factory, tmp_path):
    """The workers trust X-Forwarded-For (--proxy-headers, as in docker-compose.yml); nginx
    sets it to the address it saw, so a client cannot pick its own for the limits."""
    cluster = cluster_factory(2, server_args=("--proxy-headers",), CHAT_SIGNUP_LIMIT="3/3600s")
    proxy = nginx_start(cluster, tmp_path)
    url, _ = next(proxy)
    try:
        statuses = [
            signup_through(url, f"spoof{i}", {"X-Forwarded-For": f"203.0.113.{i}"})
            for i in range(5)
        ]
    finally:
        proxy.close()
    # Three sign-ups per address: the fourth is refused whatever address it claims.
    assert statuses == [302, 302, 302, 429, 429]
