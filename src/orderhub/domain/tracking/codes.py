"""Carrier code tables: each carrier's raw tracking codes, normalized to milestones (DESIGN.md §3).

A :class:`CodeTable` holds one carrier's codes (``"01"`` → delivered for USPS, ``"签收"`` →
delivered for ZTO); a :class:`CodeBook` holds every carrier's table plus the operator's
run-time overrides (the ``carrier_codes`` rule set). ``CodeBook.normalize`` answers None for
a code it doesn't know: an unknown code never changes a shipment — the caller keeps it,
counts it per carrier and alerts, until an operator adds an override.

The tables themselves are data (``adapters/carriers/codes/*.yaml``, format in
``docs/carriers.md``); :func:`parse_code_table` and :func:`parse_overrides` turn their
plain-mapping form into these objects and refuse anything malformed with a
:class:`~orderhub.domain.rules.RuleInvalid` whose ``field`` is the path at fault.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from orderhub.domain.errors import UnknownCarrier
from orderhub.domain.rules import RuleInvalid
from orderhub.domain.tracking.milestones import SUB_STATUS_PREFIX, Milestone, milestone_of_sub_status

_MAPPING_KEYS = ("milestone", "sub_status", "description")
_KEYWORD_KEYS = ("match", *_MAPPING_KEYS)
_TABLE_KEYS = ("carrier", "name", "case_sensitive", "codes", "keywords", "description", "notes")
_BODY_KEYS = ("overrides", "description")
MAX_CODE_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 500


def default_sub_status(milestone: Milestone) -> str:
    """The generic sub-status of ``milestone`` (``Delivered_001``), used when a table entry or
    an override names only the milestone."""
    return f"{SUB_STATUS_PREFIX[milestone]}_001"


@dataclass(frozen=True, slots=True)
class CodeMapping:
    """What one raw carrier code means: a milestone and one of its sub-statuses.

    Constructing one whose ``sub_status`` belongs to another milestone (``Delivered_001`` for
    in_transit) raises :class:`RuleInvalid` with ``field="sub_status"``.
    """

    milestone: Milestone
    sub_status: str
    description: str = ""

    def __post_init__(self) -> None:
        owner = milestone_of_sub_status(self.sub_status)
        if owner is None or owner != self.milestone:
            belongs = f"belongs to {owner.value}" if owner is not None else "is not a <Tag>_NNN sub-status"
            raise RuleInvalid(
                f"sub_status {self.sub_status!r} {belongs}, not to milestone {self.milestone}",
                field="sub_status",
            )

    @classmethod
    def of(cls, milestone: Milestone | str, sub_status: str | None = None, description: str = "") -> CodeMapping:
        """Build a mapping from plain values (a rule-set body, a YAML table): ``milestone`` may be
        its string value; a missing ``sub_status`` is the milestone's ``<Prefix>_001``. An
        unknown milestone raises :class:`RuleInvalid` with ``field="milestone"``."""
        resolved = _milestone(milestone, field="milestone")
        return cls(resolved, default_sub_status(resolved) if sub_status is None else sub_status, description)


@dataclass(frozen=True)
class CodeTable:
    """One carrier's code table.

    :meth:`lookup` tries the exact code first (surrounding whitespace ignored, letter case too
    unless ``case_sensitive``). Carriers whose codes are Chinese scan texts also declare
    ``keywords``: ordered ``(substring, mapping)`` pairs tried on the code, then on the
    description, when no code matches exactly — the first pair that matches wins, so more
    specific keywords (退件签收) come before general ones (签收).

    Two codes that are the same once trimmed (and case-folded) raise :class:`RuleInvalid`.
    """

    carrier: str
    name: str
    codes: Mapping[str, CodeMapping]
    case_sensitive: bool = False
    keywords: tuple[tuple[str, CodeMapping], ...] = ()
    _index: Mapping[str, CodeMapping] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, CodeMapping] = {}
        for code, mapping in self.codes.items():
            key = self.key(code)
            if not key:
                raise RuleInvalid("a code must not be empty", field=f"codes.{code}")
            if key in index:
                raise RuleInvalid(f"code {code!r} is listed twice"
                                  + ("" if self.case_sensitive else " (codes are case-insensitive)"),
                                  field=f"codes.{code}")
            index[key] = mapping
        for keyword, _mapping in self.keywords:
            if not keyword.strip():
                raise RuleInvalid("a keyword must not be empty", field="keywords")
        # Frozen: the table is shared by every CodeBook built on it, so nobody may edit it.
        object.__setattr__(self, "codes", MappingProxyType(dict(self.codes)))
        object.__setattr__(self, "_index", MappingProxyType(index))

    def key(self, code: str) -> str:
        """The form ``code`` is compared in: trimmed, and case-folded unless the table is
        case-sensitive. Overrides for this carrier are matched in the same form."""
        trimmed = code.strip()
        return trimmed if self.case_sensitive else trimmed.casefold()

    def lookup(self, code: str, description: str = "") -> CodeMapping | None:
        """The mapping of a raw ``code`` (with its free-text ``description``, used only by the
        keyword fallback), or None when the table doesn't know it."""
        found = self._index.get(self.key(code))
        if found is not None or not self.keywords:
            return found
        for text in (code, description):
            folded = text if self.case_sensitive else text.casefold()
            for keyword, mapping in self.keywords:
                if (keyword if self.case_sensitive else keyword.casefold()) in folded:
                    return mapping
        return None


class CodeBook:
    """Every carrier's code table plus the operator's overrides: the one place a tracking
    update's raw code becomes a milestone.

    ``overrides`` maps carrier → raw code → mapping (a parsed ``carrier_codes`` rule set) and
    wins over the table; codes in it are matched the way the carrier's table matches them.
    An override for a carrier with no table raises :class:`UnknownCarrier`; a table filed
    under another carrier's id raises :class:`RuleInvalid`.
    """

    __slots__ = ("_override_index", "_overrides", "_tables")

    def __init__(self, tables: Mapping[str, CodeTable],
                 overrides: Mapping[str, Mapping[str, CodeMapping]] | None = None) -> None:
        for carrier, table in tables.items():
            if table.carrier != carrier:
                raise RuleInvalid(f"the table filed under {carrier!r} is for carrier {table.carrier!r}",
                                  field="carrier")
        self._tables: Mapping[str, CodeTable] = MappingProxyType(dict(tables))
        self._install(overrides or {})

    def _install(self, overrides: Mapping[str, Mapping[str, CodeMapping]]) -> None:
        index: dict[str, dict[str, CodeMapping]] = {}
        for carrier, codes in overrides.items():
            table = self.table(carrier)
            by_key: dict[str, CodeMapping] = {}
            for code, mapping in codes.items():
                key = table.key(code)
                if not key:
                    raise RuleInvalid("a code must not be empty", field=f"overrides.{carrier}")
                if key in by_key and by_key[key] != mapping:
                    raise RuleInvalid(f"code {code!r} is overridden twice with different meanings",
                                      field=f"overrides.{carrier}.{code}")
                by_key[key] = mapping
            index[carrier] = by_key
        self._overrides = MappingProxyType({c: MappingProxyType(dict(codes)) for c, codes in overrides.items()})
        self._override_index = index

    def carriers(self) -> tuple[str, ...]:
        """Every carrier id with a table, sorted."""
        return tuple(sorted(self._tables))

    def table(self, carrier: str) -> CodeTable:
        """The code table of ``carrier``; :class:`UnknownCarrier` (listing the known ones) if it
        has none."""
        table = self._tables.get(carrier)
        if table is None:
            raise UnknownCarrier(f"no code table for carrier {carrier!r}; known: {', '.join(self.carriers())}",
                                 field="carrier")
        return table

    @property
    def overrides(self) -> Mapping[str, Mapping[str, CodeMapping]]:
        """The operator's overrides this book applies, as given (carrier → code → mapping)."""
        return self._overrides

    def normalize(self, carrier: str, code: str, description: str = "") -> CodeMapping | None:
        """What ``carrier``'s raw ``code`` means: the override if there is one, else the table's
        entry (or keyword match on ``description``); None for a code nobody knows, which must
        change nothing. :class:`UnknownCarrier` for a carrier with no table."""
        table = self.table(carrier)
        override = self._override_index.get(carrier, {}).get(table.key(code))
        if override is not None:
            return override
        return table.lookup(code, description)

    def with_overrides(self, overrides: Mapping[str, Mapping[str, CodeMapping]]) -> CodeBook:
        """A new book with the same tables (shared, not copied) and ``overrides`` in place of
        this book's — used whenever the ``carrier_codes`` rule set changes."""
        book = CodeBook.__new__(CodeBook)
        book._tables = self._tables
        book._install(overrides)
        return book


# --------------------------------------------------------------------------- parsing plain data
def parse_overrides(body: Mapping[str, Any], *, known_carriers: Collection[str]) -> dict[str, dict[str, CodeMapping]]:
    """Validate a ``carrier_codes`` rule-set body and return its overrides
    (carrier → raw code → mapping), e.g.::

        {"overrides": {"usps": {"DELIVERED": {"milestone": "delivered", "sub_status": "Delivered_001"}}}}

    Raises :class:`RuleInvalid` with the path at fault (``overrides.usps.DELIVERED.milestone``)
    for an unknown carrier, an unknown milestone, a sub-status of another milestone, an empty
    code or a value that isn't an object.
    """
    if not isinstance(body, Mapping):
        raise RuleInvalid("a carrier_codes rule set must be an object", field="body")
    _no_unknown_keys(body, _BODY_KEYS, where="")
    if "overrides" not in body:
        raise RuleInvalid('a carrier_codes rule set needs "overrides" (an object, possibly empty)', field="overrides")
    overrides = body["overrides"]
    if not isinstance(overrides, Mapping):
        raise RuleInvalid("overrides must be an object: carrier -> code -> mapping", field="overrides")
    parsed: dict[str, dict[str, CodeMapping]] = {}
    for carrier, codes in overrides.items():
        where = f"overrides.{carrier}"
        if carrier not in known_carriers:
            raise RuleInvalid(f"unknown carrier {carrier!r}; known: {', '.join(sorted(known_carriers))}", field=where)
        if not isinstance(codes, Mapping):
            raise RuleInvalid("a carrier's overrides must be an object: code -> mapping", field=where)
        parsed[carrier] = {_code(code, where=where): mapping_from(value, where=f"{where}.{code}")
                           for code, value in codes.items()}
    return parsed


def parse_code_table(body: Mapping[str, Any], *, carrier: str) -> CodeTable:
    """Build ``carrier``'s table from its plain form (one YAML file, see ``docs/carriers.md``).

    Raises :class:`RuleInvalid` with the path at fault (``codes.01.sub_status``,
    ``keywords[2].match``…) for anything malformed, including codes that aren't strings
    (an unquoted YAML ``01`` is the number 1).
    """
    if not isinstance(body, Mapping):
        raise RuleInvalid("a code table must be an object", field="body")
    _no_unknown_keys(body, _TABLE_KEYS, where="")
    declared = body.get("carrier", carrier)
    if declared != carrier:
        raise RuleInvalid(f"carrier {declared!r} doesn't match the table's id {carrier!r}", field="carrier")
    name = body.get("name", carrier)
    if not isinstance(name, str) or not name.strip():
        raise RuleInvalid("name must be a non-empty string", field="name")
    case_sensitive = body.get("case_sensitive", False)
    if not isinstance(case_sensitive, bool):
        raise RuleInvalid("case_sensitive must be true or false", field="case_sensitive")
    codes = body.get("codes")
    if not isinstance(codes, Mapping) or not codes:
        raise RuleInvalid("codes must be a non-empty object: code -> mapping", field="codes")
    parsed = {_code(code, where="codes"): mapping_from(value, where=f"codes.{code}") for code, value in codes.items()}
    keywords = body.get("keywords") or []
    if not isinstance(keywords, list):
        raise RuleInvalid("keywords must be a list of {match, milestone, sub_status?}", field="keywords")
    return CodeTable(carrier=carrier, name=name.strip(), codes=parsed, case_sensitive=case_sensitive,
                     keywords=tuple(_keywords(keywords)))


def mapping_from(value: Any, *, where: str) -> CodeMapping:
    """One ``{milestone, sub_status?, description?}`` object as a :class:`CodeMapping`; a
    :class:`RuleInvalid` naming ``where.<key>`` if it is malformed."""
    if not isinstance(value, Mapping):
        raise RuleInvalid("a code's mapping must be an object {milestone, sub_status?, description?}", field=where)
    _no_unknown_keys(value, _MAPPING_KEYS, where=where)
    if "milestone" not in value:
        raise RuleInvalid("milestone is required", field=f"{where}.milestone")
    milestone = _milestone(value["milestone"], field=f"{where}.milestone")
    sub_status = value.get("sub_status")
    if sub_status is not None and not isinstance(sub_status, str):
        raise RuleInvalid("sub_status must be a string like Delivered_001", field=f"{where}.sub_status")
    description = value.get("description", "")
    if description is None:
        description = ""
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION_LENGTH:
        raise RuleInvalid(f"description must be a string of at most {MAX_DESCRIPTION_LENGTH} characters",
                          field=f"{where}.description")
    try:
        return CodeMapping.of(milestone, sub_status, description)
    except RuleInvalid as exc:
        raise RuleInvalid(exc.message, field=f"{where}.{exc.field}") from exc


def _keywords(entries: Iterable[Any]) -> Iterable[tuple[str, CodeMapping]]:
    for position, entry in enumerate(entries):
        where = f"keywords[{position}]"
        if not isinstance(entry, Mapping):
            raise RuleInvalid("a keyword must be an object {match, milestone, sub_status?, description?}", field=where)
        _no_unknown_keys(entry, _KEYWORD_KEYS, where=where)
        match = entry.get("match")
        # One entry may list several words for the same meaning (已签收, 代签收…).
        given = match if isinstance(match, list) else [match]
        words = [word.strip() for word in given if isinstance(word, str) and word.strip()]
        if not words or len(words) != len(given):
            raise RuleInvalid("match must be a non-empty string or a list of them", field=f"{where}.match")
        mapping = mapping_from({k: v for k, v in entry.items() if k != "match"}, where=where)
        for word in words:
            yield word, mapping


def _code(code: Any, *, where: str) -> str:
    if not isinstance(code, str):
        raise RuleInvalid(f"code {code!r} must be a string (quote it in YAML)", field=f"{where}.{code}")
    if not code.strip():
        raise RuleInvalid("a code must not be empty", field=where)
    if len(code) > MAX_CODE_LENGTH:
        raise RuleInvalid(f"a code is at most {MAX_CODE_LENGTH} characters", field=f"{where}.{code[:40]}")
    return code


def _milestone(value: Any, *, field: str) -> Milestone:
    try:
        return Milestone(value)
    except (ValueError, TypeError):
        known = ", ".join(m.value for m in Milestone)
        raise RuleInvalid(f"unknown milestone {value!r}; known: {known}", field=field) from None


def _no_unknown_keys(body: Mapping[str, Any], allowed: tuple[str, ...], *, where: str) -> None:
    unknown = sorted(str(key) for key in body if key not in allowed)
    if unknown:
        prefix = f"{where}." if where else ""
        raise RuleInvalid(f"unknown key(s) {unknown}; allowed: {', '.join(allowed)}",
                          field=f"{prefix}{unknown[0]}")
