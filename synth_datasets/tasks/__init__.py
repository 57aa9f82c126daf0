"""Tasks: one module per kind of data (prompt builder, JSON schema, parser).

A parser has the signature

    parse(row: dict, completion: Completion, json_schema: dict | None) -> (fields: dict, error: str | None)

and never raises on bad model output: it returns the fields it could read (None for the rest) and the
reason in `error`, which becomes the row's `parse_error`. `PARSERS` maps a name to a parser, and
`FIELDS` to a function giving the columns it writes. Adding a task: one module, one line in each dict.
"""

from __future__ import annotations

from . import classification
from .jsonparse import parse_json, parse_text, schema_features, schema_fields

PARSERS = {
    "text": parse_text,
    "json": parse_json,
    "classification": classification.parse,
}

_FIELDS = {
    "text": lambda schema: [],
    "json": schema_fields,
    "classification": lambda schema: list(classification.FIELDS),
}


def parser_fields(parser: str, json_schema: dict | None) -> list[str]:
    """The columns `parser` adds, in order."""
    return _FIELDS[parser](json_schema)


def parser_features(parser: str, json_schema: dict | None) -> dict:
    """`datasets` feature types of the columns `parser` adds."""
    if parser == "classification":
        return dict(classification.FIELD_FEATURES)
    if parser == "json":
        return schema_features(json_schema)
    return {}


__all__ = ["PARSERS", "parser_fields", "parser_features", "classification", "parse_json", "parse_text", "schema_fields"]
