"""A real Chromium against real daphne workers, a fresh PostgreSQL database and Redis.

The workers, the database and the rooms are the integration fixtures'. Each
person gets a browser context of their own, pointed at one worker's URL, so two
people's sockets can live on two different workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, expect, sync_playwright

from tests.browser.helpers import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    WORKER_ENV,
    Person,
    fresh_username,
)
from tests.integration.conftest import (  # noqa: F401 (fixtures, found by name)
    Cluster,
    cluster_factory,
    database_url,
    make_run,
    room,
    stage,
)

# A page whose worker was killed reconnects with backoff: allow it some seconds.
expect.set_options(timeout=20_000)


@pytest.fixture(scope="session")
def users() -> list[str]:
    """No accounts made ahead: the people here sign up through the form."""
    return []


@pytest.fixture(autouse=True)
def _flush_layer() -> None:
    """Stands in for the suite's async flush of the in-process channel layer.

    These tests use only the workers' layer, under a prefix of each test's own;
    and no asyncio fixture can run beside Playwright's sync API, whose event loop
    counts as running in this thread for as long as the browser is open.
    """


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per module.

    Not per session: while it is open, Playwright's loop counts as running in this
    thread, and the asyncio tests that run after this directory could not start theirs.
    """
    assert Path(CHROMIUM).exists(), "Chromium is installed by deploy/ensure-services.sh chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_person(browser: Browser) -> Iterator[Callable[..., Person]]:
    """Open a browser context for one person at `base_url`; closed after the test."""
    contexts: list[BrowserContext] = []

    def open_context(base_url: str, viewport: dict[str, int] = DESKTOP) -> Person:
        phone = viewport["width"] < 600
        context = browser.new_context(
            viewport=viewport, is_mobile=phone, has_touch=phone, locale="en-GB"
        )
        contexts.append(context)
        person = Person(context=context, base_url=base_url, page=context.new_page())

        def on_dialog(dialog: Any) -> None:
            person.dialogs.append(dialog.message)
            dialog.dismiss()

        person.page.on("dialog", on_dialog)
        person.page.on("pageerror", lambda error: person.page_errors.append(str(error)))
        return person

    yield open_context
    for context in contexts:
        context.close()


@pytest.fixture
def ann_and_ben(open_person: Callable[..., Person]) -> Callable[[Cluster], tuple[Person, Person]]:
    """ann on a cluster's first worker and ben on its second, each signed up."""

    def sign_up(cluster: Cluster) -> tuple[Person, Person]:
        ann = open_person(cluster.workers[0].url)
        ben = open_person(cluster.workers[1].url)
        ann.signup(fresh_username("ann"))
        ben.signup(fresh_username("ben"))
        return ann, ben

    return sign_up


@pytest.fixture
def two_workers(cluster_factory: Any) -> Cluster:  # noqa: F811
    """Two daphne workers sharing one Redis layer and one database."""
    return cluster_factory(2, **WORKER_ENV)


@pytest.fixture
def one_worker(cluster_factory: Any) -> Cluster:  # noqa: F811
    return cluster_factory(1, **WORKER_ENV)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go: kept by CI as test artifacts, ignored by git."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
