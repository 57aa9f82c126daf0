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

Families (the names recipes use), as the card groups them:
    structure   parsed, schema, length, language, meta_text, truncated, refusal, text_only, spans
    duplicates  exact_dedup, near_dedup, rouge_novelty (Self-Instruct's ROUGE-L > 0.7 novelty filter)
    diversity   semantic_dedup (embedding near-duplicates; `run_checks(..., diversity=True)` also
                reports distinct-n, mean pairwise distance and near-duplicate share per label)
    leakage     real_copy, decontaminate
    labels      label_agreement, judge (an LLM on the generation engine)

`CHECKS` maps recipe names to check classes; other packages add theirs through the
`synth_datasets.checks` entry-point group. Adding a check: one class (or one scoring function and
`score_check`), registered under its name; nothing else to edit (docs/writing-a-check.md).
"""

from __future__ import annotations

import importlib.util
from dataclasses import fields

from ..config import convert_fields
from ..registry import BUILTIN, Registry
from .base import Check, ScoreCheck, code_digest, normalize_text, score_check
from .basic import ExactDuplicates, Length, Parsed
from .context import CheckContext
from .duplicates import NearDuplicates
from .instruction import Refusal, TextOnly, Truncated
from .judge import Judge
from .labels import LabelAgreement
from .leakage import Decontaminate, RealCopies
from .realism import Realism
from .report import CheckReport, run_checks
from .rouge import RougeNoveltyCheck
from .semantic import SemanticDuplicates, diversity
from .spans import Spans
from .structure import Language, Schema
from .text import MetaText

_BUILT_IN = (Parsed, Schema, Length, Language, MetaText, Truncated, Refusal, TextOnly, Spans, ExactDuplicates, NearDuplicates,
             RougeNoveltyCheck, SemanticDuplicates, RealCopies, Decontaminate, LabelAgreement, Judge, Realism)
CHECKS = Registry("synth_datasets.checks", "check")
for _cls in _BUILT_IN:
    CHECKS.register(_cls.name, _cls, BUILTIN)

# What the card calls each family; a plugin's family is shown by its own name.
FAMILY_NAMES = {"structure": "structure (schema, language, meta-text)", "duplicates": "near-duplicates",
                "diversity": "semantic near-duplicates", "leakage": "copies of real rows and test-set overlap",
                "labels": "label consistency", "realism": "realism (told apart from real rows)"}


def check_families() -> dict[str, tuple[str, ...]]:
    """{family: names of the registered checks in it}, plugins' checks included."""
    out: dict[str, list[str]] = {}
    for name in CHECKS:
        out.setdefault(getattr(CHECKS[name], "family", "custom"), []).append(name)
    return {family: tuple(names) for family, names in out.items()}


# The built-in families, as recipes and benchmarks/checks_ablation.py use them.
FAMILIES: dict[str, tuple[str, ...]] = {family: tuple(c.name for c in _BUILT_IN if c.family == family)
                                       for family in FAMILY_NAMES}


def build_check(name: str, options: dict | None = None) -> Check:
    """A check from its recipe name and options, with errors that name the option, what came and
    what is allowed."""
    try:
        cls = CHECKS.lookup(name, "checks")
    except ValueError:
        import difflib

        close = difflib.get_close_matches(str(name), list(CHECKS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"checks: unknown check {name!r}{hint}; choose from {sorted(CHECKS)}, or install a plugin "
                         "that adds it") from None
    allowed = {f.name for f in fields(cls) if f.metadata.get("report", True)}
    unknown = set(options or {}) - allowed
    if unknown:
        raise ValueError(f"checks.{name}: unknown option(s) {sorted(unknown)}; allowed: {sorted(allowed) or 'none'}")
    return cls(**convert_fields(cls, dict(options or {}), f"checks.{name}"))


def missing_requirements(check: Check) -> list[str]:
    """The modules a check needs (`requires`, an extra such as [train]) that are not installed."""
    return [m for m in check.requires if importlib.util.find_spec(m) is None]


__all__ = [
    "CHECKS", "FAMILIES", "FAMILY_NAMES", "Check", "CheckContext", "CheckReport", "Decontaminate", "ExactDuplicates",
    "Judge", "LabelAgreement", "Language", "Length", "MetaText", "NearDuplicates", "Parsed", "RealCopies", "Realism", "Refusal",
    "RougeNoveltyCheck", "Schema", "Spans", "TextOnly", "Truncated",
    "ScoreCheck", "SemanticDuplicates", "build_check", "check_families", "code_digest", "diversity",
    "missing_requirements", "normalize_text", "run_checks", "score_check",
]
