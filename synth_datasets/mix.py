"""Real and synthetic rows in one training set, at a chosen ratio, with a `source` column.

>>> from datasets import Dataset
>>> real = Dataset.from_dict({"text": ["a", "b"], "label": ["x", "y"]})
>>> syn = Dataset.from_dict({"text": ["s1", "s2", "s3", "s4"], "label": ["x", "x", "y", "y"], "extra": [1, 2, 3, 4]})
>>> mixed = mix(real, syn, ratio=1.0, seed=0)
>>> sorted(mixed["source"]), mixed.column_names
(['real', 'real', 'synthetic', 'synthetic'], ['text', 'label', 'source'])
"""

from __future__ import annotations

import logging
import random
from collections import Counter

from datasets import Dataset, concatenate_datasets

logger = logging.getLogger(__name__)


def rows_for(ratio: float, n: int) -> int:
    """ratio x n rounded half up (Python's round() would make 0.5 x 5 two rows, not three).

    >>> rows_for(0.5, 5), rows_for(1.0, 7), rows_for(0.25, 2)
    (3, 7, 1)
    """
    return int(ratio * n + 0.5)


def take_per_label(ds: Dataset, counts: dict[str, int], seed: int = 0, label_column: str = "label") -> Dataset:
    """A seeded random `counts[label]` rows of each label (all of them where there are fewer)."""
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(ds[label_column]):
        by_label.setdefault(label, []).append(i)
    rng = random.Random(seed)
    chosen, short = [], []
    for label in sorted(counts):
        rows = by_label.get(label, [])
        picked = rng.sample(rows, min(counts[label], len(rows)))
        if len(picked) < counts[label]:
            short.append(f"{label} ({len(picked)}/{counts[label]})")
        chosen.extend(sorted(picked))
    if short:
        logger.info("fewer synthetic rows than asked for %d labels: %s", len(short), ", ".join(short[:5]))
    return ds.select(chosen)


def mix(real: Dataset, synthetic: Dataset, ratio: float | None = None, seed: int = 0,
        text_column: str = "text", label_column: str = "label") -> Dataset:
    """`real` plus, per label, `ratio` synthetic rows for each real row of that label (all of them
    when `ratio` is None), as columns text, label, source ("real" or "synthetic"), shuffled."""
    if ratio is not None and ratio < 0:
        raise ValueError(f"ratio must be >= 0 (synthetic rows per real row); got {ratio}")
    if ratio is None:
        picked = synthetic
    else:
        real_counts = Counter(real[label_column])
        picked = take_per_label(synthetic, {k: rows_for(ratio, n) for k, n in real_counts.items()}, seed, label_column)
    parts = [_standard(real, "real", text_column, label_column), _standard(picked, "synthetic", text_column, label_column)]
    return concatenate_datasets(parts).shuffle(seed=seed).flatten_indices()


def _standard(ds: Dataset, source: str, text_column: str, label_column: str) -> Dataset:
    return Dataset.from_dict({
        "text": list(ds[text_column]), "label": list(ds[label_column]), "source": [source] * len(ds),
    })
