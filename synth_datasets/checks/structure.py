"""Structure: parsed rows valid against the task's JSON schema, and text in the expected language."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field, replace

from .base import Check

logger = logging.getLogger(__name__)


@dataclass
class Schema(Check):
    """Flags rows whose fields, read as one JSON object, break `schema` (full JSON Schema validation
    with `jsonschema`: required fields, types, enums, lengths, patterns). The schema defaults to the
    task's (the one generation was constrained to); `schema_score` holds the first error, '' if valid.
    Useful after generation without a grammar (an API, a server without structured outputs), after
    relabelling, or on data from elsewhere."""

    schema: dict | None = field(default=None, metadata={"report": False})
    name = "schema"
    family = "structure"
    needs = ("schema",)

    def bind(self, context):
        out = super().bind(context)
        if out.schema is None and context is not None and context.extra.get("schema") is not None:
            return replace(out, schema=context.extra["schema"])
        return out

    def flag_batch(self, batch):
        if self.schema is None:
            raise ValueError("check schema needs a JSON schema: Schema(schema={...}) or run it from a recipe (the task's schema)")
        validator = _validator(_freeze(self.schema))
        names = list(self.schema.get("properties", {})) or list(batch)
        n = len(next(iter(batch.values()))) if batch else 0
        errors = []
        for i in range(n):
            obj = {name: batch[name][i] for name in names if name in batch and batch[name][i] is not None}
            error = next(iter(sorted(validator.iter_errors(obj), key=lambda e: list(e.path))), None)
            errors.append("" if error is None else f"{'/'.join(map(str, error.path)) or 'row'}: {error.message}"[:200])
        return {f"{self.name}_score": errors, self.flag_column: [bool(e) for e in errors]}


def _freeze(schema: dict) -> str:
    import json

    return json.dumps(schema, sort_keys=True)


@functools.lru_cache(maxsize=32)
def _validator(frozen: str):
    import json

    from jsonschema import Draft202012Validator

    schema = json.loads(frozen)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@dataclass
class Language(Check):
    """Flags rows whose text is not in one of `languages` (ISO 639-1 codes) according to py3langid,
    chosen by measurement (benchmarks/language_id.py, docs/benchmarks.md). Texts shorter than
    `min_chars` are not judged (language ID on a few words is guesswork) and are kept.
    `language_score` is the detected code."""

    languages: tuple[str, ...] = ("en",)
    min_chars: int = 20
    column: str | None = None
    name = "language"
    family = "structure"
    requires = ("py3langid",)

    def __post_init__(self):
        self.languages = tuple(self.languages)
        if not self.languages:
            raise ValueError("language: name at least one ISO 639-1 code, e.g. languages: [en]")

    def flag_batch(self, batch):
        identify = _identifier()
        detected = [identify(t) if t and len(t) >= self.min_chars else "" for t in batch[self.text_col]]
        return {f"{self.name}_score": detected,
                self.flag_column: [bool(d) and d not in self.languages for d in detected]}


@functools.lru_cache(maxsize=1)
def _identifier():
    import py3langid

    return lambda text: py3langid.classify(text)[0]
