"""Dataclasses from plain data (YAML sections, recipe check options) with errors that name the field.

    build_config(GeneratorConfig, {"temperature": "hot"}, "generator")
    -> RecipeError: generator.temperature: expected a number, got 'hot'

Types come from the dataclass annotations: str, int, float (ints accepted), bool, lists, tuples and
dicts of those, optionals, nested dataclasses; `Any` passes through. The dataclass's own
`__post_init__` checks values; its ValueError is re-raised with the section's name in front.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any

from .errors import RecipeError


def build_config(cls, data, where: str):
    """`cls(**data)` with every field converted to its annotated type, or a RecipeError that names
    the field (`where.field`), what came and what was expected; unknown fields get a close match."""
    kwargs = convert_fields(cls, data, where)
    try:
        return cls(**kwargs)
    except RecipeError:
        raise
    except (TypeError, ValueError) as e:
        raise RecipeError(f"{where}.{e}" if where else f"recipe: {e}") from None


def convert_fields(cls, data, where: str) -> dict:
    """`data` checked against the dataclass `cls`: unknown and missing fields refused, values
    converted to the annotated types; the keyword arguments for `cls`."""
    if not isinstance(data, dict):
        raise RecipeError(f"{where or 'recipe'}: expected a mapping of fields, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            fix = f"did you mean {close[0]!r}?" if close else f"allowed fields: {', '.join(names)}"
            raise RecipeError(f"{_at(where, key)}: unknown field; {fix}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name], _at(where, f.name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            help_ = f.metadata.get("help", "")
            raise RecipeError(f"{_at(where, f.name)}: required field is missing. {help_}".strip())
    return kwargs


def _convert(hint, value, where: str):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        for option in options[:-1]:  # the first alternative the value fits; the last one's error otherwise
            try:
                return _convert(option, value, where)
            except RecipeError:
                pass
        hint = options[-1]
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or (dataclasses.is_dataclass(value) and not isinstance(value, type)):
        return value
    if dataclasses.is_dataclass(hint):
        return build_config(hint, value if value is not None else {}, where)
    expected = origin or hint
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected in _KINDS and not _is(value, expected):
        raise RecipeError(f"{where}: expected {_KINDS[expected]}, got {value!r}")
    if expected is list and args:
        return [_convert(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
    if expected is tuple:
        if not isinstance(value, (list, tuple)):
            raise RecipeError(f"{where}: expected a list, got {value!r}")
        item = args[0] if len(args) == 2 and args[1] is Ellipsis else Any
        return tuple(_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if expected is dict and args:
        return {_convert(args[0], k, f"{where} key"): _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    return value


_KINDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list", dict: "a mapping"}


def _is(value, expected) -> bool:
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _at(where: str, key) -> str:
    return f"{where}.{key}" if where else str(key)
