"""Carrier adapters: waybills, tracking and pushes, one shape for every carrier; code tables in codes/."""
