"""Rules as data (DESIGN.md §4): versioned rule sets whose conditions are CEL expressions.

The domain knows the shape of each kind of rule set and how its decisions are made; the
CEL library itself lives in ``adapters/rules.py``, which hands the domain an ``evaluate``
callable. The errors below are shared by every kind of rule set.
"""

from __future__ import annotations

from orderhub.domain.errors import DomainError


class RuleInvalid(DomainError):
    """Raised when a rule set is refused before it is stored or used: a wrong shape (missing
    name, unknown action, duplicate name…) or a condition that is not valid CEL. ``field`` is
    the path in the rule-set body, e.g. ``rules[2].when``."""

    code = "rule_invalid"


class RuleEvaluationFailed(DomainError):
    """Raised when a stored rule's condition can't be evaluated for one input (a missing
    key, a type error, a result that isn't true or false). Filter decisions catch it and
    hold the order (fail closed) rather than let it through unchecked."""

    code = "rule_evaluation_failed"
