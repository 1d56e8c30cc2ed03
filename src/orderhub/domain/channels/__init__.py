"""Sales channels: what a channel message becomes once mapped, the inbox's states and the
channel circuit breaker. Pure: mapping specs are interpreted in ``adapters/channels``."""
