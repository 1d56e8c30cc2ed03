"""Fixtures for the browser tests: Debian's headless Chromium driven by Playwright, and the
real OrderHub (API, webhooks, dashboard, workers) serving on a free local port over a
temporary SQLite database.

Under CI (``CI=true``) a missing Chromium or Playwright FAILS the test: a browser test that
silently skips proves nothing. Locally it skips with the command that installs Chromium.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.staticfiles import StaticFiles

from orderhub.bootstrap import OrderHub, bootstrap
from orderhub.config import Settings
from orderhub.domain import commands
from orderhub.entrypoints.api.app import create_app
from orderhub.entrypoints.dashboard import STATIC_DIR, create_dashboard
from orderhub.service_layer.handlers.tenancy import IssuedKey
from orderhub.workers.runner import build_runner

CHROMIUM = os.environ.get("ORDERHUB_TEST_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# No GPU, no sandbox (containers), and no calls home: the test must pass offline.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(message + " (CI requires the browser test; .ci/run installs chromium)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium (Debian's package) under Playwright's sync API."""
    if not Path(CHROMIUM).is_file():
        _unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415 - optional dev dependency
    except ImportError as exc:
        _unavailable(f"playwright is not installed: {exc} (pip install -e '.[dev]')")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class LiveServer:
    """The running application and the tenant the test acts for."""

    url: str
    hub: OrderHub
    tenant: IssuedKey


def with_dashboard(hub: OrderHub) -> Any:
    """The app as ``orderhub serve`` builds it, with the dashboard (added here until
    entrypoints/api/app.py mounts it itself; never twice)."""
    app = create_app(hub)
    if not any(getattr(r, "path", "").startswith("/ui") for r in app.routes):
        app.include_router(create_dashboard(hub))
        app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
    return app


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """OrderHub serving HTTP on 127.0.0.1 (a port chosen by the OS, bound before the server
    starts so no other process can take it in between), with its workers running."""
    settings = Settings.from_env({"ORDERHUB_HOME": str(tmp_path / "home"),
                                  "ORDERHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'orderhub.db'}"})
    hub = bootstrap(settings, upgrade_db=True)
    tenant: IssuedKey = hub.bus.handle(commands.CreateTenant("acme"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(with_dashboard(hub), log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="browser-test-api", daemon=True)
    runner = build_runner(hub, poll_interval=0.1)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "the test server failed to start"
        assert time.monotonic() < deadline, "the test server did not start within 20 s"
        time.sleep(0.05)
    runner.start()
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", hub=hub, tenant=tenant)
    finally:
        runner.stop()
        server.should_exit = True
        thread.join(10)
        sock.close()
        hub.close()
