"""Preview what a channel spec makes of a payload, while writing a spec or a fixture.

``python -m orderhub.adapters.channels.preview <channel> <body.json> [headers.json] [--dir EXTRA]``
prints the dedup key and the canonical JSON (or the mapping failure with its field path).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from orderhub.adapters.channels.canonical import mapped_to_dict
from orderhub.adapters.channels.mapping import load_registry
from orderhub.domain.errors import DomainError


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (1 when the message doesn't map)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("channel")
    parser.add_argument("body", type=Path)
    parser.add_argument("headers", type=Path, nargs="?")
    parser.add_argument("--dir", type=Path, default=None, help="extra spec directory ($ORDERHUB_HOME/channels)")
    args = parser.parse_args(argv)
    spec = load_registry(args.dir).get(args.channel)
    headers = json.loads(args.headers.read_text(encoding="utf-8")) if args.headers else {}
    headers = {str(k).lower(): str(v) for k, v in headers.items()}
    try:
        payload = spec.parse_body(args.body.read_bytes(), headers)
        key = spec.identify(payload, headers)
        result = mapped_to_dict(spec.map(payload, headers))
        result["key"] = {"external_id": key.external_id, "event_version": key.event_version}
    except DomainError as exc:
        result = {"error": {"code": exc.code, "field": exc.field, "message": exc.message}}
    sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 1 if "error" in result else 0


if __name__ == "__main__":
    raise SystemExit(main())
