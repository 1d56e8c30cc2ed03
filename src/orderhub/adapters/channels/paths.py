"""Field paths into channel payloads: ``line_items[0].price``, ``data.order_id``, ``tax_lines[*].price``.

A path is compiled once, when the spec is loaded, into a tuple of steps (dict key, list index
or wildcard) so that reading a field at mapping time is a short loop with no parsing. A
missing key, a wrong container type or an index out of range reads as ``None``: whether
that is an error is the caller's decision (required field or optional one).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

# A wildcard step (``[*]``) is the one step that is neither a key nor an index.
WILDCARD = None

Step = str | int | None

_TOKEN = re.compile(r"""(?P<key>[^.\[\]"]+)|"(?P<quoted>[^"]+)"|\[(?P<index>\*|-?\d+)\]|(?P<dot>\.)""")


class InvalidPath(ValueError):
    """Raised when a spec file contains a path that does not follow the path syntax."""


def compile_path(text: str) -> tuple[Step, ...]:
    """Turn ``a.b[0].c`` / ``a[*].b`` / ``a."key.with.dots"`` into steps; raise InvalidPath."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidPath(f"a path must be a non-empty string, got {text!r}")
    steps: list[Step] = []
    pos = 0
    expect_key = True
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise InvalidPath(f"bad path {text!r} at character {pos + 1}")
        pos = match.end()
        if match["dot"]:
            if expect_key:
                raise InvalidPath(f"bad path {text!r}: empty key before '.' at character {pos}")
            expect_key = True
        elif match["index"] is not None:
            if expect_key and steps:
                raise InvalidPath(f"bad path {text!r}: '[' right after '.' at character {pos}")
            steps.append(WILDCARD if match["index"] == "*" else int(match["index"]))
            expect_key = False
        else:
            if not expect_key:
                raise InvalidPath(f"bad path {text!r}: missing '.' before character {match.start() + 1}")
            steps.append(match["key"] if match["key"] is not None else match["quoted"])
            expect_key = False
    if expect_key:
        raise InvalidPath(f"bad path {text!r}: ends with '.'")
    return tuple(steps)


def has_wildcard(steps: tuple[Step, ...]) -> bool:
    """True when reading ``steps`` yields a list (one value per matched element)."""
    return any(step is WILDCARD for step in steps)


def read(obj: Any, steps: tuple[Step, ...]) -> Any:
    """The value at ``steps`` in ``obj``, or None; a wildcard path gives the list of found values."""
    for i, step in enumerate(steps):
        if type(step) is str:
            if type(obj) is not dict:
                return None
            obj = obj.get(step)
        elif step is WILDCARD:
            if type(obj) is not list:
                return None
            rest = steps[i + 1:]
            found: list[Any] = []
            for element in obj:
                value = read(element, rest) if rest else element
                if value is None:
                    continue
                # Nested wildcards flatten, so "a[*].b[*].c" is one flat list of c's.
                if type(value) is list and has_wildcard(rest):
                    found.extend(value)
                else:
                    found.append(value)
            return found
        else:
            if type(obj) is not list:
                return None
            try:
                obj = obj[step]  # type: ignore[index]
            except IndexError:
                return None
        if obj is None:
            return None
    return obj


def compile_reader(steps: tuple[Step, ...]) -> Callable[[Any], Any]:
    """A reader specialised for ``steps``: the common one- and two-key paths skip the loop."""
    if len(steps) == 1 and type(steps[0]) is str:
        key = steps[0]
        return lambda obj: obj.get(key) if type(obj) is dict else None
    if len(steps) == 2 and type(steps[0]) is str and type(steps[1]) is str:
        first, second = steps

        def two(obj: Any) -> Any:
            if type(obj) is not dict:
                return None
            inner = obj.get(first)
            return inner.get(second) if type(inner) is dict else None

        return two
    return lambda obj: read(obj, steps)
