"""After-sale (DESIGN.md §3): cases, their state machine, refundable amounts, policy
decisions and SLA levels. Pure Python."""
