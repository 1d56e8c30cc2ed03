"""Which adapter serves a carrier account: its ``protocol`` names one of :data:`PROTOCOLS`.

A real carrier integration is added by writing its adapter (the ``CarrierAdapter`` shape and
the error mapping in ``simulated.py``) and registering its protocol name here.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from orderhub.adapters.carriers.base import CarrierAccount, CarrierAdapter
from orderhub.adapters.carriers.simulated import SimulatedCarrierClient


def _simulated(account: CarrierAccount, http: httpx.Client | None) -> CarrierAdapter:
    return SimulatedCarrierClient(account, http=http)


# protocol name -> factory(account, shared http client or None)
PROTOCOLS: dict[str, Callable[[CarrierAccount, httpx.Client | None], CarrierAdapter]] = {
    "simulated": _simulated,
}


def build_adapter(account: CarrierAccount, *, http: httpx.Client | None = None) -> CarrierAdapter:
    """The adapter for ``account``; ``ValueError`` naming the known protocols when its
    protocol is not one of them (a misconfigured account, reported when it is loaded)."""
    factory = PROTOCOLS.get(account.protocol)
    if factory is None:
        known = ", ".join(sorted(PROTOCOLS))
        raise ValueError(f"carrier account for {account.carrier!r} has unknown protocol {account.protocol!r}; "
                         f"known protocols: {known}")
    return factory(account, http)
