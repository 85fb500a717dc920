"""Declared parameter types and ranges, checked in one place.

A constructor declares what each argument accepts with ``typing.Annotated``::

    def __init__(self, score_threshold: Annotated[float, Range(0, 1)] = 0.5, ...)

:func:`check_arguments` reads these declarations (never the defaults) and raises a
:class:`ConfigError` that names the argument, e.g. ``detector.score_threshold: expected a
number in [0, 1], got 5``. ``livemask.config`` uses it for every config section (the
name is then ``section.key``); classes built directly call it from their constructor
(the name is then ``Class.key``). Plain ``int``/``float``/``bool``/``str``/``list``
hints and ``X | None`` work too; NaN and infinities are never accepted as numbers, and no
string (declared or not, also inside lists and mappings) may hold a control character.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from livemask.core.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """Allowed numbers: ``lo``..``hi`` (None: unbounded), ends open when asked, optionally a multiple."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    multiple_of: int | None = None
    or_zero: bool = False  # 0 is also allowed (meaning "off"), whatever the range says

    def contains(self, v: float) -> bool:
        if self.or_zero and v == 0:
            return True
        if self.lo is not None and (v < self.lo or (self.lo_open and v == self.lo)):
            return False
        if self.hi is not None and (v > self.hi or (self.hi_open and v == self.hi)):
            return False
        return not (self.multiple_of and v % self.multiple_of)

    def describe(self) -> str:
        if self.lo is not None and self.hi is not None:
            text = f"in {'(' if self.lo_open else '['}{_num(self.lo)}, {_num(self.hi)}{')' if self.hi_open else ']'}"
        elif self.lo is not None:
            text = f"{'>' if self.lo_open else '>='} {_num(self.lo)}"
        elif self.hi is not None:
            text = f"{'<' if self.hi_open else '<='} {_num(self.hi)}"
        else:
            text = ""
        if self.multiple_of:
            text += f"{' and ' if text else ''}a multiple of {self.multiple_of}"
        if self.or_zero:
            text += " (or 0 = off)"
        return text


@dataclass(frozen=True)
class Text:
    """Allowed strings: a length range and, optionally, only characters from ``chars`` (a description
    of them in ``chars_name``); e.g. ``Annotated[str, Text(1, 48, ascii_printable=True)]``."""

    min_len: int = 0
    max_len: int | None = None
    ascii_printable: bool = False  # only the printable ASCII characters (OpenCV's fonts draw no others)
    no_spaces: bool = False

    def contains(self, v: str) -> bool:
        if len(v) < self.min_len or (self.max_len is not None and len(v) > self.max_len):
            return False
        if self.ascii_printable and not all(" " <= c <= "~" for c in v):
            return False
        return not (self.no_spaces and any(c.isspace() for c in v))

    def describe(self) -> str:
        if self.max_len is None:
            text = f"of at least {self.min_len} characters"
        elif self.min_len == self.max_len:
            text = f"of {self.min_len} characters"
        else:
            text = f"of {self.min_len} to {self.max_len} characters"
        if self.ascii_printable:
            text += ", printable ASCII only"
        if self.no_spaces:
            text += ", no spaces"
        return text


@dataclass(frozen=True)
class OneOf:
    """Allowed strings: exactly these, e.g. ``Annotated[str, OneOf("float32", "int8")]``."""

    values: tuple[str, ...]

    def __init__(self, *values: str):
        object.__setattr__(self, "values", tuple(values))

    def describe(self) -> str:
        return "one of " + ", ".join(self.values)


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


@dataclass(frozen=True)
class Param:
    """One declared argument: its base type, whether None is allowed, its range, the element type of lists."""

    kind: type | None  # bool, int, float, str, list, tuple, or None (anything)
    optional: bool = False
    range: Range | None = None
    item: Param | None = None  # for list / tuple
    text: Text | None = None  # for str
    choices: OneOf | None = None  # for str


def parse_hint(hint: Any) -> Param:
    """``Annotated[float, Range(0, 1)] | None`` -> Param(float, optional=True, range=Range(0, 1))."""
    rng = None
    if typing.get_origin(hint) is typing.Annotated:
        base, *extras = typing.get_args(hint)
        rng = next((e for e in extras if isinstance(e, Range)), None)
        txt = next((e for e in extras if isinstance(e, Text)), None)
        one_of = next((e for e in extras if isinstance(e, OneOf)), None)
        inner = parse_hint(base)
        return Param(inner.kind, inner.optional, rng or inner.range, inner.item, txt or inner.text,
                     one_of or inner.choices)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        inner = parse_hint(args[0]) if len(args) == 1 else Param(None)
        return Param(inner.kind, optional or inner.optional, inner.range, inner.item, inner.text, inner.choices)
    if origin in (list, tuple, typing.Sequence) or hint in (list, tuple):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return Param(tuple if origin is tuple or hint is tuple else list, item=parse_hint(args[0]) if args else None)
    if hint in (bool, int, float, str):
        return Param(hint)
    return Param(None)


_TYPE_NAMES = {bool: "bool", int: "int", float: "number", str: "str", list: "list", tuple: "list"}


def check_value(where: str, value: Any, param: Param) -> Any:
    """``value`` converted to the declared type, or ConfigError naming ``where``."""
    if value is None:
        if param.optional or param.kind is None:
            return None
        raise ConfigError(f"{where}: expected {_expected(param)}, got null")
    kind = param.kind
    if kind is None:
        return value
    original = value
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    elif kind in (list, tuple):
        ok = isinstance(value, (list, tuple))
        if ok:
            value = kind(check_value(f"{where}[{i}]", v, param.item) if param.item else v
                         for i, v in enumerate(value))
    else:
        ok = isinstance(value, kind)
    if ok and param.range is not None and kind in (int, float) and not param.range.contains(value):
        ok = False
    if ok and param.text is not None and kind is str and not param.text.contains(value):
        ok = False
    if ok and param.choices is not None and kind is str and value not in param.choices.values:
        ok = False
    if not ok:
        number = isinstance(original, (int, float)) and not isinstance(original, bool)
        got = original if number and kind in (int, float) else f"{type(original).__name__} {original!r}"
        if param.choices is not None and isinstance(original, str):
            got = repr(original)
        raise ConfigError(f"{where}: expected {_expected(param)}, got {got}")
    return value


def _expected(param: Param, plural: bool = False) -> str:
    if param.kind in (list, tuple) and param.item is not None:
        text = f"a list of {_expected(param.item, plural=True)}"
    elif param.kind is float:
        text = "numbers" if plural else "a number"
    elif param.kind is int:
        text = "integers" if plural else "an integer"
    else:
        text = _TYPE_NAMES.get(param.kind, "a value")
    if param.range is not None and param.kind in (int, float):
        text += " " + param.range.describe()
    if param.text is not None and param.kind is str:
        text = ("strings " if plural else "a string ") + param.text.describe()
    if param.choices is not None and param.kind is str:
        text = param.choices.describe()
    if param.optional:
        text += " or null"
    return text


def declared_parameters(target: Callable[..., Any],
                        declared: Mapping[str, Any] | None = None) -> dict[str, tuple[Param, Any]]:
    """Keyword arguments of ``target`` (a class or function): name -> (Param, default).

    ``declared`` gives hints for arguments whose code does not declare them (a class this
    package does not own); it wins over the signature's own hints.
    """
    func = target if dataclasses.is_dataclass(target) or not inspect.isclass(target) else target.__init__
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception:  # an unresolvable annotation: fall back to no hints
        hints = {}
    hints.update(declared or {})
    out = {}
    for name, p in inspect.signature(target).parameters.items():
        if name == "self" or p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            continue
        param = parse_hint(hints[name]) if name in hints else Param(None)
        default = None if p.default is inspect.Parameter.empty else p.default
        out[name] = (param, default)
    return out


def check_no_controls(where: str, value: Any) -> None:
    """ConfigError naming ``where`` when a string in ``value`` (also in lists, tuples and mappings) holds a
    control character (a terminal escape, a NUL, a line break, ...), or a number in it is NaN or infinite."""
    if isinstance(value, str):
        for i, c in enumerate(value):
            if unicodedata.category(c) == "Cc":
                raise ConfigError(f"{where}: control character U+{ord(c):04X} at position {i} "
                                  "(not allowed in a setting)")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: expected a finite number, got {value}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_no_controls(f"{where}[{i}]", v)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            check_no_controls(where, k)
            check_no_controls(f"{where}.{k}", v)


def check_arguments(target: Callable[..., Any], values: Mapping[str, Any], prefix: str,
                    declared: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Check every given argument of ``target`` against its declaration; errors name ``prefix.key``."""
    params = declared_parameters(target, declared)
    out = {k: check_value(f"{prefix}.{k}", v, params[k][0]) if k in params else v for k, v in values.items()}
    for k, v in out.items():  # after the declared checks, whose messages say the range
        check_no_controls(f"{prefix}.{k}", v)
    return out


def check_fields(obj: Any, owner: type | None = None) -> None:
    """For a dataclass's ``__post_init__``: check (and convert) every field; errors name ``Class.field``."""
    owner = owner or type(obj)
    values = {k: getattr(obj, k) for k in declared_parameters(owner)}
    for k, v in check_arguments(owner, values, owner.__name__).items():
        object.__setattr__(obj, k, v)
