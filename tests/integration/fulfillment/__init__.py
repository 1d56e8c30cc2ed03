"""Fulfillment and tracking against real SQLite and PostgreSQL, with a fixed clock and a simulated carrier."""
