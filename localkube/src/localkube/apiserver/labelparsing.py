"""Label selector strings parsed as apimachinery's `labels.Parse` parses them.

A port of its lexer and recursive-descent parser (k8s.io/apimachinery/pkg/labels), so that
localkube accepts exactly the selectors kube-apiserver accepts, reads them the same way
(`a in ()` is the empty value, `in` is a key in value position) and refuses the others
with the same words (`unable to parse requirement: found '(', expected: identifier`).
Keys and values are checked as label keys (qualified names) and label values.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .errors import ApiError

__all__ = ["Requirement", "parse_label_selector"]

_SPECIAL = set("=!(),<>")
_TOKENS = {
    ")": "ClosedPar",
    ",": "Comma",
    "!": "DoesNotExist",
    "==": "DoubleEquals",
    "=": "Equals",
    ">": "GreaterThan",
    "in": "In",
    "<": "LessThan",
    "!=": "NotEquals",
    "notin": "NotIn",
    "(": "OpenPar",
}
_OPERATORS = {
    "In": "in",
    "NotIn": "notin",
    "Equals": "=",
    "DoubleEquals": "==",
    "NotEquals": "!=",
    "GreaterThan": "gt",
    "LessThan": "lt",
}
_BINARY = "in, notin, =, ==, !=, gt, lt"
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_QUALIFIED_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    f"validation is '{_QUALIFIED_FMT}')"
)
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


class _ParseError(Exception):
    pass


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # in, notin, =, ==, !=, gt, lt, exists, !
    values: frozenset[str]

    def matches(self, labels: dict[str, str]) -> bool:
        has = self.key in labels
        if self.op in ("in", "=", "=="):
            return has and labels[self.key] in self.values
        if self.op in ("notin", "!="):
            return not has or labels[self.key] not in self.values
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        try:  # gt, lt: both sides integers
            have, want = int(labels[self.key]), int(next(iter(self.values)))
        except (KeyError, ValueError, StopIteration):
            return False
        return have > want if self.op == "gt" else have < want


def _lex(text: str) -> list[tuple[str, str]]:
    """(token, literal) pairs, ending with ("EndOfString", "")."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            out.append(("EndOfString", ""))
            return out
        if text[i] in _SPECIAL:  # the longest run of symbols that is still a token
            buffer, last = "", None
            while i < n and text[i] in _SPECIAL:
                if buffer + text[i] not in _TOKENS and last is not None:
                    break
                buffer += text[i]
                i += 1
                if buffer in _TOKENS:
                    last = (_TOKENS[buffer], buffer)
            if last is None:
                out.append(("Error", f"error expected: keyword found '{buffer}'"))
                return out
            out.append(last)
            continue
        start = i
        while i < n and text[i] not in _SPECIAL and text[i] not in " \t\r\n":
            i += 1
        word = text[start:i]
        out.append((_TOKENS[word], word) if word in ("in", "notin") else ("Identifier", word))


class _Parser:
    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.pos = 0

    def lookahead(self, values: bool = True) -> tuple[str, str]:
        tok, lit = self.items[min(self.pos, len(self.items) - 1)]
        if values and tok in ("In", "NotIn"):
            tok = "Identifier"
        return tok, lit

    def consume(self, values: bool = True) -> tuple[str, str]:
        tok, lit = self.lookahead(values)
        self.pos += 1
        return tok, lit

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.lookahead()
            if tok in ("Identifier", "DoesNotExist"):
                try:
                    reqs.append(self.requirement())
                except _ParseError as e:
                    raise _ParseError(f"unable to parse requirement: {e}") from None
                tok, lit = self.consume()
                if tok == "EndOfString":
                    return reqs
                if tok != "Comma":
                    raise _ParseError(f"found '{lit}', expected: ',' or 'end of string'")
                tok2, lit2 = self.lookahead()
                if tok2 not in ("Identifier", "DoesNotExist"):
                    raise _ParseError(f"found '{lit2}', expected: identifier after ','")
            elif tok == "EndOfString":
                return reqs
            else:
                raise _ParseError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        op = ""
        tok, key = self.consume()
        if tok == "DoesNotExist":
            op = "!"
            tok, key = self.consume()
        if tok != "Identifier":
            raise _ParseError(f"found '{key}', expected: identifier")
        _check_key(key)
        if self.lookahead()[0] in ("EndOfString", "Comma"):
            return Requirement(key, op or "exists", frozenset())
        if op == "!":
            return Requirement(key, op, frozenset())
        tok, lit = self.consume(values=False)
        if tok not in _OPERATORS:
            raise _ParseError(f"found '{lit}', expected: {_BINARY}")
        op = _OPERATORS[tok]
        values = self.values() if op in ("in", "notin") else self.exact_value()
        return _new_requirement(key, op, sorted(set(values)))  # a sorted set, as upstream

    def values(self) -> list[str]:
        tok, lit = self.consume()
        if tok != "OpenPar":
            raise _ParseError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead()
        if tok == "ClosedPar":
            self.consume()
            return [""]
        if tok not in ("Identifier", "Comma"):
            raise _ParseError(f"found '{lit}', expected: ',', ')' or identifier")
        out = self.identifiers()
        if self.consume()[0] != "ClosedPar":
            raise _ParseError(f"found '{lit}', expected: ')'")
        return out

    def identifiers(self) -> list[str]:
        out: list[str] = []
        while True:
            tok, lit = self.consume()
            if tok == "Identifier":
                out.append(lit)
                tok2, lit2 = self.lookahead()
                if tok2 == "ClosedPar":
                    return out
                if tok2 != "Comma":
                    raise _ParseError(f"found '{lit2}', expected: ',' or ')'")
            elif tok == "Comma":
                if not out:
                    out.append("")
                tok2, _ = self.lookahead()
                if tok2 == "ClosedPar":
                    out.append("")
                    return out
                if tok2 == "Comma":
                    self.consume()
                    out.append("")
            else:
                raise _ParseError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> list[str]:
        if self.lookahead()[0] in ("EndOfString", "Comma"):
            return [""]
        tok, lit = self.consume()
        if tok != "Identifier":
            raise _ParseError(f"found '{lit}', expected: identifier")
        return [lit]


def _check_key(key: str) -> None:
    """IsQualifiedName, worded as labels.Parse reports it (the path prints as `<nil>`)."""
    parts = key.split("/")
    errors: list[str] = []
    if len(parts) > 2:
        errors.append(
            f"a valid label key {_QUALIFIED_MSG} with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')"
        )
    else:
        name = parts[-1]
        if len(parts) == 2:
            prefix = parts[0]
            if not prefix:
                errors.append("prefix part must be non-empty")
            else:
                if len(prefix) > 253:
                    errors.append("prefix part must be no more than 253 bytes")
                if not _DNS_SUBDOMAIN.fullmatch(prefix):
                    errors.append(f"prefix part {_DNS_MSG}")
        if not name:
            errors.append("name part must be non-empty")
        elif len(name) > 63:
            errors.append("name part must be no more than 63 bytes")
        if not _QUALIFIED_NAME.fullmatch(name):
            errors.append(f"name part {_QUALIFIED_MSG}")
    if errors:
        raise _ParseError(f"<nil>: Invalid value: {json.dumps(key)}: {'; '.join(errors)}")


def _new_requirement(key: str, op: str, values: list[str]) -> Requirement:
    """NewRequirement's checks of the values (the key was checked while parsing)."""
    errors: list[str] = []
    if op in ("gt", "lt"):
        for i, v in enumerate(values):
            if not re.fullmatch(r"[-+]?\d+", v):
                errors.append(
                    f"values[{i}]: Invalid value: {json.dumps(v)}: for 'Gt', 'Lt' operators, "
                    "the value must be an integer"
                )
    for i, v in enumerate(values):
        problems = []
        if len(v) > 63:
            problems.append("must be no more than 63 bytes")
        if not _LABEL_VALUE.fullmatch(v):
            problems.append(_LABEL_VALUE_MSG)
        if problems:
            errors.append(
                f"values[{i}][{key}]: Invalid value: {json.dumps(v)}: {'; '.join(problems)}"
            )
    if errors:
        raise _ParseError(errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")
    return Requirement(key, op, frozenset(values))


def parse_label_selector(text: str) -> list[Requirement]:
    """The requirements of a `labelSelector`; a 400 with upstream's message when invalid."""
    try:
        return _Parser(text).parse()
    except _ParseError as e:
        raise ApiError(400, str(e)) from None
