"""What checks compare synthetic rows against: the real rows, the evaluation split, the label set."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence


@dataclass
class CheckContext:
    """Reference data for the checks that need it (see each check's `needs`).

    real_texts / real_labels: the real rows the generator was shown (the seeds, or in `compare` the
        draw's k rows per label), plus any other real rows to protect from being copied;
    real_rows: those real rows with every column of the task, for checks that read more than the text
        (the judge's control on an instruction task reads instruction, input and output);
    test_texts: the evaluation split, which synthetic rows must not overlap;
    labels: the label set (label-echo detection, label checks);
    text_column / label_column: the task's columns, for checks whose `column` / `label_column` is unset;
    extra: the task's JSON schema ("schema"), the generation engine ("generator": (EngineConfig, model))
        and what the judge asks ("judge_prompt", from `Task.judge_prompt()`).
    """

    real_texts: Sequence[str] | None = None
    real_rows: Sequence[dict] | None = None  # the same real rows with every task column (the judge's control)
    real_labels: Sequence[str] | None = None
    test_texts: Sequence[str] | None = None
    labels: Sequence[str] | None = None
    extra: dict = field(default_factory=dict)
    text_column: str = "text"
    label_column: str | None = "label"

    def require(self, what: str, check: str):
        value = getattr(self, what)
        if value is None:
            hint = {"real_texts": "the real rows (seeds)", "real_labels": "the real rows' labels",
                    "test_texts": "the evaluation split", "labels": "the label set"}[what]
            raise ValueError(f"check {check} needs {hint}: pass it to the check, or run it with "
                             f"run_checks(..., context=CheckContext({what}=...)) or from a recipe that names it")
        return value

    def with_(self, **changes) -> "CheckContext":
        return replace(self, **changes)
