"""docker-compose.yml's health check of the workers, run against a real worker."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.deploy_helpers import compose

pytestmark = pytest.mark.integration


def test_the_compose_health_check_passes_on_a_site_with_its_own_host_name(cluster_factory):
    """With DJANGO_ALLOWED_HOSTS naming the public host only, a request to 127.0.0.1 is a
    400: the check must speak as an allowed host, or no worker ever becomes healthy."""
    allowed = "chat.example.com,www.example.com"
    worker = cluster_factory(1, DJANGO_ALLOWED_HOSTS=allowed).workers[0]
    command = compose()["services"]["web"]["healthcheck"]["test"]
    assert command[:3] == ["CMD", "python", "-c"]
    code = command[3].replace("127.0.0.1:8000", f"127.0.0.1:{worker.port}")
    env = {"DJANGO_ALLOWED_HOSTS": allowed, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
