"""Where outgoing webhooks may go.

A tenant admin chooses the URLs the relay POSTs to, so without a check any tenant could
make OrderHub call addresses inside its own network (cloud metadata, databases, admin
ports). URLs whose host resolves to a loopback, private, link-local, multicast, reserved
or unspecified address are refused unless the operator allows them
(``ORDERHUB_WEBHOOKS_ALLOW_PRIVATE=true``, e.g. for a WMS on the same LAN). The check runs
when an endpoint is registered and again before every delivery, so a DNS name that later
points inward is caught too.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (raises OSError when it doesn't resolve)."""
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)})


class WebhookTargetGuard:
    """Decides whether a webhook URL may be called; ``problem(url)`` is None when it may."""

    def __init__(self, *, allow_private: bool, resolver: Resolver = resolve) -> None:
        self.allow_private = allow_private
        self._resolve = resolver

    def problem(self, url: str) -> str | None:
        """Why ``url`` must not be called, or None."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"{url!r} is not an http(s) URL"
        if self.allow_private:
            return None
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            addresses = self._resolve(parts.hostname, port)
        except (OSError, ValueError) as exc:
            return f"host {parts.hostname!r} does not resolve ({exc})"
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
                    or ip.is_unspecified):
                return (f"host {parts.hostname!r} resolves to {ip}, an internal address; set "
                        "ORDERHUB_WEBHOOKS_ALLOW_PRIVATE=true to allow internal webhook targets")
        return None
