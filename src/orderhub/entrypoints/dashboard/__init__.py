"""The dashboard: server-rendered HTML pages under ``/ui`` (orders, one order, channel health).

``create_dashboard(hub)`` returns the router; ``STATIC_DIR`` is the directory of its CSS and
JavaScript, to be served at ``/ui/static``. Every asset ships inside the package: the pages
load nothing from a CDN or any other host.
"""

from __future__ import annotations

from orderhub.entrypoints.dashboard.render import STATIC_DIR, TEMPLATES_DIR
from orderhub.entrypoints.dashboard.routes import create_dashboard

__all__ = ["STATIC_DIR", "TEMPLATES_DIR", "create_dashboard"]
