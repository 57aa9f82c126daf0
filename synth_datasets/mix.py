"""Real and synthetic rows in one training set, at a chosen ratio, with a `source` column.

Labelled tasks mix per label (`by="label"`: `ratio` synthetic rows of a label for each real row of
it); tasks without labels mix by count (`by=None`).

>>> from datasets import Dataset
>>> real = Dataset.from_dict({"text": ["a", "b"], "label": ["x", "y"]})
>>> syn = Dataset.from_dict({"text": ["s1", "s2", "s3", "s4"], "label": ["x", "x", "y", "y"], "extra": [1, 2, 3, 4]})
>>> mixed = mix(real, syn, ratio=1.0, seed=0)
>>> sorted(mixed["source"]), mixed.column_names
(['real', 'real', 'synthetic', 'synthetic'], ['text', 'label', 'source'])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from datasets import Dataset, concatenate_datasets

from .data import take_per_group


def rows_for(ratio: float, n: int) -> int:
    """ratio x n rounded half up (Python's round() would make 0.5 x 5 two rows, not three).

    >>> rows_for(0.5, 5), rows_for(1.0, 7), rows_for(0.25, 2)
    (3, 7, 1)
    """
    return int(ratio * n + 0.5)


def mix(real: Dataset, synthetic: Dataset, ratio: float | None = None, seed: int = 0,
        columns: Sequence[str] = ("text", "label"), by: str | None = "label") -> Dataset:
    """`real` plus `ratio` synthetic rows for each real row (per value of the `by` column, or in all
    when `by` is None; all synthetic rows when `ratio` is None), as `columns` and `source` ("real" or
    "synthetic"), shuffled."""
    if ratio is not None and ratio < 0:
        raise ValueError(f"ratio must be >= 0 (synthetic rows per real row); got {ratio}")
    if ratio is None:
        picked = synthetic
    else:
        groups = synthetic[by] if by is not None else ["all"] * len(synthetic)
        real_counts = Counter(real[by]) if by is not None else Counter({"all": len(real)})
        picked = take_per_group(synthetic, groups, {g: rows_for(ratio, n) for g, n in sorted(real_counts.items())}, seed)
    parts = [with_source(real, "real", columns), with_source(picked, "synthetic", columns)]
    return concatenate_datasets(parts).shuffle(seed=seed).flatten_indices()


def with_source(ds: Dataset, source: str, columns: Sequence[str] = ("text", "label")) -> Dataset:
    """`columns` of `ds` and a `source` column saying where every row came from."""
    return Dataset.from_dict({**{c: list(ds[c]) for c in columns}, "source": [source] * len(ds)})
