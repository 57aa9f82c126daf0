"""Checks: annotate with `map`, drop with `filter`, count what each removed.

Each check is a small callable object with
    name                     used in column names, recipes and the card
    annotate(ds) -> Dataset  adds `<name>_flag` (True = remove) and, where useful, `<name>_score`
    keep(row) -> bool        the `Dataset.filter` predicate: `not row[f"{name}_flag"]`

so it can be used on its own:

    ds = Length(min_chars=10).annotate(ds).filter(Length(min_chars=10).keep)

or in order with a report of rows in / removed / kept per check:

    kept, report = run_checks(ds, [Parsed(), Length(min_chars=10), ExactDuplicates()])

`CHECKS` maps recipe names to check classes. Adding a check: one class, one line in `CHECKS`.
Not here yet: near-duplicates, diversity, leakage and label checks (a later issue).
"""

from __future__ import annotations

from .basic import CHECKS, Check, ExactDuplicates, Length, Parsed, build_check, normalize_text
from .report import CheckReport, run_checks

__all__ = [
    "CHECKS", "Check", "CheckReport", "ExactDuplicates", "Length", "Parsed",
    "build_check", "normalize_text", "run_checks",
]
