"""The basic quality gates: parsed OK, length bounds, exact duplicates after normalisation."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, fields

from datasets import Dataset, Features, Value


class Check:
    """Base of all checks: `annotate` writes `<name>_flag`; `keep` is the filter predicate."""

    name: str = "check"

    @property
    def flag_column(self) -> str:
        return f"{self.name}_flag"

    def annotate(self, ds: Dataset) -> Dataset:
        return ds.map(self.flag_batch, batched=True, desc=f"check {self.name}")

    def flag_batch(self, batch: dict[str, list]) -> dict[str, list]:
        raise NotImplementedError

    def keep(self, row: dict) -> bool:
        return not row[self.flag_column]

    def describe(self) -> dict:
        """The check's name and thresholds, for the report and the card."""
        return {"name": self.name, **{f.name: getattr(self, f.name) for f in fields(self)}}


@dataclass
class Parsed(Check):
    """Flags rows whose completion could not be parsed (a non-null `parse_error`)."""

    name = "parsed"

    def flag_batch(self, batch):
        return {self.flag_column: [e is not None for e in batch["parse_error"]]}


@dataclass
class Length(Check):
    """Flags rows whose `column` is missing or outside [min_chars, max_chars] characters."""

    min_chars: int = 1
    max_chars: int = 10_000
    column: str = "text"
    name = "length"

    def __post_init__(self):
        if not 0 <= self.min_chars <= self.max_chars:
            raise ValueError(f"length check: need 0 <= min_chars <= max_chars, got {self.min_chars} and {self.max_chars}")

    def flag_batch(self, batch):
        lengths = [len(t) if t is not None else -1 for t in batch[self.column]]
        return {
            f"{self.name}_score": lengths,
            self.flag_column: [not self.min_chars <= n <= self.max_chars for n in lengths],
        }


@dataclass
class ExactDuplicates(Check):
    """Flags every repeat of a text after normalisation (case, accents, punctuation, spaces); the first
    occurrence in dataset order is kept, so the same input always keeps the same rows."""

    column: str = "text"
    name = "exact_dedup"

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
        return {f"{self.name}_score": [None if t is None else _digest(normalize_text(t)) for t in batch[self.column]]}


def normalize_text(text: str) -> str:
    """Lower case, accents and punctuation dropped, whitespace collapsed.

    >>> normalize_text("  Where is  MY card?! ")
    'where is my card'
    """
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


CHECKS: dict[str, type[Check]] = {
    "parsed": Parsed,
    "length": Length,
    "exact_dedup": ExactDuplicates,
}


def build_check(name: str, options: dict | None = None) -> Check:
    """A check from its recipe name and options, with errors that say what is allowed."""
    if name not in CHECKS:
        raise ValueError(f"checks: unknown check {name!r}; choose from {sorted(CHECKS)}")
    cls = CHECKS[name]
    allowed = {f.name for f in fields(cls)}
    unknown = set(options or {}) - allowed
    if unknown:
        raise ValueError(f"checks.{name}: unknown option(s) {sorted(unknown)}; allowed: {sorted(allowed) or 'none'}")
    return cls(**(options or {}))
