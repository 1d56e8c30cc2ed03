"""The persistence adapters' error tree.

Repositories translate driver errors (SQLAlchemy ``IntegrityError``, a zero row count on an
optimistic update) into these; the service layer translates these into its own errors
(``OrderAlreadyExists``, ``ConcurrencyConflict``…) at its boundary.
"""

from __future__ import annotations


class PersistenceError(Exception):
    """Base of every error a repository raises on purpose."""

    def __init__(self, message: str, *, entity: str, key: str) -> None:
        super().__init__(message)
        self.message = message
        self.entity = entity
        self.key = key


class DuplicateKeyError(PersistenceError):
    """Raised when an insert hits a UNIQUE key that already exists (an order with the same
    channel/shop/external id, an Idempotency-Key, an applied event key)."""


class StaleVersionError(PersistenceError):
    """Raised when an optimistic update finds the row at another version than the one loaded."""
