"""Reading real rows, and the one seeded per-group sampler every stage draws rows with.

    rows = load_rows("data/train.csv", field="seeds.path")          # a file or a dataset folder
    picked = sample_per_group(rows["label"], {"a": 3, "b": None}, seed=0)   # 3 of a, all of b, shuffled

Groups are a labelled task's labels; a task without labels has one group. The sampler walks the
groups in the order given and draws each group's rows with one `random.Random(seed)`, so the same
arguments always pick the same rows, and a prefix of a group's draw is a smaller draw of it (the
nested draws of `compare`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path

from datasets import ClassLabel, Dataset, load_dataset

from .errors import DataError

logger = logging.getLogger(__name__)

LOADERS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def load_rows(path: str | Path, split: str = "train", field: str = "path") -> Dataset:
    """Rows of a CSV/JSON/Parquet file or of a folder `load_dataset` reads (`split` of it).

    Errors name `field` (the recipe or script field the path came from) and say what to do.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{field}: {str(path)!r} does not exist (relative paths in a recipe start at the recipe's folder)")
    if not path.is_dir() and path.suffix not in LOADERS:
        raise DataError(f"{field}: cannot read {path.suffix!r} files; use one of {sorted(LOADERS)} or a dataset folder")
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{field}: {str(path)!r} is empty; it needs a header and at least one row")
    try:
        if path.is_dir():
            ds = load_dataset(str(path), split=split)
        else:
            ds = load_dataset(LOADERS[path.suffix], data_files=str(path), split="train")
    except ValueError as e:
        if "corresponds to no data" in str(e) or "Unknown split" in str(e):
            raise DataError(f"{field}: {str(path)!r} has no rows{f' in split {split!r}' if path.is_dir() else ''} "
                            f"(datasets said: {str(e)[:200]})") from None
        raise
    if len(ds) == 0:
        raise DataError(f"{field}: {str(path)!r} has a header but no rows; add real rows to it")
    return ds


def label_names(ds: Dataset, column: str) -> list[str]:
    """The column's values as strings; ClassLabel ids become their names."""
    feature = ds.features[column]
    values = ds[column]
    if isinstance(feature, ClassLabel):
        return [feature.int2str(v) for v in values]
    return [str(v) for v in values]


def sample_per_group(groups: Sequence, counts: dict, seed: int) -> dict[str, list[int]]:
    """{group: row indices} with `counts[group]` rows of each group (None: all of them), in random order.

    Groups are drawn in the order of `counts`, each with `rng.sample` from one `random.Random(seed)`;
    a group with fewer rows than asked gives all it has.

    >>> sample_per_group(["a", "b", "a", "a", "b"], {"a": 2, "b": None}, seed=0)
    {'a': [2, 3], 'b': [1, 4]}
    """
    by_group: dict[str, list[int]] = {}
    for i, group in enumerate(groups):
        by_group.setdefault(group, []).append(i)
    rng = random.Random(seed)
    out = {}
    for group, n in counts.items():
        rows = by_group.get(group, [])
        out[group] = rng.sample(rows, len(rows) if n is None else min(n, len(rows)))
    return out


def take_per_group(ds: Dataset, groups: Sequence, counts: dict, seed: int = 0) -> Dataset:
    """The rows `sample_per_group` picks, in dataset order within each group, groups in `counts` order."""
    picked = sample_per_group(groups, counts, seed)
    short = [f"{g} ({len(picked[g])}/{n})" for g, n in counts.items() if n is not None and len(picked[g]) < n]
    if short:
        logger.info("fewer rows than asked for %d groups: %s", len(short), ", ".join(short[:5]))
    return ds.select([i for g in counts for i in sorted(picked[g])])
