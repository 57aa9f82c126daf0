"""How much to trust the synthetic rows, chosen on the real rows only (`compare.tune`).

    choice = choose(real_texts, real_labels, syn_texts, syn_labels, shown, labels)
    choice.margin, choice.weight          # e.g. 0.25, 0.5; weight 0 means: real rows alone

Two settings decide what a blended classifier takes from synthetic rows: which rows it keeps (a
row is kept when a classifier fitted on the real rows gives its requested label at least `margin`
more probability than any other label; 0 is the top-1 rule of the `label_agreement` check, None keeps
every row) and how
much each kept row weighs in the loss next to a real row (`weight`). Both are chosen by stratified
cross-validation on the real rows: for each fold, the margin classifier and the blended student are
fitted on the other folds (and the synthetic rows), and scored on the fold's real rows. Weight 0,
the real rows alone, is always a candidate, so synthetic rows that do not pay in cross-validation are
left out rather than trusted.

A synthetic row generated from a prompt that showed a validation row can paraphrase it; counting
it would reward synthetic rows for copying what they are then tested on (on banking77 a first run
without this chose "every row, weight 1" on a draw where that lost 3.2 points on the test split). So
in each fold the synthetic rows whose prompt showed one of the fold's validation rows (`shown`) are
left out of that fold's training set. Ties go to the smaller weight, then to the larger margin.
"""

from __future__ import annotations

import logging
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

logger = logging.getLogger(__name__)

MARGINS = (None, 0.0, 0.25)  # None: every row; 0: the top-1 rule
WEIGHTS = (0.25, 0.5, 1.0)
FOLDS = 5


@dataclass
class Choice:
    margin: float | None
    weight: float
    scores: dict = field(default_factory=dict)  # "margin|weight" -> mean cross-validated accuracy
    folds: int = 0

    def as_dict(self) -> dict:
        return {"margin": self.margin, "weight": self.weight, "folds": self.folds,
                "cv_accuracy": {k: round(v, 4) for k, v in self.scores.items()}}


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def margins(x_real: np.ndarray, y_real: np.ndarray, x_syn: np.ndarray, y_syn: np.ndarray, n: int, c: float = 30.0) -> np.ndarray:
    """Per synthetic row: P(requested label) minus the largest other P, from a classifier fitted on the real rows."""
    from .students.classifier import fit_head

    w, b, _ = fit_head(x_real, y_real, n, c)
    p = _softmax(x_syn @ w.T + b)
    rows = np.arange(len(y_syn))
    own = p[rows, y_syn].copy()
    p[rows, y_syn] = -1.0
    return own - p.max(axis=1)


def folds_of(labels: Sequence, n_folds: int) -> np.ndarray:
    """Stratified folds: the i-th row of each label goes to fold i mod n_folds.

    >>> folds_of(["a", "a", "b", "a", "b"], 2).tolist()
    [0, 1, 0, 0, 1]
    """
    seen: Counter = Counter()
    out = np.zeros(len(labels), int)
    for j, label in enumerate(labels):
        out[j] = seen[label] % n_folds
        seen[label] += 1
    return out


def choose(real_texts: Sequence[str], real_labels: Sequence[str], syn_texts: Sequence[str], syn_labels: Sequence[str],
           shown: Sequence[Sequence[str]] | None, labels: Sequence[str], *, margins_: Sequence[float] = MARGINS,
           weights: Sequence[float] = WEIGHTS, folds: int = FOLDS, encoder: str | None = None, c: float = 30.0) -> Choice:
    """The (margin, weight) with the best cross-validated accuracy on the real rows (module docstring).
    `shown[i]`: the real texts synthetic row i's prompt showed (None: unknown, nothing left out)."""
    from .students.classifier import fit_head
    from .students.encoder import DEFAULT_ENCODER, get_encoder

    enc = get_encoder(encoder or DEFAULT_ENCODER)
    index = {name: i for i, name in enumerate(labels)}
    xr, yr = enc.encode(list(real_texts)), np.array([index[str(x)] for x in real_labels])
    xs, ys = enc.encode(list(syn_texts)), np.array([index[str(x)] for x in syn_labels])
    per_label = Counter(yr.tolist())
    n_folds = max(2, min(folds, min(per_label.values())))
    fold = folds_of(yr.tolist(), n_folds)
    shown_sets = [set(s or ()) for s in shown] if shown is not None else [set() for _ in range(len(ys))]
    real_texts = list(real_texts)
    n = len(labels)
    scores: dict[tuple[float, float], list[float]] = {}

    def accuracy(x, y, wts, xv, yv):
        w, b, _ = fit_head(x, y, n, c, sample_weight=wts)
        return float(((xv @ w.T + b).argmax(1) == yv).mean())

    for f in range(n_folds):
        train, held = fold != f, fold == f
        held_texts = {real_texts[i] for i in np.flatnonzero(held)}
        clean = np.array([not (s & held_texts) for s in shown_sets], bool)
        scores.setdefault((None, 0.0), []).append(accuracy(xr[train], yr[train], None, xr[held], yr[held]))
        lead = margins(xr[train], yr[train], xs, ys, n, c) if len(ys) else np.zeros(0)
        for margin in margins_:
            keep = clean & kept_at(lead, margin)
            for weight in weights:
                x = np.concatenate([xr[train], xs[keep]])
                y = np.concatenate([yr[train], ys[keep]])
                wts = np.concatenate([np.ones(int(train.sum())), np.full(int(keep.sum()), weight)])
                scores.setdefault((margin, weight), []).append(accuracy(x, y, wts, xr[held], yr[held]))
    mean = {key: statistics.mean(v) for key, v in scores.items()}
    best = sorted(mean, key=lambda key: (-round(mean[key], 6), key[1], -(-1 if key[0] is None else key[0])))[0]
    logger.info("tune: chose margin %s, weight %s (cv accuracy %.3f; real rows alone %.3f)", best[0], best[1],
                mean[best], mean[(None, 0.0)])
    return Choice(best[0], best[1], {f"{m}|{w:g}": v for (m, w), v in mean.items()}, n_folds)


def kept_at(lead: np.ndarray, margin: float | None) -> np.ndarray:
    """Rows whose lead (`margins`) passes `margin`: every row for None, a positive lead for 0 (top-1)."""
    if margin is None:
        return np.ones(len(lead), bool)
    return (lead > 0) if margin == 0 else (lead >= margin)


def keep_by_margin(real_texts, real_labels, syn_texts, syn_labels, labels, margin: float | None, encoder: str | None = None,
                   c: float = 30.0) -> np.ndarray:
    """Which synthetic rows a classifier fitted on all the real rows keeps at `margin` (0: top-1)."""
    from .students.encoder import DEFAULT_ENCODER, get_encoder

    if margin is None or len(syn_texts) == 0:
        return np.ones(len(syn_texts), bool)
    enc = get_encoder(encoder or DEFAULT_ENCODER)
    index = {name: i for i, name in enumerate(labels)}
    lead = margins(enc.encode(list(real_texts)), np.array([index[str(x)] for x in real_labels]),
                   enc.encode(list(syn_texts)), np.array([index[str(x)] for x in syn_labels]), len(labels), c)
    return kept_at(lead, margin)
