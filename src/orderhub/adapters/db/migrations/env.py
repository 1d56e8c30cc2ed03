"""Alembic environment: runs against the engine handed over by ``migrate.upgrade``."""

from __future__ import annotations

from alembic import context

from orderhub.adapters.db.tables import metadata

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # plain `alembic` CLI use: build from the environment like the app does
    from orderhub.adapters.db.engine import build_engine
    from orderhub.config import Settings

    engine = build_engine(Settings.from_env().database_url)

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
