"""The nginx config docker-compose uses, run by a real nginx in front of two workers."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import websockets

from tests.integration.conftest import ROOT, Client, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def nginx(cluster, tmp_path: Path):
    """nginx on a free port with deploy/nginx/chat.conf, upstream = the two workers."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(binary).exists(), "nginx is installed by deploy/ensure-services.sh nginx"
    port = free_port()
    upstream = "\n".join(f"    server 127.0.0.1:{worker.port};" for worker in cluster.workers)
    (tmp_path / "upstream.conf").write_text(f"upstream chat_workers {{\n{upstream}\n}}\n")
    # The site's server block as shipped; only where it listens and logs is local.
    site = (ROOT / "deploy" / "nginx" / "chat.conf").read_text()
    assert "listen 80;" in site
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};").replace(
        "/var/log/nginx/access.log", str(tmp_path / "access.log")
    )
    (tmp_path / "chat.conf").write_text(site)
    temp = tmp_path / "temp"
    temp.mkdir()
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
    yield url, tmp_path / "access.log"
    process.terminate()
    process.wait(timeout=10)


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
