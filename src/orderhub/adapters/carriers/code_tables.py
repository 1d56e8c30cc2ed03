"""Loading the carrier code tables (``codes/<carrier>.yaml``, format in ``docs/carriers.md``).

The built-in tables ship inside the package and are read through ``importlib.resources``;
an operator's directory (``$ORDERHUB_HOME/carriers``) may hold ``<carrier>.yaml`` files that
replace a built-in table or add a carrier. Run-time overrides of single codes are a rule set
of kind ``carrier_codes`` (:func:`validate_carrier_codes`, :func:`default_carrier_codes`).

A broken file raises :class:`InvalidCodeTable` naming the file and the path at fault, e.g.
``.../usps.yaml: codes.01.sub_status: sub_status 'InTransit_001' belongs to in_transit, not to
milestone delivered`` — when OrderHub starts, not when the first parcel with that code arrives.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from orderhub.domain.rules import RuleInvalid
from orderhub.domain.tracking.codes import CodeBook, CodeTable, parse_code_table, parse_overrides

# The carriers with a built-in table, in the order docs/carriers.md lists them.
CARRIER_IDS: tuple[str, ...] = ("sf", "zto", "yto", "sto", "yunda", "jdl", "ems", "cainiao",
                                "usps", "ups", "fedex", "dhl")

CARRIER_CODES = "carrier_codes"


class InvalidCodeTable(ValueError):
    """Raised when a code table file can't be used: unreadable, not YAML, or a malformed entry
    (unknown milestone, sub-status of another milestone, unquoted numeric code…). The message
    names the file and the path in it (``codes.01.sub_status``); ``source`` and ``field`` hold
    them separately."""

    def __init__(self, message: str, *, source: str, field: str | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.field = field


def load_code_book(extra_dir: Path | None = None) -> CodeBook:
    """Every carrier's code table, without overrides: the built-in ones, replaced or extended
    by the ``*.yaml`` files of ``extra_dir`` when it is given and exists (a file's name is its
    carrier id). :class:`InvalidCodeTable` for a broken file."""
    builtin = _builtin_book()
    if extra_dir is None or not extra_dir.is_dir():
        return builtin
    extra = sorted(extra_dir.glob("*.yaml"))
    if not extra:
        return builtin
    # The built-in tables are immutable and shared by every book; only the operator's are new.
    tables = {carrier: builtin.table(carrier) for carrier in builtin.carriers()}
    tables.update({path.stem: load_table_file(path) for path in extra})
    return CodeBook(tables)


def load_table_file(path: Path) -> CodeTable:
    """One code table file; its carrier id is the file name (``usps.yaml`` → ``usps``).
    :class:`InvalidCodeTable` naming the file when it is broken."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidCodeTable(f"{path}: can't read the file: {exc}", source=str(path)) from exc
    return _parse(text, carrier=path.stem, source=str(path))


def validate_carrier_codes(body: Mapping[str, Any]) -> None:
    """The validator of rule sets of kind ``carrier_codes`` (run-time overrides of single codes,
    ``PUT /api/v1/rules/carrier_codes``): :class:`RuleInvalid` with the path at fault, e.g.
    ``overrides.usps.DELIVERED.milestone``, for a body that can't be used with the built-in
    carriers."""
    parse_overrides(body, known_carriers=CARRIER_IDS)


def default_carrier_codes() -> dict[str, Any]:
    """The seeded ``carrier_codes`` rule set: no overrides, the tables as shipped."""
    return {"overrides": {}}


def code_book_with(body: Mapping[str, Any], *, extra_dir: Path | None = None) -> CodeBook:
    """The code book that applies a stored ``carrier_codes`` rule set: the tables of
    :func:`load_code_book` plus the body's overrides. :class:`RuleInvalid` for a bad body,
    checked against the carriers that actually have a table (built-in or from ``extra_dir``)."""
    book = load_code_book(extra_dir)
    return book.with_overrides(parse_overrides(body, known_carriers=book.carriers()))


@functools.cache
def _builtin_book() -> CodeBook:
    folder = resources.files("orderhub.adapters.carriers").joinpath("codes")
    tables: dict[str, CodeTable] = {}
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if entry.name.endswith(".yaml"):
            carrier = entry.name.removesuffix(".yaml")
            tables[carrier] = _parse(entry.read_text("utf-8"), carrier=carrier, source=f"codes/{entry.name}")
    return CodeBook(tables)


def _parse(text: str, *, carrier: str, source: str) -> CodeTable:
    try:
        body = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidCodeTable(f"{source}: not valid YAML: {exc}", source=source) from exc
    try:
        return parse_code_table(body, carrier=carrier)
    except RuleInvalid as exc:
        where = f"{exc.field}: " if exc.field else ""
        raise InvalidCodeTable(f"{source}: {where}{exc.message}", source=source, field=exc.field) from exc
