"""Reading a completion as JSON that should fit a schema, without ever raising.

The check is deliberately small: an object, the required properties present, each property of the
declared JSON type, enum values respected. Full JSON-Schema validation is a check of its own (later).
"""

from __future__ import annotations

import json

from datasets import List, Value

_TYPES = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "array": list,
    "object": dict,
}


def schema_fields(json_schema: dict | None) -> list[str]:
    """The top-level properties of an object schema, in declaration order."""
    return list((json_schema or {}).get("properties", {}))


def schema_features(json_schema: dict | None) -> dict:
    """`datasets` features for an object schema's properties.

    >>> schema_features({"properties": {"q": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}}})
    {'q': Value('string'), 'tags': List(Value('string'))}
    """
    return {name: _feature(spec, name) for name, spec in (json_schema or {}).get("properties", {}).items()}


def _feature(spec: dict, where: str):
    kind = spec.get("type")
    if kind in _VALUES:
        return Value(_VALUES[kind])
    if kind == "array" and isinstance(spec.get("items"), dict):
        return List(_feature(spec["items"], f"{where}[]"))
    if kind == "object" and "properties" in spec:
        return {name: _feature(sub, f"{where}.{name}") for name, sub in spec["properties"].items()}
    raise ValueError(
        f"json_schema property {where!r}: give it a 'type' (string, integer, number, boolean, an array with "
        f"typed 'items', or an object with 'properties') so its column has a fixed type; got {spec!r}"
    )


_VALUES = {"string": "string", "integer": "int64", "number": "float64", "boolean": "bool"}


def parse_text(row: dict, completion, json_schema: dict | None = None) -> tuple[dict, str | None]:
    """No parsing: the completion is the result (`raw_completion`). Only a cut-off is an error."""
    return {}, _truncation_error(completion)


def parse_json(row: dict, completion, json_schema: dict | None) -> tuple[dict, str | None]:
    """The schema's properties read from the completion's JSON object.

    >>> from synth_datasets.engine import Completion
    >>> schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    >>> parse_json({}, Completion('{"a": "x"}', "stop"), schema)
    ({'a': 'x'}, None)
    >>> parse_json({}, Completion('{"a": 1}', "stop"), schema)
    ({'a': None}, "field 'a': expected string, got int")
    """
    fields = schema_fields(json_schema)
    empty = dict.fromkeys(fields)
    try:
        obj = json.loads(completion.text)
    except json.JSONDecodeError as e:
        reason = _truncation_error(completion) or f"invalid JSON: {e.msg} at char {e.pos}"
        return empty, reason
    except (ValueError, RecursionError) as e:  # huge integers, absurd nesting
        return empty, f"invalid JSON: {type(e).__name__}: {str(e)[:100]}"
    if not isinstance(obj, dict):
        return empty, f"expected a JSON object, got {type(obj).__name__}"
    error = validate(obj, json_schema or {})
    if error:
        return empty, error
    return {name: obj.get(name) for name in fields}, None


def validate(obj: dict, json_schema: dict) -> str | None:
    """The first way `obj` breaks the schema's required/type/enum rules, or None."""
    props = json_schema.get("properties", {})
    for name in json_schema.get("required", []):
        if name not in obj:
            return f"missing required field {name!r}"
    for name, spec in props.items():
        if name not in obj:
            continue
        if obj[name] is None:
            if name in json_schema.get("required", []):
                return f"field {name!r} is null"
            continue
        expected = _TYPES.get(spec.get("type"))
        value = obj[name]
        if expected and (not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool)):
            return f"field {name!r}: expected {spec['type']}, got {type(value).__name__}"
        if "enum" in spec and value not in spec["enum"]:
            return f"field {name!r}: {value!r} is not one of the {len(spec['enum'])} allowed values"
    return None


def _truncation_error(completion) -> str | None:
    if completion.finish_reason == "length":
        return f"truncated: hit max_tokens after {completion.completion_tokens} tokens"
    return None
