"""Field values computed from a record: `{"expression": "int(amount * 1000000)"}` in a mapping.

The SDK's own `stream_maps` can compute properties too, but they type every new property as
non-nullable (a `None` from `x if x else None` then fails validation), so a value that is
sometimes missing cannot be expressed there. Our mappings evaluate expressions after
validation instead, with the same `simpleeval` language the SDK uses: the record's properties
are names, `record` is the whole record, and only side-effect-free functions are available.

Dates, date-times and times are seen as the ISO 8601 text they were in the tap's output
(`"2026-03-01"`, `"2026-03-01T09:30:00+00:00"`), whether or not the target's SDK parsed them into
objects, so an expression reads the same in every target: `account_date + 'T00:00:00+08:00'`.
"""

from __future__ import annotations

import ast
import datetime as dt
from typing import Any

import simpleeval


class ExpressionError(ValueError):
    """An expression that does not parse, or fails on a record."""


FUNCTIONS = {
    **simpleeval.DEFAULT_FUNCTIONS,
    "bool": bool,
    "round": round,
    "len": len,
    "abs": abs,
    "min": min,
    "max": max,
    "datetime": simpleeval.ModuleWrapper(dt),
}


class Expression:
    def __init__(self, source: str) -> None:
        self.source = source
        try:
            ast.parse(source.strip(), mode="eval")  # one expression, not statements
            self._parsed = simpleeval.EvalWithCompoundTypes().parse(source)
        except SyntaxError as exc:
            raise ExpressionError(f"cannot parse expression {source!r}: {exc.msg}") from exc
        names = [n for n in ast.walk(self._parsed) if isinstance(n, ast.Name)]
        bound = {n.id for n in names if not isinstance(n.ctx, ast.Load)}  # `for x in …`
        # The record's properties it reads (`record[…]` aside).
        self.inputs = frozenset(
            n.id for n in names if n.id not in bound and n.id not in FUNCTIONS and n.id != "record"
        )
        # What it reads through `record`: `record['x']` and `record.get('x')` name a property;
        # any other use of `record` may read them all (`reads_all`).
        self.record_keys, self.reads_all = _record_reads(self._parsed)

    def __call__(self, record: dict[str, Any]) -> Any:
        as_text = _dates_as_text(record)
        names = {**as_text, "record": as_text}
        evaluator = simpleeval.EvalWithCompoundTypes(names=names, functions=FUNCTIONS)
        try:
            return evaluator.eval(self.source, previously_parsed=self._parsed)
        except Exception as exc:  # any failure of user code on user data
            raise ExpressionError(f"expression {self.source!r} failed: {exc}") from exc

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def _dates_as_text(record: dict[str, Any]) -> dict[str, Any]:
    """A copy of the record with dates and times back in the ISO 8601 text the tap sent."""
    return {k: v.isoformat() if isinstance(v, dt.date | dt.time) else v for k, v in record.items()}


def _record_reads(tree: ast.AST) -> tuple[frozenset[str], bool]:
    keys: set[str] = set()
    uses = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "record"]
    named: set[int] = set()  # ids of the `record` names used with a constant key
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _is_record(node.value):
            key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                keys.add(key.value)
                named.add(id(node.value))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and _is_record(node.func.value)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            keys.add(node.args[0].value)
            named.add(id(node.func.value))
    return frozenset(keys), any(id(n) not in named for n in uses)


def _is_record(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "record"
