"""Imports only point down (DESIGN.md §1), checked by parsing every module with ``ast``.

* ``orderhub.domain`` imports the standard library and ``orderhub.domain`` only.
* Inner layers never import outer ones: domain ↛ service_layer / adapters / entrypoints /
  workers / bootstrap; adapters ↛ service_layer / entrypoints / workers / bootstrap;
  service_layer ↛ entrypoints / workers / bootstrap.

Every import counts: module level, inside functions, under ``TYPE_CHECKING``, relative ones,
and ``importlib.import_module("…")`` / ``__import__("…")`` with a literal name.
"""

from __future__ import annotations

import ast
import functools
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "orderhub"

DOMAIN = "orderhub.domain"
OUTER_LAYERS: dict[str, tuple[str, ...]] = {
    "orderhub.domain": ("orderhub.service_layer", "orderhub.adapters", "orderhub.entrypoints",
                        "orderhub.workers", "orderhub.bootstrap"),
    "orderhub.adapters": ("orderhub.service_layer", "orderhub.entrypoints", "orderhub.workers",
                          "orderhub.bootstrap"),
    "orderhub.service_layer": ("orderhub.entrypoints", "orderhub.workers", "orderhub.bootstrap"),
}


@dataclass(frozen=True)
class Import:
    """One imported name: ``target`` is the full dotted name (``a.b.C`` for ``from a.b import C``)."""

    module: str
    path: str
    line: int
    target: str
    statement: str

    def __str__(self) -> str:
        return f"{self.module} ({self.path}:{self.line}) imports {self.target}  [{self.statement}]"


def module_name(path: Path, root: Path = SRC) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    package = module.split(".") if is_package else module.split(".")[:-1]
    if level - 1 > len(package) - 1:
        raise ImportError(f"relative import beyond the top-level package in {module}")
    base = package[: len(package) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports_of(source: str, *, module: str, path: str = "<string>", is_package: bool = False) -> Iterator[Import]:
    """Every name ``source`` (the text of ``module``) imports."""
    tree = ast.parse(source, filename=path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, path, node.lineno, alias.name, f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            base = (_resolve_relative(module, is_package, node.level, node.module) if node.level
                    else node.module or "")
            shown = "." * node.level + (node.module or "")
            for alias in node.names:
                target = base if alias.name == "*" else f"{base}.{alias.name}"
                yield Import(module, path, node.lineno, target, f"from {shown} import {alias.name}")
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield Import(module, path, node.lineno, first.value, f"{ast.unparse(node.func)}({first.value!r})")


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in {"__import__", "import_module"}
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def within(name: str, layer: str) -> bool:
    return name == layer or name.startswith(layer + ".")


def is_stdlib(name: str) -> bool:
    return name.split(".", maxsplit=1)[0] in sys.stdlib_module_names


def domain_violations(imports: list[Import]) -> list[Import]:
    """Imports of a domain module that are neither the standard library nor the domain."""
    return [i for i in imports if not (is_stdlib(i.target) or within(i.target, DOMAIN))]


def layer_violations(imports: list[Import], layer: str) -> list[Import]:
    """Imports of a module in ``layer`` that reach into a layer above it."""
    return [i for i in imports if within(i.module, layer)
            and any(within(i.target, outer) for outer in OUTER_LAYERS[layer])]


@functools.cache
def _all_imports() -> tuple[Import, ...]:
    found: list[Import] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        found.extend(imports_of(path.read_text(encoding="utf-8"), module=name,
                                path=str(path.relative_to(SRC.parent)), is_package=path.name == "__init__.py"))
    return tuple(found)


def all_imports() -> list[Import]:
    """Every import in src/orderhub (parsed once per test session)."""
    return list(_all_imports())


def report(violations: list[Import], rule: str) -> str:
    return f"{rule} — {len(violations)} violation(s):\n" + "\n".join(f"  {v}" for v in violations)


# --------------------------------------------------------------------------- the rules
def test_the_checker_sees_the_whole_package() -> None:
    modules = {i.module for i in all_imports()}
    assert {"orderhub.domain.money", "orderhub.domain.orders.model", "orderhub.adapters.db.orders",
            "orderhub.service_layer.unit_of_work"} <= modules


def test_domain_imports_only_the_standard_library_and_itself() -> None:
    violations = domain_violations([i for i in all_imports() if within(i.module, DOMAIN)])
    assert not violations, report(violations, "orderhub.domain may import only the standard library and itself")


@pytest.mark.parametrize("layer", sorted(OUTER_LAYERS))
def test_inner_layers_do_not_import_outer_layers(layer: str) -> None:
    violations = layer_violations(all_imports(), layer)
    assert not violations, report(violations, f"{layer} must not import {', '.join(OUTER_LAYERS[layer])}")


# --------------------------------------------------------------------------- the checker itself
def check(source: str, module: str, *, is_package: bool = False) -> tuple[list[str], list[str]]:
    """(domain violations, layer violations) of a synthetic module, as target names."""
    imports = list(imports_of(source, module=module, is_package=is_package))
    layer = next((name for name in OUTER_LAYERS if within(module, name)), None)
    domain = [i.target for i in domain_violations(imports)] if within(module, DOMAIN) else []
    layered = [i.target for i in layer_violations(imports, layer)] if layer else []
    return domain, layered


CLEAN_DOMAIN = """
from __future__ import annotations
import hashlib, os.path
from datetime import UTC
from collections.abc import Mapping
from orderhub.domain.errors import DomainError
from orderhub.domain import ids
from orderhub import domain
from . import states
from ..money import Money
import importlib
"""


def test_checker_accepts_a_clean_domain_module() -> None:
    assert check(CLEAN_DOMAIN, "orderhub.domain.orders.model") == ([], [])


@pytest.mark.parametrize(("source", "module", "domain", "layered"), [
    ("import sqlalchemy", "orderhub.domain.money", ["sqlalchemy"], []),
    ("from pydantic import BaseModel", "orderhub.domain.money", ["pydantic.BaseModel"], []),
    ("def f():\n    import structlog\n", "orderhub.domain.money", ["structlog"], []),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from sqlalchemy import Engine\n",
     "orderhub.domain.money", ["sqlalchemy.Engine"], []),
    ("from orderhub import config", "orderhub.domain.money", ["orderhub.config"], []),
    ("from orderhub import bootstrap", "orderhub.domain.money", ["orderhub.bootstrap"], ["orderhub.bootstrap"]),
    ("from orderhub.adapters.db.tables import orders", "orderhub.domain.orders.model",
     ["orderhub.adapters.db.tables.orders"], ["orderhub.adapters.db.tables.orders"]),
    ("from ...service_layer.errors import NotFound", "orderhub.domain.orders.model",
     ["orderhub.service_layer.errors.NotFound"], ["orderhub.service_layer.errors.NotFound"]),
    ("from .. import workers", "orderhub.domain", ["orderhub.workers"], ["orderhub.workers"]),
    ("import importlib\nimportlib.import_module('sqlalchemy')", "orderhub.domain.money", ["sqlalchemy"], []),
    ("__import__('orderhub.entrypoints.api')", "orderhub.domain.money",
     ["orderhub.entrypoints.api"], ["orderhub.entrypoints.api"]),
    ("from orderhub.service_layer.errors import ConcurrencyConflict", "orderhub.adapters.db.orders",
     [], ["orderhub.service_layer.errors.ConcurrencyConflict"]),
    ("from ...service_layer import errors", "orderhub.adapters.db.orders", [], ["orderhub.service_layer.errors"]),
    ("import orderhub.workers.runner", "orderhub.adapters.db.queue", [], ["orderhub.workers.runner"]),
    ("from orderhub.entrypoints.api import app", "orderhub.service_layer.handlers",
     [], ["orderhub.entrypoints.api.app"]),
    # Allowed directions are not reported.
    ("from orderhub.domain.money import Money\nimport sqlalchemy", "orderhub.adapters.db.orders", [], []),
    ("from orderhub.adapters.db.orders import SqlOrderRepository", "orderhub.service_layer.unit_of_work", [], []),
    ("from orderhub.service_layer import messagebus", "orderhub.entrypoints.api.app", [], []),
    # A module whose name merely starts like a layer is not in it.
    ("import orderhub.workers_extra", "orderhub.adapters.db.queue", [], []),
])
def test_checker_detects_violations(source: str, module: str, domain: list[str], layered: list[str]) -> None:
    assert check(source, module, is_package=module == "orderhub.domain") == (domain, layered)


def test_failure_message_names_the_module_and_the_import() -> None:
    imports = list(imports_of("import os\nfrom sqlalchemy import select\n", module="orderhub.domain.money",
                              path="src/orderhub/domain/money.py"))
    message = report(domain_violations(imports), "rule")
    assert "orderhub.domain.money (src/orderhub/domain/money.py:2) imports sqlalchemy.select" in message
    assert "[from sqlalchemy import select]" in message
    assert "os" not in message.split("\n", 1)[1]


def test_relative_import_beyond_the_top_is_an_error() -> None:
    with pytest.raises(ImportError):
        list(imports_of("from .... import x", module="orderhub.domain.money"))
