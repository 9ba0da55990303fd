"""The `filter` query parameter of find-many (docs/api/twenty.md §3).

    filter     := expression ("," expression)*          commas mean AND
    expression := ("and" | "or" | "not") "(" filter ")" | condition
    condition  := path "[" comparator "]" ":" value      path: field or field.subField
    value      := "quoted string" | [value, …] | bare    bare: number, true/false, NULL, text

Comparators: eq neq in is (NULL / NOT_NULL) gt gte lt lte like ilike startsWith endsWith
containsAny. Conditions are checked against the object's fields before any row is read, so a
typo is a 400 rather than an empty page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NoReturn

from crm_sandbox.twenty.errors import bad_request, show
from crm_sandbox.twenty.schema import COMPOSITES, ObjectType
from crm_sandbox.twenty.values import parse_date_time

COMPARATORS = {
    "eq",
    "neq",
    "in",
    "is",
    "gt",
    "gte",
    "lt",
    "lte",
    "like",
    "ilike",
    "startsWith",
    "endsWith",
    "containsAny",
}
_CONDITION = re.compile(r"\s*([A-Za-z_][\w.]*)\[(\w+)\]:\s*")
_BARE_END = re.compile(r"[,)\]]")


@dataclass
class Condition:
    column: str  # key in the stored record: a field name or a join column
    sub: str | None  # composite sub-field
    comparator: str
    value: Any


@dataclass
class Group:
    op: str  # "and", "or", "not"
    items: list[Condition | Group]


Node = Condition | Group


def parse_filter(text: str, obj: ObjectType) -> Node:
    """The filter as a tree, checked against `obj`'s fields; a 400 says what is wrong."""
    parser = _Parser(text)
    node = Group("and", parser.items())
    if parser.pos < len(text):
        parser.fail("unexpected text")
    _check(node, obj)
    return node


def mentions(node: Node, column: str) -> bool:
    if isinstance(node, Condition):
        return node.column == column
    return any(mentions(item, column) for item in node.items)


def matches(node: Node, row: dict[str, Any]) -> bool:
    if isinstance(node, Group):
        results = (matches(item, row) for item in node.items)
        if node.op == "or":
            return any(results)
        return not all(results) if node.op == "not" else all(results)
    stored = row.get(node.column)
    if node.sub is not None:
        stored = (stored or {}).get(node.sub)
    return _compare(node.comparator, stored, node.value)


# Parsing ----------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, problem: str) -> NoReturn:
        near = self.text[self.pos : self.pos + 40] or "the end"
        raise bad_request(f"Invalid filter {show(self.text)}: {problem} near {show(near)}.")

    def items(self) -> list[Node]:
        items = [self.expression()]
        while self.take(","):
            items.append(self.expression())
        return items

    def take(self, char: str) -> bool:
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1
        if self.text.startswith(char, self.pos):
            self.pos += len(char)
            return True
        return False

    def expression(self) -> Node:
        for op in ("and", "or", "not"):
            if self.take(op + "("):
                group = Group(op, self.items())
                if not self.take(")"):
                    self.fail('expected ")"')
                return group
        match = _CONDITION.match(self.text, self.pos)
        if not match:
            self.fail("expected field[comparator]:value")
        self.pos = match.end()
        column, _, sub = match.group(1).partition(".")
        return Condition(column, sub or None, match.group(2), self.value())

    def value(self) -> Any:
        if self.take('"'):
            return self.quoted()
        if self.take("["):
            items = [] if self.take("]") else [self.value()]
            while items and self.take(","):
                items.append(self.value())
            if items and not self.take("]"):
                self.fail('expected "]"')
            return items
        end = _BARE_END.search(self.text, self.pos)
        stop = end.start() if end else len(self.text)
        raw, self.pos = self.text[self.pos : stop].strip(), stop
        return _bare(raw)

    def quoted(self) -> str:
        chars = []
        while self.pos < len(self.text) and self.text[self.pos] != '"':
            if self.text[self.pos] == "\\":
                self.pos += 1
            chars.append(self.text[self.pos : self.pos + 1])
            self.pos += 1
        if not self.take('"'):
            self.fail("unterminated string")
        return "".join(chars)


def _bare(raw: str) -> Any:
    """Unquoted values: numbers and booleans are typed; anything else is text."""
    if raw in ("true", "false"):
        return raw == "true"
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        return raw


# Checking against the metadata ------------------------------------------------------------------


def _check(node: Node, obj: ObjectType) -> None:
    if isinstance(node, Group):
        if node.op == "not" and len(node.items) != 1:
            raise bad_request("Invalid filter: not(…) takes exactly one condition.")
        for item in node.items:
            _check(item, obj)
        return
    f = obj.columns().get(node.column)
    if f is None:
        raise bad_request(f'Object {obj.singular} doesn\'t have any "{node.column}" field.')
    path = f"{node.column}.{node.sub}" if node.sub else node.column
    subs = COMPOSITES.get(f.type)
    if subs and node.sub not in subs:
        raise bad_request(
            f"Invalid filter on {obj.singular}.{path}: name a sub-field of {node.column}, one of "
            f"{', '.join(subs)} (e.g. {node.column}.{next(iter(subs))}[eq]:…)."
        )
    if not subs and node.sub:
        raise bad_request(f"Invalid filter on {obj.singular}.{path}: {f.type} has no sub-fields.")
    if node.comparator not in COMPARATORS:
        raise bad_request(
            f'Invalid filter on {obj.singular}.{path}: unknown comparator "{node.comparator}"; '
            f"use one of {', '.join(sorted(COMPARATORS))}."
        )
    is_list = isinstance(node.value, list)
    if is_list != (node.comparator in ("in", "containsAny")):
        expected = "a [list]" if not is_list else "a single value"
        raise bad_request(
            f"Invalid filter on {obj.singular}.{path}: [{node.comparator}] takes {expected}, "
            f"got {show(node.value)}."
        )
    if node.comparator == "is" and node.value not in ("NULL", "NOT_NULL"):
        raise bad_request(
            f"Invalid filter on {obj.singular}.{path}: [is] takes NULL or NOT_NULL, "
            f"got {show(node.value)}."
        )
    if f.type in ("DATE_TIME", "UUID", "RELATION") and node.comparator != "is":
        node.value = _as_stored(f.type, node.value)


def _as_stored(type_: str, value: Any) -> Any:
    """Write filter values the way such fields are stored, so equal moments compare equal."""
    if isinstance(value, list):
        return [_as_stored(type_, v) for v in value]
    if type_ == "DATE_TIME":
        return parse_date_time(value) or value
    return value.lower() if isinstance(value, str) else value


# Evaluation -------------------------------------------------------------------------------------


def _compare(comparator: str, stored: Any, value: Any) -> bool:
    if comparator == "is":
        return (stored is None) == (value == "NULL")
    if comparator == "in":
        return any(_equal(stored, v) for v in value)
    if comparator == "eq":
        return _equal(stored, value)
    if comparator == "neq":
        return stored is not None and not _equal(stored, value)
    if comparator == "containsAny":
        return isinstance(stored, list) and any(v in stored for v in value)
    if stored is None:
        return False
    if comparator in ("gt", "gte", "lt", "lte"):
        return _order(comparator, stored, value)
    text, pattern = str(stored), str(value)
    if comparator == "startsWith":
        return text.startswith(pattern)
    if comparator == "endsWith":
        return text.endswith(pattern)
    # like / ilike: SQL patterns, % any run of characters and _ one character.
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    flags = re.IGNORECASE | re.DOTALL if comparator == "ilike" else re.DOTALL
    return re.fullmatch(regex, text, flags) is not None


def _equal(stored: Any, value: Any) -> bool:
    if isinstance(stored, bool) or isinstance(value, bool):
        return stored is value or str(stored).lower() == str(value).lower()
    if isinstance(stored, int | float) and isinstance(value, int | float):
        return stored == value
    return stored is not None and str(stored) == str(value)


def _order(comparator: str, stored: Any, value: Any) -> bool:
    numbers = isinstance(stored, int | float) and isinstance(value, int | float)
    if not numbers and not (isinstance(stored, str) and isinstance(value, str)):
        return False
    if comparator == "gt":
        return stored > value
    if comparator == "gte":
        return stored >= value
    return stored < value if comparator == "lt" else stored <= value
