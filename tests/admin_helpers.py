"""What the admin's tests (tests/test_admin*.py) share: a superuser and its client."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.conftest import PASSWORD


@pytest.fixture
def root(db):
    return get_user_model().objects.create_superuser(
        username="root", email="root@example.com", password=PASSWORD
    )


@pytest.fixture
def admin(root) -> Client:
    client = Client()
    client.force_login(root)
    return client
