"""Shared fixtures: real SQLite and real PostgreSQL databases, migrated once per session.

Database-backed tests take the ``db_url`` fixture (directly or through ``engine`` / ``hub``)
and run once per engine. The PostgreSQL leg skips locally when no server answers, and
FAILS under CI (``CI=true``): a missing server must never pass silently.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from orderhub.adapters.db import migrate
from orderhub.adapters.db.engine import build_engine
from orderhub.adapters.db.tables import metadata
from orderhub.bootstrap import OrderHub, bootstrap
from orderhub.config import Settings
from orderhub.domain import commands
from orderhub.service_layer.handlers.tenancy import IssuedKey

PG_URL = os.environ.get("ORDERHUB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; each test gets a copy (migrating once keeps tests fast)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = build_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def _pg_admin_engine() -> Engine:
    return create_engine(PG_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session (and xdist worker)."""
    admin = _pg_admin_engine()
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        admin.dispose()
        message = f"PostgreSQL is not reachable at {PG_URL}: {exc.__class__.__name__}: {exc}"
        if IN_CI:
            pytest.fail(message + " (CI requires the PostgreSQL leg)", pytrace=False)
        pytest.skip(message)
    name = f"orderhub_test_{_worker()}_{os.getpid()}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    engine = build_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_pg(url: str) -> None:
    engine = build_engine(url)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated database: once SQLite, once PostgreSQL."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "orderhub.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("pg_url")
    _truncate_pg(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the per-test database."""
    eng = build_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Settings pointing at the per-test database and a temporary home; webhook targets on
    127.0.0.1 are allowed (the test receivers live there)."""
    return Settings.from_env({"ORDERHUB_HOME": str(tmp_path / "home"), "ORDERHUB_DATABASE_URL": db_url,
                              "ORDERHUB_WEBHOOKS_ALLOW_PRIVATE": "true"})


@pytest.fixture
def hub(settings: Settings, engine: Engine) -> Iterator[OrderHub]:
    """A fully wired OrderHub on the per-test database."""
    app = bootstrap(settings, engine=engine)
    yield app


@pytest.fixture
def tenant(hub: OrderHub) -> IssuedKey:
    """A tenant called ``acme`` with its admin key."""
    issued: IssuedKey = hub.bus.handle(commands.CreateTenant("acme"))
    return issued


@pytest.fixture
def actor(tenant: IssuedKey) -> commands.Actor:
    """An API actor for the ``acme`` tenant."""
    return commands.Actor(tenant_id=tenant.tenant_id, actor=f"key:{tenant.key_id}", source="api", trace_id="t-1")
