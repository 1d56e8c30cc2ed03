"""The message bus: routes each command to its one handler inside a fresh unit of work,
then hands the events that transaction committed to the in-process event handlers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog

from orderhub.domain.events import Event
from orderhub.service_layer.unit_of_work import SqlAlchemyUnitOfWork

log = structlog.get_logger(__name__)

CommandHandler = Callable[[Any, SqlAlchemyUnitOfWork], Any]
EventHandler = Callable[[Event], None]


class MessageBus:
    """Dispatches commands (exactly one handler each) and committed events (any number)."""

    def __init__(self, uow_factory: Callable[[], SqlAlchemyUnitOfWork],
                 command_handlers: Mapping[type, CommandHandler],
                 event_handlers: Mapping[type, Sequence[EventHandler]]) -> None:
        self._uow_factory = uow_factory
        self._command_handlers = dict(command_handlers)
        self._event_handlers = {k: list(v) for k, v in event_handlers.items()}

    def subscribe(self, event_type: type[Event], handler: EventHandler) -> None:
        """Add an in-process handler for committed events of ``event_type`` (wiring that needs
        the bus itself, e.g. a handler that dispatches a follow-up command)."""
        self._event_handlers.setdefault(event_type, []).append(handler)

    def handle(self, command: object) -> Any:
        """Run ``command``'s handler and return its result; errors propagate unchanged."""
        try:
            handler = self._command_handlers[type(command)]
        except KeyError as exc:
            raise LookupError(f"no handler registered for {type(command).__name__}") from exc
        uow = self._uow_factory()
        result = handler(command, uow)
        for event in uow.collect_new_events():
            self._dispatch(event)
        return result

    def _dispatch(self, event: Event) -> None:
        for handler in self._event_handlers.get(type(event), ()):
            try:
                handler(event)
            except Exception:  # an in-process observer must never undo a committed command
                log.exception("event_handler_failed", handler=getattr(handler, "__name__", repr(handler)),
                              event=type(event).__name__)
