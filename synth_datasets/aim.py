"""Generation aimed at what a real-only student gets wrong.

    plan = confusion_plan(real_texts, real_labels, labels, total=770)
    plan.counts["card_arrival"], plan.neighbour["card_arrival"]     # 14, 'card_delivery_estimate'

The classifier student (frozen encoder + logistic head) is cross-validated on the real rows only
(stratified folds, each of a label's rows held out once). Each label's errors are its held-out rows
read as another label plus other labels' rows read as it; its neighbour is the label it is confused
with most (both directions), or, for a label without errors, the label whose real rows' mean
embedding is closest. `total` requests are shared in proportion to 1 + errors, so every label gets
some and the confused ones more. `compare.aimed_per_label` asks for them beside the recipe's own
requests, each showing the neighbour's real rows as what not to write (`CONTRAST_BLOCK` in
tasks/classification.py).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

logger = logging.getLogger(__name__)


@dataclass
class ConfusionPlan:
    counts: dict[str, int]       # aimed requests per label
    neighbour: dict[str, str]    # the label each one is confused with most
    errors: dict[str, int]       # cross-validated errors involving each label
    accuracy: float              # the real-only student's cross-validated accuracy
    pairs: list[tuple[str, str, int]]  # (true, predicted, count), most frequent first

    def as_dict(self) -> dict:
        return {"counts": self.counts, "neighbour": self.neighbour, "errors": self.errors,
                "cv_accuracy": round(self.accuracy, 4), "top_pairs": [list(p) for p in self.pairs[:10]]}


def cross_validated_predictions(texts: Sequence[str], labels: Sequence[str], names: Sequence[str], folds: int = 5,
                                encoder: str | None = None, c: float = 30.0) -> list[str]:
    """Each row's label as predicted by the classifier student fitted on the other folds (the i-th
    row of each label goes to fold i mod folds)."""
    from .students.classifier import fit_head
    from .students.encoder import DEFAULT_ENCODER, get_encoder

    x = get_encoder(encoder or DEFAULT_ENCODER).encode(list(texts))
    index = {name: i for i, name in enumerate(names)}
    y = np.array([index[label] for label in labels])
    seen: Counter = Counter()
    fold = np.zeros(len(y), int)
    for j, label in enumerate(labels):
        fold[j] = seen[label] % folds
        seen[label] += 1
    pred = np.zeros(len(y), int)
    for f in range(folds):
        held = fold == f
        if not held.any() or held.all():
            continue
        w, b, _ = fit_head(x[~held], y[~held], len(names), c)
        pred[held] = (x[held] @ w.T + b).argmax(1)
    return [names[i] for i in pred]


def confusion_plan(texts: Sequence[str], labels: Sequence[str], names: Sequence[str], total: int,
                   folds: int = 5, encoder: str | None = None) -> ConfusionPlan:
    """Aimed requests per label and each label's neighbour (module docstring)."""
    from .students.encoder import DEFAULT_ENCODER, get_encoder

    names = list(names)
    per_label = Counter(labels)
    folds = max(2, min(folds, min(per_label[name] for name in names)))
    predicted = cross_validated_predictions(texts, labels, names, folds, encoder)
    confusions = Counter((t, p) for t, p in zip(labels, predicted) if t != p)
    errors = {name: 0 for name in names}
    between: Counter = Counter()
    for (t, p), n in confusions.items():
        errors[t] += n
        errors[p] += n
        between[frozenset((t, p))] += n
    emb = get_encoder(encoder or DEFAULT_ENCODER).encode(list(texts))
    centroids = np.stack([emb[[i for i, label in enumerate(labels) if label == name]].mean(0) for name in names])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    closeness = centroids @ centroids.T
    neighbour = {}
    for i, name in enumerate(names):
        scored = [(between[frozenset((name, other))], float(closeness[i, j]), other)
                  for j, other in enumerate(names) if other != name]
        neighbour[name] = max(scored)[2] if scored else name
    weights = np.array([1 + errors[name] for name in names], dtype=float)
    counts = _largest_remainder(weights / weights.sum() * total)
    accuracy = sum(t == p for t, p in zip(labels, predicted)) / len(labels)
    logger.info("aim: cross-validated accuracy %.3f on %d real rows; %d confused pairs", accuracy, len(labels), len(between))
    return ConfusionPlan(dict(zip(names, counts)), neighbour, errors, accuracy,
                         [(t, p, n) for (t, p), n in confusions.most_common()])


def _largest_remainder(shares: np.ndarray) -> list[int]:
    """Whole numbers summing to round(sum(shares)), each the floor of its share or one more.

    >>> _largest_remainder(np.array([1.5, 1.5, 1.0]))
    [2, 1, 1]
    """
    floors = np.floor(shares).astype(int)
    left = int(round(shares.sum())) - int(floors.sum())
    order = np.argsort(-(shares - floors), kind="stable")
    floors[order[:left]] += 1
    return floors.tolist()
