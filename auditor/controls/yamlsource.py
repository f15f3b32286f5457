"""YAML files a user edits, read with the line and column of every value kept.

ruamel.yaml's round-trip loader remembers where each key and value sits; ``load_yaml`` turns the
document into plain Python values (``dict``, ``list``, ``str``, ``int``, ``float``, ``bool``,
``date``, ``None``) for validation, and returns a ``SourceMap`` that answers "where is the value at
path ``("controls", 3, "parameters", "min_approvals")``?" so that every validation error can name
``file:line:column``. ``Problem`` and ``raise_problems`` turn collected errors into one
``ConfigError`` with one line per error.

These files come from people, sometimes from a repository anyone can change, so before anything is
built from them ``load_yaml`` refuses what YAML can do but a settings file never needs, each with
``file:line:column``: anchors and aliases (a few nested aliases expand to billions of nodes),
explicit tags (``!!python/object`` and friends), dates that do not exist (``2027-02-30``), files
larger than ``MAX_INPUT_BYTES`` and text that is not UTF-8.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent

from auditor.errors import ConfigError

PathKey = tuple[Any, ...]
# The shipped catalog is 25 kB; a settings file a thousand times larger is a mistake or an attack.
MAX_INPUT_BYTES = 5 * 1024 * 1024
_DATE_LIKE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?=$|[Tt ])")
ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class Position:
    """A 1-based line and column in a file."""

    line: int
    column: int


@dataclass
class SourceMap:
    """Where each node of a YAML document sits (1-based line and column)."""

    file: str
    values: dict[PathKey, Position] = field(default_factory=dict)
    keys: dict[PathKey, Position] = field(default_factory=dict)

    def where(self, path: Sequence[Any], *, key: bool = False) -> Position:
        """The position of the value (or, with ``key``, of the key) at ``path``.

        Falls back to the nearest enclosing node that exists, so a missing key points at the
        mapping that lacks it.
        """
        current = tuple(path)
        if key and current in self.keys:
            return self.keys[current]
        while current:
            if current in self.values:
                return self.values[current]
            current = current[:-1]
        return self.values.get((), Position(1, 1))


@dataclass(frozen=True)
class Problem:
    """One validation error: where, about which object, what is wrong."""

    file: str
    position: Position
    subject: str  # "control CM-4", "exception #2 (AC-1)", "frameworks.soc2", or ""
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.position.line}:{self.position.column}"
        return (
            f"{where}: {self.subject}: {self.message}"
            if self.subject
            else f"{where}: {self.message}"
        )


def raise_problems(problems: Iterable[Problem]) -> None:
    """Raise one ``ConfigError`` listing every problem, one per line, in file order."""
    ordered = sorted(
        set(problems), key=lambda p: (p.position.line, p.position.column, p.subject, p.message)
    )
    if ordered:
        raise ConfigError("\n".join(str(problem) for problem in ordered))


@dataclass
class YamlDocument:
    data: Any
    source: SourceMap
    sha256: str


def load_yaml(path: Path, *, display_name: str | None = None) -> YamlDocument:
    """Read ``path`` into plain Python values plus the position of each node.

    Syntax errors and duplicate keys become a ``ConfigError`` naming ``file:line:column``.
    """
    name = display_name or str(path)
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_INPUT_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"{name}: cannot read the file: {error.strerror or error}") from None
    if len(raw) > MAX_INPUT_BYTES:
        raise ConfigError(
            f"{name}: the file is larger than {MAX_INPUT_BYTES // (1024 * 1024)} MB, far more "
            "than any catalog, exceptions, configuration or credential-facts file needs; "
            "refusing to read it"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{name}: not UTF-8 text (byte {error.start})") from None
    yaml = YAML(typ="rt")
    try:
        _refuse_unsafe_constructs(yaml, text, name)
        tree = yaml.load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = (error.problem or error.context or "invalid YAML").replace('"', "'")
        raise ConfigError(f"{name}:{line}:{column}: invalid YAML: {problem}") from None
    except (ValueError, TypeError, RecursionError) as error:  # a value ruamel cannot build
        raise ConfigError(f"{name}: invalid YAML: {error}") from None
    source = SourceMap(name)
    data = _plain(tree, (), source)
    return YamlDocument(data, source, hashlib.sha256(raw).hexdigest())


def _refuse_unsafe_constructs(yaml: YAML, text: str, name: str) -> None:
    """Walk the parser's events (nothing is built yet) and refuse aliases, explicit tags and
    impossible dates, naming the first one's position."""
    for event in yaml.parse(text):
        mark = event.start_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        if isinstance(event, AliasEvent):
            raise ConfigError(
                f"{where}: YAML aliases (*{event.anchor}) are not accepted in this file; "
                "write the value out"
            )
        if isinstance(event, ScalarEvent | CollectionStartEvent):
            if event.anchor:
                raise ConfigError(
                    f"{where}: YAML anchors (&{event.anchor}) are not accepted in this file; "
                    "write the value out"
                )
            if event.tag is not None:
                raise ConfigError(
                    f"{where}: YAML tag {event.tag} is not accepted in this file; write plain "
                    "values (quote a value to make it text)"
                )
        if isinstance(event, ScalarEvent) and event.style is None and event.tag is None:
            _check_date(event.value, where)


def _check_date(value: str, where: str) -> None:
    match = _DATE_LIKE.match(value)
    if match is None:
        return
    year, month, day = (int(part) for part in match.groups())
    try:
        date(year, month, day)
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not a real date") from None


def _plain(node: Any, path: PathKey, source: SourceMap) -> Any:
    """Convert ruamel's round-trip nodes to plain values, recording positions on the way."""
    if isinstance(node, CommentedMap):
        if not path:
            source.values[()] = Position(node.lc.line + 1, node.lc.col + 1)
        result: dict[Any, Any] = {}
        for key in node:
            key_line, key_col = node.lc.key(key)
            value_line, value_col = node.lc.value(key)
            plain_key = _scalar(key)
            source.keys[(*path, plain_key)] = Position(key_line + 1, key_col + 1)
            source.values[(*path, plain_key)] = Position(value_line + 1, value_col + 1)
            result[plain_key] = _plain(node[key], (*path, plain_key), source)
        return result
    if isinstance(node, CommentedSeq):
        if not path:
            source.values[()] = Position(node.lc.line + 1, node.lc.col + 1)
        items = []
        for index, item in enumerate(node):
            line, col = node.lc.item(index)
            source.values[(*path, index)] = Position(line + 1, col + 1)
            items.append(_plain(item, (*path, index), source))
        return items
    return _scalar(node)


def _scalar(value: Any) -> Any:
    # ruamel wraps some scalars in subclasses (ScalarFloat, ScalarInt, TimeStamp, ScalarString);
    # validation wants the plain types so that strict type checks behave predictably.
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, datetime):
        return datetime(*value.timetuple()[:6], tzinfo=value.tzinfo)
    if isinstance(value, date):
        return date(value.year, value.month, value.day)
    return value


def load_model(path: Path, model: type[ModelT], subject: str) -> tuple[ModelT, YamlDocument]:
    """Read a YAML mapping and validate it with the pydantic ``model``; every problem names
    ``file:line:column``, ``subject`` and the key (an unknown key is pointed at itself)."""
    document = load_yaml(path)
    data = document.data if document.data is not None else {}
    if not isinstance(data, dict):
        raise_problems(
            [
                Problem(
                    document.source.file, document.source.where(()), subject, "expected a mapping"
                )
            ]
        )
    try:
        return model.model_validate(data), document
    except ValidationError as error:
        problems = []
        for issue in error.errors():
            location = tuple(issue["loc"])
            unknown_key = issue["type"] == "extra_forbidden"
            key = ".".join(str(part) for part in location)
            message = "unknown key" if unknown_key else issue["msg"]
            problems.append(
                Problem(
                    document.source.file,
                    document.source.where(location, key=unknown_key),
                    subject,
                    f"{key}: {message}" if key else message,
                )
            )
        raise_problems(problems)
        raise AssertionError("unreachable") from error
