"""`x-kubernetes-validations` rules, evaluated with cel-python (`celpy`).

Rules are compiled once and cached by their text. A rule that refers to `oldSelf` is a
transition rule and runs only on updates where the old value exists, as upstream.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import celpy
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

__all__ = ["RuleFailure", "evaluate_rule", "is_transition_rule"]

_ENV = celpy.Environment()


class RuleFailure(Exception):
    """The rule could not be compiled or evaluated (reported as a 422 cause)."""


@lru_cache(maxsize=1024)
def _program(rule: str) -> Any:
    try:
        return _ENV.program(_ENV.compile(rule))
    except Exception as e:  # celpy raises its own parse errors
        raise RuleFailure(f"compilation failed: {e}") from e


def is_transition_rule(rule: str) -> bool:
    return "oldSelf" in rule


def evaluate_rule(rule: str, value: Any, old: Any = None, *, has_old: bool = False) -> Any:
    """Evaluate `rule` with `self` (and `oldSelf`); returns the rule's value (as Python)."""
    activation: dict[str, Any] = {"self": json_to_cel(value)}
    if has_old:
        activation["oldSelf"] = json_to_cel(old)
    try:
        result = _program(rule).evaluate(activation)
    except CELEvalError as e:
        raise RuleFailure(_short(e)) from e
    except RuleFailure:
        raise
    except Exception as e:
        raise RuleFailure(str(e)) from e
    if isinstance(result, CELEvalError):
        raise RuleFailure(_short(result))
    return result


def _short(err: Exception) -> str:
    args = getattr(err, "args", ())
    return str(args[0]) if args else str(err)
