"""The span check of extraction rows: every character span still holds after generation and noise."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Check


@dataclass
class Spans(Check):
    """Flags rows where a span does not hold: `text[start:end]` differs from the span's recorded
    `text`, a span is empty, out of range, starts or ends in whitespace, overlaps another, or the
    BIO tags (`tokens`, `tags`, where the row has them) disagree with the spans under `tokenizer`.
    `spans_score` is the first problem ("" when none). Rows that failed to parse have no spans and
    are left to the `parsed` check."""

    tokenizer: str = "whitespace"  # the recipe's task.tokenizer (checked when an extraction recipe loads)
    name = "spans"
    family = "structure"
    code_deps = ("synth_datasets.spans", "synth_datasets.tasks.extraction")

    def __post_init__(self):
        from ..spans import TOKENIZERS

        if self.tokenizer not in TOKENIZERS:
            raise ValueError(f"spans: tokenizer {self.tokenizer!r} is not known; one of {sorted(TOKENIZERS)}")

    def flag_batch(self, batch):
        from ..tasks.extraction import span_problems

        found = []
        tokens = batch.get("tokens")
        tags = batch.get("tags")
        for i, (text, entities) in enumerate(zip(batch["text"], batch["entities"])):
            if text is None or batch["parse_error"][i] is not None:
                found.append("")
                continue
            row_tags = tags[i] if tags is not None and tags[i] else None
            problems = span_problems(text, entities or [], tokens[i] if row_tags else None, row_tags, self.tokenizer)
            found.append(problems[0] if problems else "")
        return {f"{self.name}_score": found, self.flag_column: [bool(f) for f in found]}
