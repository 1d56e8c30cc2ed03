"""Reading bulk-import files (``orderhub import FILE``) into channel messages.

* **JSONL**: one JSON object per line. Either a channel's native order payload (the channel
  and shop come from ``--channel`` / ``--shop``) or an envelope
  ``{"channel": "taobao", "shop": "tb-1", "payload": {…}}`` naming them per row.
* **CSV**: rows in the ``csv`` channel's columns (docs/channels.md), one row per order line,
  grouped into one message per order by ``order_no``; an optional ``shop`` column names the
  shop per row (default ``--shop``).

Bad rows never stop the file: each becomes an :class:`ImportItem` with ``error`` set and its
line number, and the good rows are still imported.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orderhub.adapters.channels.csv_messages import csv_rows_to_messages

MAX_LINE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ImportItem:
    """One message to import (or a bad row, when ``error`` is set)."""

    line: int                 # 1-based line of the file where the message starts
    channel: str | None
    shop: str | None
    body: bytes | None
    error: str | None = None


def detect_format(path: Path, explicit: str | None) -> str:
    """``csv`` or ``jsonl`` from ``explicit`` or the file extension; ValueError otherwise."""
    fmt = (explicit or path.suffix.lstrip(".")).lower()
    if fmt in ("jsonl", "ndjson", "json"):
        return "jsonl"
    if fmt == "csv":
        return "csv"
    raise ValueError(f"{path.name}: can't tell the format from the extension; pass --format csv or --format jsonl")


def _dump(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


def read_jsonl(text: str, *, channel: str | None, shop: str | None) -> Iterator[ImportItem]:
    """Messages of a JSONL file; see the module docstring for the two row shapes."""
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if len(line) > MAX_LINE:
            yield ImportItem(n, channel, shop, None, f"line {n}: longer than {MAX_LINE} bytes")
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield ImportItem(n, channel, shop, None, f"line {n}: not JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(value, dict):
            yield ImportItem(n, channel, shop, None, f"line {n}: expected a JSON object, got {type(value).__name__}")
            continue
        row_channel, row_shop, payload = channel, shop, value
        if "payload" in value and ("channel" in value or "shop" in value):
            row_channel = value.get("channel") or channel
            row_shop = value.get("shop") or shop
            payload = value["payload"]
        if not row_channel or not row_shop:
            yield ImportItem(n, row_channel, row_shop, None,
                             f"line {n}: no channel/shop: pass --channel and --shop or use "
                             '{"channel": …, "shop": …, "payload": {…}} rows')
            continue
        yield ImportItem(n, str(row_channel), str(row_shop), _dump(payload))


def read_csv(text: str, *, shop: str | None) -> Iterator[ImportItem]:
    """Messages of a CSV file in the ``csv`` channel's columns, one per order."""
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        yield ImportItem(1, "csv", shop, None, "line 1: the CSV file has no header row")
        return
    by_shop: dict[str | None, list[tuple[int, dict[str, str]]]] = {}
    for row in reader:
        line = reader.line_num
        if None in row:  # more cells than headers
            yield ImportItem(line, "csv", shop, None, f"line {line}: more cells than header columns")
            continue
        cells = {k: (v or "").strip() for k, v in row.items() if k is not None}
        row_shop = cells.pop("shop", "") or shop
        by_shop.setdefault(row_shop, []).append((line, cells))
    for row_shop, rows in by_shop.items():
        if not row_shop:
            first = rows[0][0]
            yield ImportItem(first, "csv", None, None, f"line {first}: no shop: pass --shop or add a 'shop' column")
            continue
        first_line: dict[str, int] = {}
        for line, cells in rows:
            first_line.setdefault(cells.get("order_no", ""), line)
        for message in csv_rows_to_messages([cells for _, cells in rows]):
            order_no = str(message.get("order_no") or "")
            yield ImportItem(first_line.get(order_no, rows[0][0]), "csv", row_shop, _dump(message))


def read_import_file(path: Path, *, fmt: str | None, channel: str | None, shop: str | None) -> list[ImportItem]:
    """Every message (and bad row) of ``path``."""
    text = path.read_text(encoding="utf-8-sig")
    if detect_format(path, fmt) == "csv":
        if channel not in (None, "csv"):
            raise ValueError(f"CSV imports use the csv channel's columns (docs/channels.md), not {channel!r}; "
                             "import other channels' native payloads as JSONL")
        return list(read_csv(text, shop=shop))
    return list(read_jsonl(text, channel=channel, shop=shop))
