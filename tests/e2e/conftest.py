"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_cli_and_server import Server, cli_env, run_json, start_server, stop_server


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[tuple[Server, httpx.Client]]:
    """``orderhub init`` and ``orderhub serve`` (workers on) on a fresh database of each engine."""
    env = cli_env(tmp_path / "home", db_url)
    key = run_json(env, "init", "--tenant", "tea-house", "--json")["api_key"]
    server = start_server(env, tmp_path / "serve.log")
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as api:
            yield server, api
    finally:
        stop_server(server)
