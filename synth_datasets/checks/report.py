"""Running checks in order and keeping count of what each removed (data for the dataset card)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from datasets import Dataset

logger = logging.getLogger(__name__)


@dataclass
class CheckResult:
    check: dict
    rows_in: int
    removed: int
    kept: int
    examples_removed: list[str] = field(default_factory=list)


@dataclass
class CheckReport:
    """Per check, rows in / removed / kept, and a few removed texts to show in the card."""

    results: list[CheckResult] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"checks": [asdict(r) for r in self.results]}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, ensure_ascii=False)

    def table(self) -> str:
        """A plain-text table for the CLI."""
        lines = [f"{'check':<14} {'in':>7} {'removed':>8} {'kept':>7}"]
        lines += [f"{r.check['name']:<14} {r.rows_in:>7} {r.removed:>8} {r.kept:>7}" for r in self.results]
        return "\n".join(lines)


def run_checks(ds: Dataset, checks: Sequence, *, examples: int = 3, text_column: str = "text") -> tuple[Dataset, CheckReport]:
    """Annotate then filter with each check in order; return the kept rows and the report.

    Flag and score columns stay on the kept rows, so the data shows why each row survived.
    """
    report = CheckReport()
    for check in checks:
        if len(ds) == 0:  # map adds no columns to an empty dataset; nothing to check or remove
            report.results.append(CheckResult(check.describe(), 0, 0, 0))
            continue
        annotated = check.annotate(ds)
        kept = annotated.filter(check.keep, desc=f"filter {check.name}")
        examples_removed = _removed_examples(annotated, check, examples, text_column)
        result = CheckResult(check.describe(), len(annotated), len(annotated) - len(kept), len(kept), examples_removed)
        logger.info("check %s: %d in, %d removed, %d kept", check.name, result.rows_in, result.removed, result.kept)
        report.results.append(result)
        ds = kept
    return ds, report


def _removed_examples(annotated: Dataset, check, n: int, text_column: str) -> list[str]:
    flags = annotated[check.flag_column]
    rows = [i for i, f in enumerate(flags) if f][:n]
    if not rows:
        return []
    column = text_column if text_column in annotated.column_names else "raw_completion"
    values = annotated.select(rows)[column]
    if column == text_column and "raw_completion" in annotated.column_names:
        raws = annotated.select(rows)["raw_completion"]
        values = [v if v is not None else r for v, r in zip(values, raws)]
    return [str(v)[:300] for v in values]
