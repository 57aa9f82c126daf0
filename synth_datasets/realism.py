"""Realism: can a classifier tell the synthetic rows from real ones? (a classifier two-sample test)

    from synth_datasets.realism import two_sample
    figures = two_sample(real_texts, synthetic_texts, real_labels, synthetic_labels)
    figures["auc"]            # 0.5: indistinguishable; 1.0: every synthetic row is told apart

A logistic regression learns to separate the two sets from each row's sentence embedding (the
student's encoder: what the text says) and its character 2-4-gram TF-IDF (how it is written:
punctuation, casing, typos, stock phrases). Every row is scored by a model that did not see it
(stratified k-fold), and the ROC AUC of those out-of-fold scores is the figure: the chance that a
random synthetic row looks more synthetic than a random real one. Per label, the same out-of-fold
scores are ranked within the label's rows, so a label whose rows stand out is named even when the
overall figure is low. The classes are weighted to equal size, so the score of a row, P(synthetic),
reads the same whatever the number of rows on each side.

`most_synthetic` lists the synthetic rows the model was surest about: the first ones to read when
a prompt is being improved. The `realism` check (checks.Realism) drops rows whose score is above
the highest scores real rows get.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Sequence

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_FOLDS = 5
# fewer rows than this on either side and the figure is not computed (an AUC of 3 against 3 rows says nothing)
MIN_ROWS = 10
MIN_LABEL_ROWS = 2  # per label, on each side, for a per-label AUC


def features(texts: Sequence[str], encoder: str | None = None):
    """Dense sentence embeddings next to sparse character n-gram TF-IDF, one row per text."""
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer

    from .students.encoder import DEFAULT_ENCODER, get_encoder

    texts = ["" if t is None else str(t) for t in texts]
    emb = get_encoder(encoder or DEFAULT_ENCODER).encode(texts)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2, sublinear_tf=True, lowercase=False)
    try:
        grams = chars.fit_transform(texts)
    except ValueError:  # no n-gram occurs twice (a handful of tiny texts): the embeddings alone
        return sparse.csr_matrix(emb)
    return sparse.hstack([sparse.csr_matrix(emb), grams]).tocsr()


def out_of_fold_scores(x, is_synthetic: np.ndarray, folds: int = DEFAULT_FOLDS, seed: int = 0, c: float = 1.0) -> np.ndarray:
    """P(synthetic) for every row from a model fitted on the other folds (stratified)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(is_synthetic, dtype=int)
    n_splits = max(2, min(folds, int(y.sum()), int(len(y) - y.sum())))
    scores = np.zeros(len(y))
    for train, held in StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
        model.fit(x[train], y[train])
        scores[held] = model.predict_proba(x[held])[:, 1]
    return scores


def auc(scores: Sequence[float], is_synthetic: Sequence[bool]) -> float | None:
    """ROC AUC of `scores` for telling synthetic (True) from real rows; ties count a half.

    >>> auc([0.9, 0.8, 0.2, 0.1], [True, True, False, False]), auc([0.5, 0.5], [True, False])
    (1.0, 0.5)
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(is_synthetic, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    from scipy.stats import rankdata

    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def two_sample(real_texts: Sequence[str], synthetic_texts: Sequence[str], real_labels: Sequence | None = None,
               synthetic_labels: Sequence | None = None, *, encoder: str | None = None, folds: int = DEFAULT_FOLDS,
               seed: int = 0, top: int = 10) -> dict:
    """The realism figures of `synthetic_texts` against `real_texts` (see the module docstring):

    auc, real_rows, synthetic_rows    overall (auc None, with `reason`, when either side is too small)
    per_label                         {label: {auc, real_rows, synthetic_rows}}, when labels are given
    most_synthetic                    the `top` synthetic rows with the highest score: {text, label, score}
    scores                            each synthetic row's out-of-fold P(synthetic), in input order
    real_scores                       the same for each real row
    """
    real_texts, synthetic_texts = list(real_texts), list(synthetic_texts)
    out: dict = {"auc": None, "real_rows": len(real_texts), "synthetic_rows": len(synthetic_texts), "folds": folds,
                 "features": "sentence embedding + character 2-4-gram TF-IDF", "per_label": {}, "most_synthetic": [],
                 "scores": [], "real_scores": []}
    if min(len(real_texts), len(synthetic_texts)) < MIN_ROWS:
        out["reason"] = f"fewer than {MIN_ROWS} rows on one side ({len(real_texts)} real, {len(synthetic_texts)} synthetic)"
        return out
    y = np.array([0] * len(real_texts) + [1] * len(synthetic_texts), dtype=bool)
    scores = out_of_fold_scores(features(real_texts + synthetic_texts, encoder), y, folds, seed)
    out["auc"] = round(auc(scores, y), 4)
    syn_scores = scores[len(real_texts):]
    out["scores"] = [round(float(s), 4) for s in syn_scores]
    out["real_scores"] = [round(float(s), 4) for s in scores[:len(real_texts)]]
    labels = None
    if real_labels is not None and synthetic_labels is not None:
        labels = [str(label) for label in list(real_labels) + list(synthetic_labels)]
        rows = defaultdict(list)
        for i, label in enumerate(labels):
            rows[label].append(i)
        for label in sorted(rows):
            idx = np.array(rows[label])
            n_syn = int(y[idx].sum())
            n_real = len(idx) - n_syn
            value = auc(scores[idx], y[idx]) if min(n_syn, n_real) >= MIN_LABEL_ROWS else None
            out["per_label"][label] = {"auc": None if value is None else round(value, 4), "real_rows": n_real,
                                       "synthetic_rows": n_syn}
    order = np.argsort(-syn_scores, kind="stable")[:top]
    out["most_synthetic"] = [{"text": synthetic_texts[i], "label": labels[len(real_texts) + i] if labels else None,
                              "score": round(float(syn_scores[i]), 4)} for i in order]
    logger.info("realism: two-sample AUC %.3f (%d real, %d synthetic rows)", out["auc"], len(real_texts), len(synthetic_texts))
    return out


def summary_line(figures: dict, per_label_shown: int = 5) -> str:
    """One sentence for reports and cards.

    >>> summary_line({"auc": 0.81, "real_rows": 50, "synthetic_rows": 90, "per_label": {
    ...     "a": {"auc": 0.99, "real_rows": 5, "synthetic_rows": 9}, "b": {"auc": 0.6, "real_rows": 5, "synthetic_rows": 9}}})
    'Realism: a classifier told synthetic from real rows with ROC AUC 0.81 (0.5: indistinguishable; 1.0: always told apart; 90 synthetic against 50 real rows, cross-validated). Most distinguishable labels: a 0.99, b 0.60.'
    """
    if figures.get("auc") is None:
        return f"Realism: not measured ({figures.get('reason', 'no figures')})."
    text = (f"Realism: a classifier told synthetic from real rows with ROC AUC {figures['auc']:.2f} (0.5: indistinguishable; "
            f"1.0: always told apart; {figures['synthetic_rows']} synthetic against {figures['real_rows']} real rows, cross-validated).")
    ranked = sorted(((label, f["auc"]) for label, f in figures.get("per_label", {}).items() if f["auc"] is not None),
                    key=lambda item: (-item[1], item[0]))
    if ranked:
        text += " Most distinguishable labels: " + ", ".join(f"{label} {value:.2f}" for label, value in ranked[:per_label_shown]) + "."
    return text
