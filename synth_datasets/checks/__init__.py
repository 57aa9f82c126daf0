"""Checks: annotate with `map`, drop with `filter`, count what each removed.

Each check is a small callable object with
    name                     used in column names, recipes and the card
    check(batch) -> columns  so `ds.map(check, batched=True)` writes `<name>_flag` (True = remove)
                             and `<name>_score` (`whole_column` checks such as deduplication need
                             `batch_size=None`; `check.annotate(ds)` picks the right call)
    keep(row) -> bool        the `Dataset.filter` predicate: `not row[f"{name}_flag"]`
    needs, bind(context)     reference data a check compares against (real rows, the test split,
                             the label set), filled in from a `CheckContext`

so it can be used on its own, on any text column:

    near = NearDuplicates(threshold=0.8, column="text")
    ds = ds.map(near, batched=True, batch_size=None).filter(near.keep)

or in order with a report of rows in / removed / kept per check and rows per label:

    kept, report = run_checks(ds, [Parsed(), MetaText(), ExactDuplicates(), NearDuplicates()],
                              context=CheckContext(real_texts=seeds["text"], test_texts=test["text"]))

Families (the names recipes use):
    structure   parsed, schema, length, language, meta_text
    duplicates  exact_dedup, near_dedup
    diversity   semantic_dedup (embedding near-duplicates; `run_checks(..., diversity=True)` also
                reports distinct-n, mean pairwise distance and near-duplicate share per label)
    leakage     real_copy, decontaminate
    labels      label_agreement, judge (an LLM on the generation engine)

`CHECKS` maps recipe names to check classes. Adding a check: one class, one line in `CHECKS`.
"""

from __future__ import annotations

from dataclasses import fields

from .basic import Check, ExactDuplicates, Length, Parsed, normalize_text
from .context import CheckContext
from .duplicates import NearDuplicates
from .judge import Judge
from .labels import LabelAgreement
from .leakage import Decontaminate, RealCopies
from .report import CheckReport, run_checks
from .semantic import SemanticDuplicates, diversity
from .structure import Language, Schema
from .text import MetaText

CHECKS: dict[str, type[Check]] = {
    "parsed": Parsed,
    "schema": Schema,
    "length": Length,
    "language": Language,
    "meta_text": MetaText,
    "exact_dedup": ExactDuplicates,
    "near_dedup": NearDuplicates,
    "semantic_dedup": SemanticDuplicates,
    "real_copy": RealCopies,
    "decontaminate": Decontaminate,
    "label_agreement": LabelAgreement,
    "judge": Judge,
}

FAMILIES: dict[str, tuple[str, ...]] = {
    "structure": ("parsed", "schema", "length", "language", "meta_text"),
    "duplicates": ("exact_dedup", "near_dedup"),
    "diversity": ("semantic_dedup",),
    "leakage": ("real_copy", "decontaminate"),
    "labels": ("label_agreement", "judge"),
}


def build_check(name: str, options: dict | None = None) -> Check:
    """A check from its recipe name and options, with errors that say what is allowed."""
    if name not in CHECKS:
        raise ValueError(f"checks: unknown check {name!r}; choose from {sorted(CHECKS)}")
    cls = CHECKS[name]
    allowed = {f.name for f in fields(cls) if f.metadata.get("report", True)}
    unknown = set(options or {}) - allowed
    if unknown:
        raise ValueError(f"checks.{name}: unknown option(s) {sorted(unknown)}; allowed: {sorted(allowed) or 'none'}")
    return cls(**(options or {}))


__all__ = [
    "CHECKS", "FAMILIES", "Check", "CheckContext", "CheckReport", "Decontaminate", "ExactDuplicates", "Judge",
    "LabelAgreement", "Language", "Length", "MetaText", "NearDuplicates", "Parsed", "RealCopies", "Schema", "SemanticDuplicates",
    "build_check", "diversity", "normalize_text", "run_checks",
]
