"""The basic quality gates: parsed OK, length bounds, exact duplicates after normalisation."""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from dataclasses import dataclass, fields
from pathlib import Path

from datasets import Dataset, Features, Value


class Check:
    """Base of all checks.

    `check(batch)` returns the check's columns for a batch, so `ds.map(check, batched=True)` writes
    them (`whole_column` checks, such as deduplication, need the whole column in one batch:
    `batch_size=None`; `annotate` does that for you); `keep` is the `Dataset.filter` predicate.
    Checks that compare against other data (the real rows, the test split, the label set) name it in
    `needs`; `bind(context)` returns a copy with it filled in from a `CheckContext`.
    """

    name: str = "check"
    needs: tuple[str, ...] = ()
    whole_column: bool = False

    @property
    def flag_column(self) -> str:
        return f"{self.name}_flag"

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        return self.flag_batch(batch)

    def annotate(self, ds: Dataset) -> Dataset:
        return ds.map(self, batched=True, batch_size=None if self.whole_column else 1000, desc=f"check {self.name}")

    def flag_batch(self, batch: dict[str, list]) -> dict[str, list]:
        raise NotImplementedError

    def keep(self, row: dict) -> bool:
        return not row[self.flag_column]

    def bind(self, context) -> "Check":
        """A copy with what `needs` names taken from `context` (a CheckContext); self when nothing is needed."""
        return self

    def __getstate__(self):
        # `datasets` fingerprints a map function by pickling it, and a dataclass pickles as its class
        # name and fields: without the code's digest a changed regex or algorithm would be served
        # stale results from the cache.
        return {**self.__dict__, "_code": _code_digest(type(self))}

    def __setstate__(self, state):
        state = dict(state)
        state.pop("_code", None)
        self.__dict__.update(state)

    def describe(self) -> dict:
        """The check's name and settings, for the report and the card (reference data left out)."""
        return {"name": self.name, **{f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("report", True)}}


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


@functools.lru_cache(maxsize=None)
def _code_digest(cls) -> str:
    """The package version and a digest of the code checks run: this package (checks/) and the
    modules its checks call into (the classifier student and its encoder)."""
    from .. import __version__

    here = Path(__file__).parent
    files = sorted(here.glob("*.py")) + [here.parent / "students" / "classifier.py", here.parent / "students" / "encoder.py"]
    digest = hashlib.sha1(__version__.encode())
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def label_name(label, names) -> str:
    """A label value as a name: integer ids (a ClassLabel column's) through `names`, others as str."""
    if isinstance(label, int) and not isinstance(label, bool) and names is not None:
        return names[label]
    return str(label)


def normalize_text(text: str) -> str:
    """Lower case, accents and punctuation dropped, whitespace collapsed.

    >>> normalize_text("  Where is  MY card?! ")
    'where is my card'
    """
    text = text.lower()
    if not text.isascii():  # the slow path only where there can be accents to strip
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(_PUNCTUATION.sub(" ", text).split())


_PUNCTUATION = re.compile(r"[^\w\s]")


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()
