"""Realism as a filter: drop the synthetic rows a classifier tells apart from real rows most surely."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .base import Check


@dataclass
class Realism(Check):
    """A classifier two-sample test (synth_datasets.realism): a logistic regression on sentence
    embeddings and character n-grams learns to tell the real rows from the synthetic rows under
    check, and scores every row, real ones included, with a model fitted on the other folds.
    `realism_score` is that out-of-fold P(synthetic). A row is flagged when its score is above the
    `real_quantile` quantile of the real rows' scores: it looks more synthetic than nearly every real
    row does. The rule reads the real rows' own scores rather than a fixed probability, because how
    high scores go depends on how separable the two sets are; when they cannot be told apart, about
    1 - `real_quantile` of the rows are flagged by chance. With fewer than 10 rows on either side
    nothing is flagged and the score is None.

    Dropping the most synthetic-looking rows shifts the rest towards the real rows; the rows kept
    are still told apart at some rate, so read the report's AUC after the checks rather than
    expecting 0.5."""

    real_quantile: float = 0.99
    encoder: str = "all-MiniLM-L6-v2"
    folds: int = 5
    seed: int = 0
    column: str | None = None
    reference: tuple[str, ...] | None = field(default=None, metadata={"report": False})
    name = "realism"
    family = "realism"
    needs = ("real_texts",)
    requires = ("sentence_transformers", "sklearn")
    code_deps = ("synth_datasets.realism", "synth_datasets.students.encoder")
    whole_column = True

    def __post_init__(self):
        if not 0 < self.real_quantile <= 1:
            raise ValueError(f"realism: real_quantile is a share of the real rows in (0, 1], got {self.real_quantile}")
        if self.folds < 2:
            raise ValueError(f"realism: folds must be >= 2, got {self.folds}")

    def bind(self, context):
        out = super().bind(context)
        if out.reference is None:
            out = replace(out, reference=tuple(context.require("real_texts", self.name)))
        return out

    def flag_batch(self, batch):
        from ..realism import two_sample

        if self.reference is None:
            raise ValueError("check realism needs real rows: Realism(reference=[text, ...]) or bind(context)")
        texts = [t or "" for t in batch[self.text_col]]
        figures = two_sample(list(self.reference), texts, encoder=self.encoder, folds=self.folds, seed=self.seed, top=0)
        if figures["auc"] is None:
            return {f"{self.name}_score": [None] * len(texts), self.flag_column: [False] * len(texts)}
        import numpy as np

        scores = figures["scores"]
        bound = float(np.quantile(figures["real_scores"], self.real_quantile))
        return {f"{self.name}_score": scores, self.flag_column: [s > bound for s in scores]}
