"""BBQL, the ``q`` filter language of Bitbucket Cloud 2.0: a tokenizer, a parser and an evaluator.

Grammar (from the spec's "Filter and sort API objects" narrative)::

    query      := or_expr
    or_expr    := and_expr ("OR" and_expr)*
    and_expr   := primary ("AND" primary)*
    primary    := "(" or_expr ")" | comparison
    comparison := FIELD op value | FIELD ["NOT"] "IN" "(" value ("," value)* ")"
    op         := "=" | "!=" | "~" | "!~" | ">" | ">=" | "<" | "<="
    value      := "string" | number | true | false | null | datetime

Datetimes are unquoted ISO-8601 (``2026-07-01``, ``2026-07-01T00:00:00+02:00``); without an
offset they are UTC. Fields are dotted paths into the JSON representation
(``destination.branch.name``); a path crossing a list matches when any element matches, as
Bitbucket does for ``reviewers.nickname = "x"``. Keywords are case-insensitive.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["BBQLError", "Query", "field_exists", "parse", "resolve", "sort_key"]


class BBQLError(ValueError):
    """The query does not parse; the message says where and what was expected."""

    def __init__(self, message: str, query: str, position: int) -> None:
        super().__init__(message)
        self.query = query
        self.position = position

    @property
    def detail(self) -> str:
        return f"{self.query}\n{' ' * self.position}^"


_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
    r"(?:Z|[+-]\d{2}:?\d{2})?"
)
# A datetime needs its dashes; a bare number never has them, so the two cannot be confused.
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?![\w.:-])")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_OPERATORS = ("!=", "!~", ">=", "<=", "=", "~", ">", "<")
_KEYWORDS = {"AND", "OR", "IN", "NOT", "TRUE", "FALSE", "NULL"}


@dataclass(frozen=True)
class _Token:
    kind: str  # field, keyword, op, string, number, datetime, lparen, rparen, comma, end
    value: Any
    position: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
            continue
        if char == "(":
            tokens.append(_Token("lparen", "(", i))
            i += 1
            continue
        if char == ")":
            tokens.append(_Token("rparen", ")", i))
            i += 1
            continue
        if char == ",":
            tokens.append(_Token("comma", ",", i))
            i += 1
            continue
        if char == '"':
            value, end = _read_string(text, i)
            tokens.append(_Token("string", value, i))
            i = end
            continue
        operator = next((op for op in _OPERATORS if text.startswith(op, i)), None)
        if operator:
            tokens.append(_Token("op", operator, i))
            i += len(operator)
            continue
        if match := _DATETIME.match(text, i):
            tokens.append(_Token("datetime", _parse_datetime(match.group(), text, i), i))
            i = match.end()
            continue
        if match := _NUMBER.match(text, i):
            tokens.append(_Token("number", Decimal(match.group()), i))
            i = match.end()
            continue
        if match := _FIELD.match(text, i):
            word = match.group()
            if word.upper() in _KEYWORDS:
                tokens.append(_Token("keyword", word.upper(), i))
            else:
                tokens.append(_Token("field", word, i))
            i = match.end()
            continue
        raise BBQLError(f"unexpected character {char!r} at position {i}", text, i)
    tokens.append(_Token("end", None, len(text)))
    return tokens


def _read_string(text: str, start: int) -> tuple[str, int]:
    out: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if char == '"':
            return "".join(out), i + 1
        out.append(char)
        i += 1
    raise BBQLError(f"unterminated string starting at position {start}", text, start)


def _parse_datetime(raw: str, text: str, position: int) -> datetime:
    value = raw.replace(" ", "T")
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    elif re.search(r"[+-]\d{4}$", value):  # +0200 -> +02:00
        value = f"{value[:-2]}:{value[-2:]}"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BBQLError(
            f"invalid datetime {raw!r} at position {position}", text, position
        ) from None
    # Bitbucket: "Date time strings are assumed to be in UTC, unless an explicit offset is given".
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ----------------------------------------------------------------------------------------------
# The syntax tree


@dataclass(frozen=True)
class Comparison:
    field: str
    operator: str  # = != ~ !~ > >= < <= IN NOT IN
    value: Any  # a scalar, or a tuple for IN / NOT IN


@dataclass(frozen=True)
class BoolOp:
    operator: str  # AND | OR
    operands: tuple[Any, ...]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def fail(self, expected: str) -> BBQLError:
        token = self.current
        found = "the end of the query" if token.kind == "end" else repr(str(token.value))
        return BBQLError(
            f"expected {expected} at position {token.position}, found {found}",
            self.text,
            token.position,
        )

    def parse(self) -> Any:
        if self.current.kind == "end":
            raise self.fail("a field name")
        node = self.or_expr()
        if self.current.kind != "end":
            raise self.fail("AND, OR or the end of the query")
        return node

    def or_expr(self) -> Any:
        operands = [self.and_expr()]
        while self.current.kind == "keyword" and self.current.value == "OR":
            self.advance()
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else BoolOp("OR", tuple(operands))

    def and_expr(self) -> Any:
        operands = [self.primary()]
        while self.current.kind == "keyword" and self.current.value == "AND":
            self.advance()
            operands.append(self.primary())
        return operands[0] if len(operands) == 1 else BoolOp("AND", tuple(operands))

    def primary(self) -> Any:
        if self.current.kind == "lparen":
            self.advance()
            node = self.or_expr()
            if self.current.kind != "rparen":
                raise self.fail("')'")
            self.advance()
            return node
        return self.comparison()

    def comparison(self) -> Comparison:
        if self.current.kind != "field":
            raise self.fail("a field name")
        field = self.advance().value
        token = self.current
        if token.kind == "op":
            self.advance()
            return Comparison(field, token.value, self.value())
        if token.kind == "keyword" and token.value == "IN":
            self.advance()
            return Comparison(field, "IN", self.value_list())
        if token.kind == "keyword" and token.value == "NOT":
            self.advance()
            if not (self.current.kind == "keyword" and self.current.value == "IN"):
                raise self.fail("IN after NOT")
            self.advance()
            return Comparison(field, "NOT IN", self.value_list())
        raise self.fail(f"an operator (= != ~ !~ > >= < <= IN NOT IN) after {field!r}")

    def value(self) -> Any:
        token = self.current
        if token.kind in ("string", "number", "datetime"):
            self.advance()
            return token.value
        if token.kind == "keyword" and token.value in ("TRUE", "FALSE", "NULL"):
            self.advance()
            return {"TRUE": True, "FALSE": False, "NULL": None}[token.value]
        raise self.fail('a value ("string", number, true, false, null or a datetime)')

    def value_list(self) -> tuple[Any, ...]:
        if self.current.kind != "lparen":
            raise self.fail("'(' to open the list")
        self.advance()
        values = [self.value()]
        while self.current.kind == "comma":
            self.advance()
            values.append(self.value())
        if self.current.kind != "rparen":
            raise self.fail("',' or ')' in the list")
        self.advance()
        return tuple(values)


# ----------------------------------------------------------------------------------------------
# Evaluation

_MISSING = object()


def resolve(document: Any, path: str) -> list[Any]:
    """Every value at dotted ``path`` in ``document``: lists fan out, a missing key yields None."""
    current = [document]
    for segment in path.split("."):
        following: list[Any] = []
        for item in current:
            items = item if isinstance(item, list) else [item]
            for element in items:
                if isinstance(element, Mapping):
                    following.append(element.get(segment))
                else:
                    following.append(None)
        current = following
    flat: list[Any] = []
    for item in current:
        if isinstance(item, list):
            flat.extend(item if item else [None])
        else:
            flat.append(item)
    return flat or [None]


def field_exists(document: Any, path: str) -> bool:
    """True when ``path`` names a field of ``document`` (a null on the way counts as present)."""
    current: list[Any] = [document]
    for segment in path.split("."):
        following: list[Any] = []
        for item in current:
            if isinstance(item, list) and not item:
                return True  # an empty list cannot show whether its elements have the field
            for element in item if isinstance(item, list) else [item]:
                if element is None:
                    return True
                if isinstance(element, Mapping) and segment in element:
                    following.append(element[segment])
        if not following:
            return False
        current = following
    return True


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and re.match(r"\d{4}-\d{2}-\d{2}", value):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def _as_number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            return None
    return None


Orderings = Mapping[str, Sequence[str]]


def _compare(actual: Any, operator: str, expected: Any, ordering: Sequence[str] | None) -> bool:
    if expected is None:
        if operator == "=":
            return actual is None
        if operator == "!=":
            return actual is not None
        return False
    if isinstance(expected, bool):
        if operator in ("=", "!="):
            return (actual is expected) == (operator == "=")
        return False
    if operator in ("~", "!~"):
        if actual is None:
            return operator == "!~"
        contains = str(expected).lower() in str(actual).lower()
        return contains == (operator == "~")
    left: Any
    right: Any
    if isinstance(expected, datetime):
        left, right = _as_datetime(actual), expected
    elif isinstance(expected, Decimal):
        left, right = _as_number(actual), expected
    elif ordering is not None and actual in ordering and expected in ordering:
        # Enumerations such as permission (read < write < admin) compare by rank, not spelling.
        left, right = ordering.index(actual), ordering.index(expected)
    else:
        left, right = (None if actual is None else str(actual)), str(expected)
    if operator == "=":
        return left is not None and left == right
    if operator == "!=":
        return left is None or left != right
    if left is None:
        return False
    return {
        ">": left > right,
        ">=": left >= right,
        "<": left < right,
        "<=": left <= right,
    }[operator]


@dataclass(frozen=True)
class Query:
    """A parsed BBQL query: ``matches(document)`` and the fields it names."""

    text: str
    root: Any

    def fields(self) -> list[str]:
        found: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, Comparison):
                found.append(node.field)
            else:
                for operand in node.operands:
                    walk(operand)

        walk(self.root)
        return found

    def matches(self, document: Any, orderings: Orderings | None = None) -> bool:
        return self._evaluate(self.root, document, orderings or {})

    def _evaluate(self, node: Any, document: Any, orderings: Orderings) -> bool:
        if isinstance(node, BoolOp):
            results = (self._evaluate(operand, document, orderings) for operand in node.operands)
            return all(results) if node.operator == "AND" else any(results)
        values = resolve(document, node.field)
        ordering = orderings.get(node.field)
        if node.operator == "IN":
            return any(_compare(v, "=", e, ordering) for v in values for e in node.value)
        if node.operator == "NOT IN":
            return all(not _compare(v, "=", e, ordering) for v in values for e in node.value)
        if node.operator in ("!=", "!~"):
            # Negations hold only when no element of a fanned-out list matches the positive form.
            positive = "=" if node.operator == "!=" else "~"
            return not any(_compare(v, positive, node.value, ordering) for v in values)
        return any(_compare(v, node.operator, node.value, ordering) for v in values)


def parse(text: str) -> Query:
    """Parse a BBQL query; raises ``BBQLError`` with the position of the first problem."""
    return Query(text, _Parser(text).parse())


def sort_key(path: str, orderings: Orderings | None = None) -> Callable[[Any], tuple[Any, ...]]:
    """A key function sorting documents by the value at ``path`` (missing values last)."""
    ordering = (orderings or {}).get(path)

    def key(document: Any) -> tuple[Any, ...]:
        value = resolve(document, path)[0]
        if value is None:
            return (1, 0, "")
        if ordering is not None and value in ordering:
            return (0, 0, ordering.index(value))
        if isinstance(value, bool):
            return (0, 1, int(value))
        if isinstance(value, int | float):
            return (0, 2, value)
        if (moment := _as_datetime(value)) is not None:
            return (0, 3, moment)
        return (0, 4, str(value))

    return key
