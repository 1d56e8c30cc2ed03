"""Fulfillment: shipments from creation through warehouse scans (pick, verify, pack, weigh,
handover) to carrier tracking, plus the rules around them — stall levels, offline device
sync conflicts and operator account locks. Pure: no I/O, no clock (times are parameters).
"""
