"""Tasks: one module per kind of data, registered in `TASKS` (see base.py for the contract).

`TASKS` maps a recipe's `task.kind` to a `Task` class; other packages add theirs through the
`synth_datasets.tasks` entry-point group (registry.py). Generation parses completions with a
parser named by `Generate(parser=...)`: a task's name (its `parse`, `fields`, `features`), or one of
the two plain formats, "text" (no parsing) and "json" (the schema's properties). A parser never
raises on bad model output: it returns the fields it could read (None for the rest) and the reason,
which becomes the row's `parse_error`.
"""

from __future__ import annotations

from ..registry import BUILTIN, Registry
from . import classification, extraction, instruction
from .base import SeedsConfig, Task, TaskConfig
from .classification import Classification
from .extraction import Extraction
from .instruction import Instruction
from .jsonparse import parse_json, parse_text, schema_features, schema_fields

TASKS = Registry("synth_datasets.tasks", "task")
TASKS.register("classification", Classification, BUILTIN)
TASKS.register("instruction", Instruction, BUILTIN)
TASKS.register("extraction", Extraction, BUILTIN)


class _Format:
    """A plain output format that is not a task: "text" or "json"."""

    def __init__(self, parse, fields, features):
        self.parse, self.fields, self.features = parse, fields, features


FORMATS = {
    "text": _Format(parse_text, lambda schema: [], lambda schema: {}),
    "json": _Format(parse_json, schema_fields, schema_features),
}


def get_parser(name: str):
    """What `Generate(parser=name)` parses with: a plain format or a task (anything with `parse`,
    `fields` and `features` taking the JSON schema)."""
    if name in FORMATS:
        return FORMATS[name]
    try:
        return TASKS.lookup(name, "parser")
    except ValueError:
        raise ValueError(f"parser={name!r} is not known; choose 'text', 'json' or a task: {sorted(TASKS)}") from None


def parser_fields(parser: str, json_schema: dict | None) -> list[str]:
    """The columns `parser` adds, in order."""
    return list(get_parser(parser).fields(json_schema))


def parser_features(parser: str, json_schema: dict | None) -> dict:
    """`datasets` feature types of the columns `parser` adds."""
    return dict(get_parser(parser).features(json_schema))


def get_task(kind: str, field: str = "task.kind") -> type[Task]:
    """The task class recipes call `kind`."""
    return TASKS.lookup(kind, field)


__all__ = ["TASKS", "FORMATS", "Classification", "Extraction", "Instruction", "SeedsConfig", "Task", "TaskConfig", "classification", "get_parser",
           "extraction", "get_task", "instruction", "parse_json", "parse_text", "parser_features", "parser_fields", "schema_fields"]
