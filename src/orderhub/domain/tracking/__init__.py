"""Carrier tracking: the 9 milestones every carrier code is normalized to (DESIGN.md §3)."""
