"""Configuration from the environment (DESIGN.md §6)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything OrderHub reads from its environment."""

    home: Path
    database_url: str
    host: str
    port: int
    amqp_url: str | None
    webhooks_allow_private: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``ORDERHUB_*`` variables; SQLite under ``ORDERHUB_HOME`` unless a URL is given."""
        env = os.environ if env is None else env
        home = Path(env.get("ORDERHUB_HOME", ".orderhub")).expanduser().resolve()
        url = env.get("ORDERHUB_DATABASE_URL") or f"sqlite:///{home / 'orderhub.db'}"
        port_text = env.get("ORDERHUB_PORT", "8000")
        try:
            port = int(port_text)
        except ValueError as exc:
            raise ValueError(f"ORDERHUB_PORT must be a port number, got {port_text!r}") from exc
        allow_private = env.get("ORDERHUB_WEBHOOKS_ALLOW_PRIVATE", "").strip().lower() in ("1", "true", "yes")
        return cls(home=home, database_url=url, host=env.get("ORDERHUB_HOST", "127.0.0.1"), port=port,
                   amqp_url=env.get("ORDERHUB_AMQP_URL") or None, webhooks_allow_private=allow_private)
