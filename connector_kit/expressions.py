"""Field values computed from a record: `{"expression": "int(amount * 1000000)"}` in a mapping.

The SDK's own `stream_maps` can compute properties too, but they type every new property as
non-nullable (a `None` from `x if x else None` then fails validation), so a value that is
sometimes missing cannot be expressed there. Our mappings evaluate expressions after
validation instead, with the same `simpleeval` language the SDK uses: the record's properties
are names, `record` is the whole record, and only side-effect-free functions are available.

Dates, date-times and times are seen as the ISO 8601 text they were in the tap's output
(`"2026-03-01"`, `"2026-03-01T09:30:00+00:00"`), whether or not the target's SDK parsed them into
objects, so an expression reads the same in every target: `account_date + 'T00:00:00+08:00'`.

Expressions run on data anyone who can edit the source controls, so each evaluation is bounded
(`Bounded`): beside simpleeval's own limits (100,000 characters for `+` and `*`, 10,000
comprehension items, exponents up to 4,000,000), no text, list or dict it builds may exceed
`MAX_SIZE` characters or items (or the record's longest text, when that is longer), no integer
`bounds.MAX_DIGITS` digits, and one evaluation stops after `SECONDS_PER_RECORD`. What would grow
past a limit is refused before it is built: `'x'.ljust(10**9)`, `int(1e200000)`,
`f'{x:>999999999}'`. The record is dead-lettered with the reason.
"""

from __future__ import annotations

import ast
import datetime as dt
import decimal
import math
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import markdownify
import simpleeval

from connector_kit.bounds import MAX_DIGITS, digits


class ExpressionError(ValueError):
    """An expression that does not parse, or fails on a record."""


MAX_SIZE = 1_000_000  # characters of a text, items of a list or dict, an expression builds
SECONDS_PER_RECORD = 1.0  # for one expression on one record
MAX_INTEGER_BITS = MAX_DIGITS * 10 // 3  # about MAX_DIGITS decimal digits


class LimitExceeded(simpleeval.InvalidExpression):
    """An evaluation went past one of the limits above."""


def _whole(convert: Callable[..., Any]) -> Callable[..., Any]:
    """`int` or `round`, refusing a number whose integer would have too many digits."""

    def bounded(value: Any, *args: Any) -> Any:
        if isinstance(value, decimal.Decimal | float) and not args and digits(value) > MAX_DIGITS:
            raise LimitExceeded(
                f"{convert.__name__}() of a number of more than {MAX_DIGITS} digits"
            )
        return convert(value, *args)

    bounded.__name__ = convert.__name__
    return bounded


def markdown(text: Any) -> str | None:
    """Text that may hold HTML (a CRM note) as Markdown: tags become Markdown, entities text,
    every line break a hard break, Markdown's own characters escaped; no visible text lost."""
    if text is None:
        return None
    lines = str(text).replace("\r\n", "\n").replace("\r", "\n")
    # A line break of the source is a break in the note, whether or not the text is HTML.
    converted = markdownify.markdownify(
        lines.replace("\n", "<br>\n"), heading_style="ATX", newline_style="BACKSLASH"
    )
    return "\n".join(line.rstrip() for line in converted.strip("\n").split("\n"))


FUNCTIONS = {
    **simpleeval.DEFAULT_FUNCTIONS,
    "markdown": markdown,
    "int": _whole(int),
    "bool": bool,
    "round": _whole(round),
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
        evaluator = _evaluator()
        evaluator.start(names, time.monotonic() + SECONDS_PER_RECORD)
        try:
            return evaluator.eval(self.source, previously_parsed=self._parsed)
        except Exception as exc:  # any failure of user code on user data
            # decimal's errors say only "[<class 'decimal.Overflow'>]"
            reason = f"{type(exc).__name__} (a number out of range)" if _is_decimal(exc) else exc
            raise ExpressionError(f"expression {self.source!r} failed: {reason}") from exc

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def _is_decimal(exc: Exception) -> bool:
    return isinstance(exc, decimal.DecimalException) and str(exc).startswith("[<class")


class Bounded(simpleeval.EvalWithCompoundTypes):
    """simpleeval with limits on the size of what it builds and on its time (module docstring)."""

    # Nodes whose value is built by the expression (a name or `record[…]` only passes a value
    # of the record on, however long).
    BUILDING = frozenset(
        (ast.BinOp, ast.Call, ast.JoinedStr, ast.ListComp, ast.GeneratorExp, ast.DictComp)
    )

    def __init__(self) -> None:
        super().__init__(functions=FUNCTIONS)
        self.operators = {
            **self.operators,
            ast.Mult: _multiply,
            ast.Pow: _power,
            ast.Mod: _modulo,
        }
        self.deadline = 0.0
        self._longest: int | None = None

    def start(self, names: dict[str, Any], deadline: float) -> None:
        """Ready for one evaluation on one record."""
        self.names, self.deadline, self._longest = names, deadline, None

    def _eval(self, node: ast.AST) -> Any:
        # Runs for every node: kept to two cheap checks around simpleeval's own.
        if time.monotonic() > self.deadline:
            raise LimitExceeded(f"took more than {SECONDS_PER_RECORD:g}s on one record")
        value = _simpleeval(self, node)
        if type(node) in self.BUILDING:
            self._check_size(value)
        return value

    def _check_size(self, value: Any) -> None:
        if isinstance(value, int):
            if value.bit_length() > MAX_INTEGER_BITS:
                raise LimitExceeded(f"built an integer of more than {MAX_DIGITS} digits")
        elif isinstance(value, str | bytes | list | tuple | dict | set):
            size = len(value)
            if size > MAX_SIZE and size > self.longest_input():
                raise LimitExceeded(f"built a value of {size:,} characters or items")

    def longest_input(self) -> int:
        """The length of the record's longest text: passing it on is no growth."""
        if self._longest is None:
            texts = [len(v) for v in self.names.values() if isinstance(v, str)]  # type: ignore[union-attr]
            self._longest = max(texts, default=0)
        return self._longest

    def _eval_call(self, node: ast.Call) -> Any:
        # simpleeval's, with a look at what a text method is about to build before it runs.
        if isinstance(node.func, ast.Attribute):
            func = self._eval(node.func)
        else:
            try:
                func = self.functions[node.func.id]  # type: ignore[attr-defined]
            except (KeyError, AttributeError):
                return super()._eval_call(node)  # its own error
            if func in simpleeval.DISALLOW_FUNCTIONS:
                raise simpleeval.FeatureNotAvailable("This function is forbidden")
        args = [self._eval(a) for a in node.args]
        kwargs = dict(self._eval(k) for k in node.keywords)
        if args and getattr(func, "__name__", "") == "join":
            args[0] = list(args[0])  # sized, then joined: sizing would spend an iterator
        size = _text_method_size(func, args, kwargs)
        if size > MAX_SIZE and size > self.longest_input():
            raise LimitExceeded(f"{func.__name__}() would build {size:,} characters")
        return func(*args, **kwargs)

    def _eval_formattedvalue(self, node: ast.FormattedValue) -> Any:
        if node.format_spec is not None:
            _check_widths(str(self._eval(node.format_spec)))
        return super()._eval_formattedvalue(node)


_local = threading.local()
_simpleeval = simpleeval.SimpleEval._eval


def _evaluator() -> Bounded:
    """This thread's evaluator: making one costs more than most evaluations."""
    evaluator = getattr(_local, "evaluator", None)
    if evaluator is None:
        evaluator = _local.evaluator = Bounded()
    return evaluator


def _multiply(a: Any, b: Any) -> Any:
    if (
        isinstance(a, int)
        and isinstance(b, int)
        and a.bit_length() + b.bit_length() > MAX_INTEGER_BITS
    ):
        raise LimitExceeded(f"a product of more than {MAX_DIGITS} digits")
    return simpleeval.safe_mult(a, b)


def _power(a: Any, b: Any) -> Any:
    big = isinstance(a, int) and isinstance(b, int) and abs(a) > 1 and b > 0
    if big and b * math.log2(abs(a)) > MAX_INTEGER_BITS:
        raise LimitExceeded(f"a power of more than {MAX_DIGITS} digits")
    return simpleeval.safe_power(a, b)


def _modulo(a: Any, b: Any) -> Any:
    if isinstance(a, str | bytes):  # printf-style formatting: '%0999999999d' % 1
        _check_widths(a if isinstance(a, str) else a.decode("latin-1"))
    return a % b


_WIDTH = re.compile(r"\d+|\*")


def _check_widths(spec: str) -> None:
    """Refuse a format whose width or precision would build too long a text."""
    for found in _WIDTH.findall(spec):
        if found == "*" or int(found) > MAX_SIZE:
            raise LimitExceeded(f"a format width or precision over {MAX_SIZE:,}: {spec[:40]!r}")


# Text methods whose result can be much longer than the text: the length they would build.
_GROWING: dict[str, Callable[..., int]] = {
    "join": lambda s, items, *_: len(s) * max(len(items) - 1, 0) + sum(map(len, items)),
    "replace": lambda s, old, new, *_: len(s) + (s.count(old) if old else len(s) + 1) * len(new),
    "ljust": lambda s, width, *_: width,
    "rjust": lambda s, width, *_: width,
    "center": lambda s, width, *_: width,
    "zfill": lambda s, width, *_: width,
    "expandtabs": lambda s, tabsize=8, *_: len(s) + s.count("\t") * tabsize,
}


def _text_method_size(func: Any, args: list[Any], kwargs: dict[str, Any]) -> int:
    owner = getattr(func, "__self__", None)
    size = _GROWING.get(getattr(func, "__name__", ""))
    if size is None or not isinstance(owner, str | bytes):
        return 0
    try:
        return int(size(owner, *args, *kwargs.values()))
    except (TypeError, ValueError, IndexError):
        return 0  # wrong arguments: the call itself raises the error


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
