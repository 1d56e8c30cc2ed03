"""A shop: one merchant storefront on one sales channel."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orderhub.domain.errors import InvalidShop

CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MIN_SECRET = 8


@dataclass(frozen=True, slots=True)
class Shop:
    """A registered shop; ``secret`` verifies its channel's pushes."""

    id: str
    tenant_id: str
    code: str
    channel: str
    name: str
    secret: str
    timezone: str | None
    settings: dict[str, Any] = field(default_factory=dict)
    active: bool = True
    created_at: datetime | None = None

    @staticmethod
    def validate(*, code: str, name: str, secret: str, timezone: str | None) -> None:
        """Raise InvalidShop naming the field when a registration can't be accepted."""
        if not CODE_PATTERN.match(code or ""):
            raise InvalidShop("code: 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit "
                              f"(it appears in the webhook URL), got {code!r}", field="code")
        if not name or not name.strip():
            raise InvalidShop("name: must not be empty", field="name")
        if len(secret or "") < MIN_SECRET:
            raise InvalidShop(f"secret: at least {MIN_SECRET} characters (it authenticates the channel's "
                              "pushes)", field="secret")
        if timezone is not None:
            try:
                ZoneInfo(timezone)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise InvalidShop(f"timezone: unknown IANA time zone {timezone!r} (e.g. Asia/Shanghai)",
                                  field="timezone") from exc
