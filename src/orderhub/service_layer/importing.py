"""Bulk import (``orderhub import FILE``): every row goes through the same inbox, dedup key
and normalizer as a webhook, so importing a file twice, or importing orders a channel also
pushed, never makes a second order.

A dry run maps every message and reads the database, writing nothing, and reports what a
real run would do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from orderhub.adapters.channels.import_files import ImportItem
from orderhub.adapters.channels.mapping import SpecRegistry, UnknownChannel
from orderhub.domain import ids
from orderhub.domain.channels.model import Ignored, MappedOrder, MappedStatus
from orderhub.domain.commands import ReceiveChannelMessage
from orderhub.domain.errors import DomainError
from orderhub.service_layer.errors import ServiceError
from orderhub.service_layer.messagebus import MessageBus
from orderhub.service_layer.normalizer import Normalizer
from orderhub.service_layer.unit_of_work import SqlAlchemyUnitOfWork


@dataclass
class ImportReport:
    """What an import did (or, for a dry run, would do)."""

    dry_run: bool
    created: int = 0          # new orders
    updated: int = 0          # messages that moved an existing order
    duplicate: int = 0        # already imported / received (same dedup key)
    held: int = 0             # created but held by a filter rule
    ignored: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)   # (line, reason)

    @property
    def total(self) -> int:
        """Messages looked at."""
        return self.created + self.updated + self.duplicate + self.ignored + len(self.rejected)

    def as_dict(self) -> dict[str, object]:
        """JSON-safe summary."""
        return {"dry_run": self.dry_run, "created": self.created, "updated": self.updated,
                "duplicate": self.duplicate, "held": self.held, "ignored": self.ignored,
                "rejected": [{"line": n, "reason": r} for n, r in self.rejected], "total": self.total}


class Importer:
    """Imports :class:`ImportItem` messages for one tenant."""

    def __init__(self, *, bus: MessageBus, specs: SpecRegistry, uow_factory: Callable[[], SqlAlchemyUnitOfWork],
                 normalizer: Normalizer, tenant_id: str) -> None:
        self._bus = bus
        self._specs = specs
        self._uow_factory = uow_factory
        self._normalizer = normalizer
        self._tenant_id = tenant_id

    def run(self, items: Iterable[ImportItem], *, dry_run: bool,
            progress: Callable[[int], None] = lambda _n: None) -> ImportReport:
        """Import (or, with ``dry_run``, assess) every item; ``progress`` is called per item."""
        report = ImportReport(dry_run=dry_run)
        accepted: dict[str, int] = {}
        for item in items:
            if item.error is not None or item.body is None:
                report.rejected.append((item.line, item.error or "empty row"))
            elif dry_run:
                self._assess(item, report)
            else:
                self._receive(item, report, accepted)
            progress(1)
        if not dry_run and accepted:
            self._normalizer.drain()
            self._collect(accepted, report)
        report.rejected.sort()
        return report

    def _receive(self, item: ImportItem, report: ImportReport, accepted: dict[str, int]) -> None:
        assert item.channel is not None and item.shop is not None and item.body is not None
        try:
            received = self._bus.handle(ReceiveChannelMessage(
                channel=item.channel, shop_code=item.shop, source="import", body=item.body, verify=False,
                tenant_id=self._tenant_id))
        except (DomainError, ServiceError) as exc:
            report.rejected.append((item.line, exc.message))
            return
        if received.status == "duplicate":
            report.duplicate += 1
        else:
            accepted[received.message_id] = item.line

    def _collect(self, accepted: dict[str, int], report: ImportReport) -> None:
        with self._uow_factory() as uow:
            rows = uow.inbox.outcomes(self._tenant_id, list(accepted))
            created = uow.orders.created_from(self._tenant_id, list(accepted))
        for row in rows:
            line = accepted[row.message_id]
            if row.status == "applied":
                if row.message_id in created:
                    report.created += 1
                    report.held += created[row.message_id] == "on_hold"
                else:
                    report.updated += 1
            elif row.status == "ignored":
                report.ignored += 1
            else:
                where = f" at {row.error_field}" if row.error_field else ""
                report.rejected.append((line, f"{row.status}{where}: {row.last_error} (inbox {row.message_id})"))

    def _assess(self, item: ImportItem, report: ImportReport) -> None:
        assert item.channel is not None and item.shop is not None and item.body is not None
        try:
            spec = self._specs.get(item.channel)
            payload = spec.parse_body(item.body, {})
            mapped = spec.map(payload, {})
            key = spec.identify(payload, {})
        except UnknownChannel:
            report.rejected.append((item.line, f"unknown channel {item.channel!r}"))
            return
        except DomainError as exc:
            where = f" at {exc.field}" if exc.field else ""
            report.rejected.append((item.line, f"mapping failed{where}: {exc.message}"))
            return
        with self._uow_factory() as uow:
            shop = uow.shops.by_code(item.channel, item.shop)
            if shop is None or shop.tenant_id != self._tenant_id:
                report.rejected.append((item.line, f"no {item.channel} shop with code {item.shop!r}"))
                return
            if uow.inbox.has_key(self._tenant_id, item.channel, item.shop, key.external_id, key.event_version):
                report.duplicate += 1
                return
            if isinstance(mapped, Ignored):
                report.ignored += 1
                return
            assert isinstance(mapped, MappedOrder | MappedStatus)
            order_id = ids.order_id(self._tenant_id, item.channel, item.shop, mapped.external_id)
            exists = bool(uow.orders.existing_ids(self._tenant_id, [order_id]))
        if exists:
            report.updated += 1
        else:
            report.created += 1

