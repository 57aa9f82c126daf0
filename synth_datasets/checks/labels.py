"""Label consistency: does a classifier trained on the real rows give the synthetic row its label?"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np

from .base import Check, label_name

logger = logging.getLogger(__name__)


@dataclass
class LabelAgreement(Check):
    """A classifier student (frozen sentence encoder + logistic head, as `compare` uses) is fitted on
    the real rows; a synthetic row whose requested label is not among its `top_k` predictions is
    dropped (`action: drop`) or given the top prediction (`action: relabel`; the requested label is
    kept in `label_original`, and the row is kept). With `margin` > 0 (and top_k 1) the requested
    label must also lead the runner-up by that much probability. `label_agreement_score` is the
    probability the classifier gives the requested label, `label_agreement_pred` its top label,
    `label_agreement_margin` P(requested) minus the largest other P."""

    top_k: int = 1
    margin: float = 0.0
    action: str = "drop"
    encoder: str = "all-MiniLM-L6-v2"
    c: float = 30.0
    column: str | None = None
    label_column: str | None = None
    reference: tuple[tuple[str, str], ...] | None = field(default=None, metadata={"report": False})
    label_names: tuple[str, ...] | None = field(default=None, metadata={"report": False})  # for integer ids
    name = "label_agreement"
    family = "labels"
    needs = ("real_texts", "real_labels")
    requires = ("sentence_transformers",)
    code_deps = ("synth_datasets.students.classifier", "synth_datasets.students.encoder")

    def __post_init__(self):
        if self.top_k < 1:
            raise ValueError(f"label_agreement: top_k must be >= 1, got {self.top_k}")
        if not 0 <= self.margin < 1:
            raise ValueError(f"label_agreement: margin is a probability difference in [0, 1), got {self.margin}")
        if self.margin and self.top_k != 1:
            raise ValueError("label_agreement: margin is over the runner-up label, so it needs top_k 1")
        if self.action not in ("drop", "relabel"):
            raise ValueError(f"label_agreement: action must be drop or relabel, got {self.action!r}")
        self._student = None

    def annotate(self, ds):
        from datasets import ClassLabel

        feature = ds.features.get(self.label_col)
        me = replace(self, label_names=tuple(feature.names)) if isinstance(feature, ClassLabel) else self
        out = ds.map(me, batched=True, batch_size=1000, desc=f"check {self.name}")
        if isinstance(feature, ClassLabel) and "label_original" in out.column_names:
            out = out.cast_column("label_original", feature)
        return out

    def bind(self, context):
        out = super().bind(context)
        if out.reference is None:
            texts = context.require("real_texts", self.name)
            labels = context.require("real_labels", self.name)
            out = replace(out, reference=tuple(zip(texts, (str(label) for label in labels))))
        if out.label_names is None and context.labels is not None:
            out = replace(out, label_names=tuple(str(label) for label in context.labels))
        return out

    def _name(self, label) -> str:
        return label_name(label, self.label_names)

    @property
    def student(self):
        if self._student is None:
            from ..students.classifier import ClassifierConfig, train_classifier

            if not self.reference:
                raise ValueError("check label_agreement needs labelled real rows: LabelAgreement(reference=[(text, label), ...]) "
                                 "or bind(context)")
            texts, labels = zip(*self.reference)
            labels = [self._name(label) for label in labels]
            self._student = train_classifier(list(texts), labels, ClassifierConfig(encoder=self.encoder, c=self.c))
            logger.info("label_agreement: classifier fitted on %d real rows, %d labels", len(texts), len(set(labels)))
        return self._student

    def flag_batch(self, batch):
        student = self.student
        texts = [t or "" for t in batch[self.text_col]]
        logits = student.logits(texts) if texts else np.zeros((0, len(student.labels)))
        probs = np.exp(logits - logits.max(axis=1, keepdims=True)) if len(texts) else logits
        probs = probs / probs.sum(axis=1, keepdims=True) if len(texts) else probs
        order = np.argsort(-probs, axis=1)[:, : self.top_k]
        index = {name: i for i, name in enumerate(student.labels)}
        originals = list(batch[self.label_col])
        requested = [self._name(label) for label in originals]
        score, pred, disagree, lead = [], [], [], []
        for row, label in enumerate(requested):
            i = index.get(label)
            score.append(round(float(probs[row, i]), 4) if i is not None else 0.0)
            pred.append(student.labels[order[row, 0]])
            others = np.delete(probs[row], i) if i is not None else probs[row]
            lead.append(round(score[-1] - float(others.max()) if len(others) else score[-1], 4))
            disagree.append(i is None or i not in order[row] or (self.margin > 0 and lead[-1] < self.margin))
        out = {f"{self.name}_score": score, f"{self.name}_pred": pred, f"{self.name}_margin": lead}
        if self.action == "relabel":
            new = [p if d else label for p, d, label in zip(pred, disagree, requested)]
            ids = originals and isinstance(originals[0], int) and self.label_names is not None
            out[self.label_col] = [self.label_names.index(x) for x in new] if ids else new
            out["label_original"] = originals
            out[self.flag_column] = [False] * len(texts)
            out[f"{self.name}_relabelled"] = disagree
        else:
            out[self.flag_column] = disagree
        return out
