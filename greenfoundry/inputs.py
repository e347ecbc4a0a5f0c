"""The one reader of input files, and the one way they are validated.

Every file greenfoundry reads (the plant config, the standard's data file, the declared evidence,
the indicator values) goes through `read` and is checked with `Node`, so every problem is one
line in one style, raised as the caller's error class::

    <file>: <key path>: <value> is not allowed; expected <what is allowed>

`read` parses YAML (JSON when the file ends in ``.json``) strictly:

* a key given twice in one mapping is refused, with both lines (PyYAML and `json` would keep
  the last one silently);
* nothing is turned into a date by the parser: PyYAML's implicit timestamps are off, so
  ``2026-02-30`` arrives as text and `Node.date` refuses it in one line, instead of PyYAML
  raising from inside the parser. A date is always a calendar date ``YYYY-MM-DD`` (plant-local);
  a date-time where a date is expected is refused.

Key paths name a value the way a reader finds it in the file: mapping keys joined with ``.``,
a key that itself contains a dot (a row id such as ``mgmt.digital.level``) in brackets, and list
items by position (``furnaces[0]``) or, where the item has an id, by that id
(``rows[energy.pipe.kgce_per_t]``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from greenfoundry.errors import GreenfoundryError, InputError

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_DATETIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{1,2}:\d{2}")
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
MISSING = object()  # "no default": a key without one is required


def display(path: str | os.PathLike) -> str:
    """How a file is named in messages: relative to the working directory when it lies under
    it, else absolute. Two plants' folders side by side both hold a `plant.yaml`, so the folder
    is part of the name."""
    path = Path(path)
    try:
        absolute = path.resolve()
        return str(absolute.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(absolute)
    except OSError:
        return str(path)


def show(value: Any) -> str:
    """A value as it appears in a message: its repr, cut at 60 characters."""
    if isinstance(value, dt.date):
        value = value.isoformat()
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _n(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def key_path(parent: str, key: Any) -> str:
    """The key path of `key` inside `parent` (see the module docstring)."""
    key = str(key)
    if "." in key or " " in key or not key:
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


# --------------------------------------------------------------------------- reading


# libyaml's parser when PyYAML has it (five times faster on the standard's file), else PyYAML's.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class StrictLoader(_SafeLoader):
    """PyYAML's safe loader without implicit timestamps: a date is text until our code reads it."""


StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# An explicit `!!timestamp` stays text as well, for the same reason.
StrictLoader.add_constructor(_TIMESTAMP_TAG, yaml.SafeLoader.construct_yaml_str)


def _yaml_duplicates(node: yaml.Node, path: str, seen: set[int]) -> tuple[str, int, int] | None:
    """The first key given twice in the node tree: (key path, first line, second line)."""
    if id(node) in seen:
        return None
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                ident = (key_node.tag, key_node.value)
                here = key_path(path, key_node.value)
                line = key_node.start_mark.line + 1
                if ident in lines:
                    return here, lines[ident], line
                lines[ident] = line
            else:
                here = f"{path}[?]"
            found = _yaml_duplicates(value_node, here, seen)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found = _yaml_duplicates(item, f"{path}[{i}]", seen)
            if found:
                return found
    return None


def parse_yaml(text: str, file: str, error: type[GreenfoundryError] = InputError) -> Any:
    """Parse YAML text strictly (see the module docstring); problems raise `error`."""
    loader = StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        dup = _yaml_duplicates(node, "", set())
        if dup:
            where, first, second = dup
            raise error(
                f"{file}: {where or '<top>'}: given twice (lines {first} and {second}) is not "
                "allowed; expected each key once"
            )
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise error(f"{file}: not valid YAML{at}: {problem}") from None
    finally:
        loader.dispose()


class _Pairs(list):
    """A JSON object as its (key, value) pairs, in order, before duplicates are checked."""


def _json_tree(value: Any, path: str, file: str, error: type[GreenfoundryError]) -> Any:
    if isinstance(value, _Pairs):
        out: dict[str, Any] = {}
        for key, item in value:
            here = key_path(path, key)
            if key in out:
                raise error(f"{file}: {here}: given twice is not allowed; expected each key once")
            out[key] = _json_tree(item, here, file, error)
        return out
    if isinstance(value, list):
        return [_json_tree(item, f"{path}[{i}]", file, error) for i, item in enumerate(value)]
    return value


def parse_json(text: str, file: str, error: type[GreenfoundryError] = InputError) -> Any:
    """Parse JSON text strictly: a key given twice or NaN/Infinity is refused."""

    def constant(name: str) -> Any:
        raise error(f"{file}: {name} is not allowed; expected a finite number")

    try:
        raw = json.loads(text, object_pairs_hook=_Pairs, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise error(f"{file}: not valid JSON at line {exc.lineno}: {exc.msg}") from None
    return _json_tree(raw, "", file, error)


def read(
    path: str | os.PathLike, what: str, error: type[GreenfoundryError] = InputError
) -> tuple[Any, str]:
    """Read and parse a file: JSON when it ends in ``.json``, else YAML. Returns the data and
    the file's name for messages. `what` names the file in a read error ("the evidence file")."""
    path = Path(path)
    file = display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{file}: cannot read {what}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise error(f"{file}: cannot read {what}: not UTF-8 text") from None
    if path.suffix.lower() == ".json":
        return parse_json(text, file, error), file
    return parse_yaml(text, file, error), file


# --------------------------------------------------------------------------- validation


class Node:
    """A mapping under validation: it knows its file, its key path and the error class to raise,
    remembers which keys were read, and names all three in every message."""

    def __init__(
        self,
        data: Any,
        path: str = "",
        *,
        file: str | None = None,
        error: type[GreenfoundryError] = InputError,
        what: str = "a mapping",
    ):
        self.file, self.path, self.error = file, path, error
        if not isinstance(data, dict):
            self.fail(f"{show(data)} is not allowed; expected {what}")
        self.data: dict[Any, Any] = data
        self.seen: set[str] = set()

    # -- messages --------------------------------------------------------------------------

    def key(self, name: str) -> str:
        return key_path(self.path, name)

    def fail(self, message: str, key: str | None = None, *, at: str | None = None) -> None:
        """Raise the node's error: ``<file>: <key path>: <message>``, the key path being this
        node's, its `key`'s, or the full path `at`."""
        where = at or (self.key(key) if key is not None else (self.path or "<top>"))
        prefix = f"{self.file}: " if self.file else ""
        raise self.error(f"{prefix}{where}: {message}")

    def refuse(self, key: str | None, value: Any, expected: str) -> None:
        self.fail(f"{show(value)} is not allowed; expected {expected}", key)

    # -- structure -------------------------------------------------------------------------

    def expect(self, required: Iterable[str] = (), optional: Iterable[str] = ()) -> Node:
        """Check the keys up front: an unknown key or a missing required one is refused."""
        required, optional = tuple(required), tuple(optional)
        allowed = sorted((*required, *optional))
        for name in self.data:
            if name not in allowed:
                self.fail(f"unknown key; allowed here: {', '.join(allowed)}", str(name))
        for name in required:
            if self.data.get(name) is None:
                self.fail("missing; this key is required", name)
        self.seen.update(allowed)
        return self

    def done(self) -> None:
        """Refuse any key that was not read."""
        for name in self.data:
            if name not in self.seen:
                allowed = ", ".join(sorted(self.seen)) or "none"
                self.fail(f"unknown key; allowed here: {allowed}", str(name))

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def get(self, name: str, default: Any = MISSING) -> Any:
        """The value under `name`; a missing (or null) key gives `default`, or is refused."""
        self.seen.add(name)
        value = self.data.get(name)
        if value is not None:
            return value
        if default is MISSING:
            self.fail("missing; this key is required", name)
        return default

    def child(self, name: str, *, required: bool = True, path: str | None = None) -> Node:
        """The mapping under `name` as a Node (an empty one when optional and absent)."""
        value = self.get(name) if required else self.get(name, {})
        return self.node(value, path or self.key(name))

    def node(self, data: Any, path: str, what: str = "a mapping") -> Node:
        """Another node of the same file and error class (same class, too)."""
        return type(self)(data, path, file=self.file, error=self.error, what=what)

    def items(self, name: str, *, required: bool = False) -> Iterator[tuple[str, Any]]:
        """(key path, item) for each item of the list under `name`."""
        for i, item in enumerate(self.list(name, required=required)):
            yield f"{self.key(name)}[{i}]", item

    # -- typed values ----------------------------------------------------------------------

    def text(
        self,
        name: str,
        default: Any = MISSING,
        *,
        pattern: re.Pattern | None = None,
        expected: str = "a text",
    ) -> Any:
        value = self.get(name, default)
        if value is default and default is not MISSING:
            return value
        if not isinstance(value, str) or not value.strip():
            self.refuse(name, value, "a text")
        if pattern is not None and not pattern.match(value):
            self.refuse(name, value, expected)
        return value

    def number(
        self,
        name: str,
        default: Any = MISSING,
        *,
        low: float | None = None,
        high: float | None = None,
        integer: bool = False,
        above: float | None = None,
        unit: str = "",
    ) -> Any:
        value = self.get(name, default)
        if value is default and default is not MISSING:
            return value
        ok = isinstance(value, int) if integer else isinstance(value, int | float)
        if not ok or isinstance(value, bool) or not math.isfinite(value):
            kind = "a whole number" if integer else "a number"
            self.refuse(name, value, kind + (f" ({unit})" if unit else ""))
        in_unit = f" {unit}" if unit else ""
        if above is not None and not value > above:
            self.refuse(name, value, f"a number above {_n(above)}{in_unit}")
        if (low is not None and value < low) or (high is not None and value > high):
            if high is None:
                expected = f"{_n(low)} or more"
            elif low is None:
                expected = f"{_n(high)} or less"
            else:
                expected = f"between {_n(low)} and {_n(high)}"
            self.refuse(name, value, expected + in_unit)
        return value

    def choice(self, name: str, allowed: Iterable[Any], default: Any = MISSING) -> Any:
        allowed = tuple(allowed)
        value = self.get(name, default)
        if value is default and default is not MISSING:
            return value
        # `True == 1`: a choice matches only a value of its own type.
        if not any(value == a and type(value) is type(a) for a in allowed):
            names = [str(a) for a in allowed]
            self.refuse(name, value, names[0] if len(names) == 1 else "one of " + ", ".join(names))
        return value

    def boolean(self, name: str, default: Any = MISSING) -> Any:
        value = self.get(name, default)
        if value is default and default is not MISSING:
            return value
        if not isinstance(value, bool):
            self.refuse(name, value, "true or false")
        return value

    def list(self, name: str, *, required: bool = False) -> list[Any]:
        value = self.get(name) if required else self.get(name, [])
        if not isinstance(value, list):
            self.refuse(name, value, "a list")
        return value

    def texts(self, name: str) -> tuple[str, ...]:
        """A list of texts; a single text is a list of one."""
        value = self.get(name, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.refuse(name, value, "a list of texts")
        return tuple(v.strip() for v in value)

    def date(self, name: str, default: Any = MISSING) -> Any:
        """A calendar date ``YYYY-MM-DD`` (a `datetime.date` from Python callers too)."""
        value = self.get(name, default)
        if value is default and default is not MISSING:
            return value
        return parse_date(value, lambda expected: self.refuse(name, value, expected))


def parse_date(value: Any, refuse) -> dt.date:
    """`value` as a calendar date; `refuse(expected)` raises when it is not one."""
    if isinstance(value, dt.datetime) or (
        isinstance(value, str) and _DATETIME_RE.match(value.strip())
    ):
        refuse("a date YYYY-MM-DD, not a date-time")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _DATE_RE.match(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError as exc:
            refuse(f"a calendar date YYYY-MM-DD ({exc})")
    refuse("a date YYYY-MM-DD")
    raise AssertionError("refuse() must raise")  # pragma: no cover
