"""Fixtures for the integration tests."""

from tests.integration.webhook_receiver import http, receiver

__all__ = ["http", "receiver"]
