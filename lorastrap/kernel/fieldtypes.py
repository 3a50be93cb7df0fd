"""Checking values against a dataclass's field types, with the field named in the error.

Settings arrive untyped from TOML files (`lorastrap.toml`, `train --config`) and from
`train --set KEY=VALUE`; without this check `rank = "abc"` reaches the code as a string and fails
deep inside with a TypeError. One checker serves every settings dataclass.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from functools import lru_cache
from typing import Any, Union

from lorastrap.kernel.errors import UserError

_NONE_WORDS = ("none", "null")


@lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        inner = typing.get_args(tp)[0]
        return "a list of " + {int: "whole numbers", float: "numbers", str: "strings"}.get(inner, _describe(inner))
    return {int: "a whole number", float: "a finite number", bool: "true or false", str: "text",
            type(None): "none"}.get(tp, getattr(tp, "__name__", str(tp)))


def _convert(tp: Any, value: Any) -> Any:
    """The value as `tp`, or raise ValueError."""
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None or (type(None) in options and isinstance(value, str)
                             and value.strip().lower() in _NONE_WORDS and str not in options):
            if type(None) in options:
                return None
            raise ValueError
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value)
            except ValueError:
                continue
        raise ValueError
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ValueError
        inner = typing.get_args(tp)[0]
        items = [_convert(inner, v) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ValueError
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValueError
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise ValueError
    if tp is str:
        if isinstance(value, str):
            return value
        raise ValueError
    return value  # a type this checker does not know: left to the dataclass


def checked_value(cls: type, name: str, value: Any, where: str) -> Any:
    """`value` for field `name` of dataclass `cls`, converted (int → float, list → tuple) or refused
    with a UserError naming `where` (e.g. "training option", "lorastrap.toml [images]")."""
    hints = _hints(cls)
    if name not in hints:
        known = ", ".join(f.name for f in dataclasses.fields(cls))
        raise UserError(f"{where}: unknown setting {name}; known: {known}")
    try:
        return _convert(hints[name], value)
    except ValueError:
        raise UserError(f"{where} {name} must be {_describe(hints[name])}, not {value!r}") from None
