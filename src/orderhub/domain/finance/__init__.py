"""Finance (DESIGN.md §2 step 6): the append-only voucher ledger and statement matching. Pure Python."""
