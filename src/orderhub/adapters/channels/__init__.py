"""Sales channel adapters: declarative mapping specs (``specs/*.yaml``), push signatures and
CSV import grouping. See ``docs/channels.md`` for the spec format."""
