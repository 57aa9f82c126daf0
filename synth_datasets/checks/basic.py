"""The basic quality gates: parsed OK, length bounds, exact duplicates after normalisation."""

from __future__ import annotations

from dataclasses import dataclass

from datasets import Dataset, Features, Value

from .base import Check, digest_text, normalize_text


@dataclass
class Parsed(Check):
    """Flags rows whose completion could not be parsed (a non-null `parse_error`)."""

    name = "parsed"
    family = "structure"

    def flag_batch(self, batch):
        return {self.flag_column: [e is not None for e in batch["parse_error"]]}


@dataclass
class Length(Check):
    """Flags rows whose `column` is missing or outside [min_chars, max_chars] characters."""

    min_chars: int = 1
    max_chars: int = 10_000
    column: str | None = None
    name = "length"
    family = "structure"

    def __post_init__(self):
        if not 0 <= self.min_chars <= self.max_chars:
            raise ValueError(f"length check: need 0 <= min_chars <= max_chars, got {self.min_chars} and {self.max_chars}")

    def flag_batch(self, batch):
        lengths = [len(t) if t is not None else -1 for t in batch[self.text_col]]
        return {
            f"{self.name}_score": lengths,
            self.flag_column: [not self.min_chars <= n <= self.max_chars for n in lengths],
        }


@dataclass
class ExactDuplicates(Check):
    """Flags every repeat of a text after normalisation (case, accents, punctuation, spaces); the first
    occurrence in dataset order is kept, so the same input always keeps the same rows."""

    column: str | None = None
    name = "exact_dedup"
    family = "duplicates"

    def annotate(self, ds: Dataset) -> Dataset:
        hashed = ds.map(self.hash_batch, batched=True, desc=f"check {self.name}",
                        features=Features({**ds.features, f"{self.name}_score": Value("string")}))
        seen: set[str] = set()
        flags = []
        for h in hashed[f"{self.name}_score"]:
            flags.append(h is not None and h in seen)  # a missing text is no one's duplicate
            seen.add(h)
        return hashed.add_column(self.flag_column, flags)

    def hash_batch(self, batch):
        return {f"{self.name}_score": [None if t is None else digest_text(normalize_text(t)) for t in batch[self.text_col]]}
