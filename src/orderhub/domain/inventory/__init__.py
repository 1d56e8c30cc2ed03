"""Inventory: stock per SKU and warehouse, reservations, allocation and channel stock feeds.
Pure: the database's conditional updates enforce the same invariants under concurrency."""
