"""Running checks in order and keeping count of what each removed (data for the dataset card)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from datasets import Dataset
from tqdm.auto import tqdm

from ..data import label_names
from .context import CheckContext

logger = logging.getLogger(__name__)


@dataclass
class CheckResult:
    check: dict
    rows_in: int
    removed: int
    kept: int
    examples_removed: list[str] = field(default_factory=list)
    removed_by_label: dict[str, int] = field(default_factory=dict)
    relabelled: int = 0  # rows whose label the check changed instead of removing them
    engine_work: dict | None = None  # what an engine did for the check (the judge), as EngineStats.as_dict()


@dataclass
class CheckReport:
    """Per check, rows in / removed / kept, removed rows per label and a few removed texts; per label,
    rows before and after all checks. Plain data (`as_dict`) for provenance.json and the card."""

    results: list[CheckResult] = field(default_factory=list)
    labels_before: dict[str, int] = field(default_factory=dict)
    labels_after: dict[str, int] = field(default_factory=dict)
    # `diversity()` figures of the rows before and after the checks (run_checks(..., diversity=True))
    diversity: dict = field(default_factory=dict)
    # realism.two_sample() figures against the real rows, before and after the checks
    # (run_checks(..., realism=True)), without the per-row scores
    realism: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        out = {"checks": [asdict(r) for r in self.results],
               "labels": {"before": self.labels_before, "after": self.labels_after}}
        if self.diversity:
            out["diversity"] = self.diversity
        if self.realism:
            out["realism"] = self.realism
        return out

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, ensure_ascii=False)

    def table(self) -> str:
        """A plain-text table for the CLI: one line per check, then the labels that lost most rows."""
        lines = [f"{'check':<16} {'in':>7} {'removed':>8} {'kept':>7}"]
        for r in self.results:
            extra = f"  ({r.relabelled} relabelled)" if r.relabelled else ""
            if r.engine_work and r.engine_work.get("requests"):
                w = r.engine_work
                extra += f"  (its engine: {w['requests']} requests, {w['completion_tokens']} tokens, {w['seconds']:.1f} s)"
            lines.append(f"{r.check['name']:<16} {r.rows_in:>7} {r.removed:>8} {r.kept:>7}{extra}")
        return "\n".join(lines)

    def label_table(self, limit: int | None = 10) -> str:
        """Rows per label before and after the checks, the labels that lost the largest share first."""
        if not self.labels_before:
            return ""
        def lost(label):
            return 1 - self.labels_after.get(label, 0) / max(1, self.labels_before[label])
        order = sorted(self.labels_before, key=lambda label: (-lost(label), label))
        shown = order if limit is None else order[:limit]
        width = max(5, *(len(label) for label in shown))
        lines = [f"{'label':<{width}} {'before':>7} {'after':>7}"]
        lines += [f"{label:<{width}} {self.labels_before[label]:>7} {self.labels_after.get(label, 0):>7}" for label in shown]
        if len(order) > len(shown):
            lines.append(f"... {len(order) - len(shown)} more labels (all in the report's 'labels')")
        return "\n".join(lines)

    def diversity_table(self, limit: int | None = 10) -> str:
        """Diversity before and after the checks: overall, then the labels with the most near-duplicates."""
        from .semantic import FIGURES, figures_by_label, shown

        if not self.diversity:
            return ""
        heads = ("rows", "dist-1", "dist-2", "mean dist", "near-dup")
        labels = figures_by_label(self.diversity)
        top = sorted(labels, key=lambda row: (-(row[1]["near_duplicate_share"] or 0.0), row[0]))
        top = top if limit is None else top[:limit]
        width = max(7, *(len(label) for label, _, _ in top)) if top else 7
        lines = [f"{'':<{width}} {'':<6} " + " ".join(f"{h:>9}" for h in heads)]
        overall = ("overall", self.diversity["before"]["overall"], self.diversity["after"]["overall"])
        for name, b, a in [overall, *top]:
            for when, figures in (("before", b), ("after", a)):
                values = " ".join(f"{shown(figures[k]):>9}" for k in FIGURES)
                lines.append(f"{name if when == 'before' else '':<{width}} {when:<6} {values}")
        if len(labels) > len(top):
            lines.append(f"... {len(labels) - len(top)} more labels (all in the report's 'diversity')")
        return "\n".join(lines)

    def realism_lines(self, shown: int = 3) -> str:
        """The realism figures after the checks (and before, for comparison), then the rows that
        looked most synthetic."""
        from ..realism import summary_line

        if not self.realism:
            return ""
        after, before = self.realism.get("after", {}), self.realism.get("before", {})
        lines = [summary_line(after)]
        if before.get("auc") is not None and after.get("auc") is not None:
            lines.append(f"(before the checks: ROC AUC {before['auc']:.2f})")
        for row in after.get("most_synthetic", [])[:shown]:
            lines.append(f"  most synthetic-looking ({row['score']:.2f}{', ' + str(row['label']) if row['label'] else ''}): "
                         f"{str(row['text'])[:120]!r}")
        return "\n".join(lines)


def run_checks(ds: Dataset, checks: Sequence, *, context=None, examples: int = 3, text_column: str = "text",
               label_column: str | None = "label", diversity: bool = False, realism: bool = False,
               progress: bool = True) -> tuple[Dataset, CheckReport]:
    """Annotate then filter with each check in order; return the kept rows and the report.

    Every check is bound to `context` (a CheckContext) first: checks that need reference data
    (`check.needs`) take it from there, and optional inputs (the label set for `meta_text`) too.
    Flag and score columns stay on the kept rows, so the data shows why each row survived.
    With `diversity=True` the report also holds `diversity()` figures, overall and per label, for the
    rows before and after the checks (with the encoder and threshold of a `semantic_dedup` check in
    the list, if there is one). With `realism=True` and the context's real rows, it holds
    `realism.two_sample()` figures of the rows before and after the checks against those real rows.
    """
    report = CheckReport()
    has_labels = label_column in ds.column_names
    before = ds
    if has_labels:
        report.labels_before = dict(Counter(label_names(ds, label_column)))
    for check in tqdm(checks, desc="checks", unit="check", disable=not progress or not checks):
        check = check.bind(context if context is not None else CheckContext())
        if len(ds) == 0:  # map adds no columns to an empty dataset; nothing to check or remove
            report.results.append(CheckResult(check.describe(), 0, 0, 0))
            continue
        annotated = check.annotate(ds)
        kept = annotated.filter(check.keep, desc=f"filter {check.name}")
        examples_removed = _removed_examples(annotated, check, examples, text_column)
        by_label = {}
        if has_labels:
            flags = annotated[check.flag_column]
            by_label = dict(Counter(label for label, f in zip(label_names(annotated, label_column), flags) if f))
        relabelled = sum(annotated[f"{check.name}_relabelled"]) if f"{check.name}_relabelled" in annotated.column_names else 0
        result = CheckResult(check.describe(), len(annotated), len(annotated) - len(kept), len(kept), examples_removed,
                             by_label, relabelled, getattr(check, "engine_work", None))
        logger.info("check %s: %d in, %d removed, %d kept%s", check.name, result.rows_in, result.removed, result.kept,
                    f", {relabelled} relabelled" if relabelled else "")
        report.results.append(result)
        ds = kept
    if has_labels:
        after = Counter(label_names(ds, label_column)) if len(ds) else Counter()
        report.labels_after = {label: after.get(label, 0) for label in report.labels_before} | dict(after)
    if diversity:
        report.diversity = _diversity(before, ds, checks, text_column, label_column if has_labels else None)
    if realism and context is not None and context.real_texts:
        report.realism = realism_figures(before, ds, context, text_column, label_column if has_labels else None)
    return ds, report


def realism_figures(before: Dataset, after: Dataset, context, text_column: str, label_column: str | None) -> dict:
    """two_sample() of the synthetic rows before and after the checks against the context's real rows
    (per label when both sides have labels); the per-row scores are left out."""
    from ..realism import two_sample
    from .base import label_name

    real_labels = None
    if label_column and context.real_labels is not None:  # as names, like label_names() gives the synthetic rows'
        real_labels = [label_name(label, context.labels) for label in context.real_labels]
    out = {}
    for when, ds in (("before", before), ("after", after)):
        texts = ds[text_column] if len(ds) and text_column in ds.column_names else []
        labels = label_names(ds, label_column) if label_column and real_labels is not None and len(ds) else None
        figures = two_sample(context.real_texts, texts, real_labels if labels is not None else None, labels)
        figures.pop("scores")
        figures.pop("real_scores")
        out[when] = figures
    return out


def _diversity(before: Dataset, after: Dataset, checks: Sequence, text_column: str, label_column: str | None) -> dict:
    from .semantic import SemanticDuplicates, diversity

    options = {}
    for check in checks:
        if isinstance(check, SemanticDuplicates):
            options = {"threshold": check.threshold, "encoder": check.encoder}
    out = {}
    for when, ds in (("before", before), ("after", after)):
        texts = ds[text_column] if len(ds) else []
        labels = label_names(ds, label_column) if label_column and len(ds) else None
        out[when] = diversity(texts, labels, **options)
    return out


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
