"""Scores of a student's predictions on a real test split, through the `evaluate` library.

`evaluate.load("accuracy")` fetches its module from the Hub; the modules this project needs ship in
`synth_datasets/metrics/` and load by path, so evaluation works offline. A task names its metrics
(`Task.metrics`) and scores its students' predictions with them (`Task.score`).

>>> scores = score("classification", predictions=[0, 1, 1, 2], references=[0, 1, 2, 2])
>>> scores["accuracy"], round(scores["macro_f1"], 3)
(0.75, 0.778)
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

METRICS_DIR = Path(__file__).resolve().parent / "metrics"


@lru_cache(maxsize=None)
def load_metric(name: str):
    """The shipped `evaluate` module `name` (a folder under synth_datasets/metrics), loaded by path."""
    import evaluate

    folder = METRICS_DIR / name
    if not (folder / f"{name}.py").is_file():
        known = sorted(p.name for p in METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file())
        raise ValueError(f"no shipped metric {name!r}; shipped: {known}")
    return evaluate.load(str(folder))


def score(task: str, predictions, references) -> dict[str, float]:
    """Every metric of the task named `task` (`Task.metrics`) on these predictions, as {metric: value}."""
    from .tasks import get_task

    return score_with(get_task(task, "task").metrics, predictions, references)


def score_with(metrics, predictions, references) -> dict[str, float]:
    """The shipped `evaluate` modules named in `metrics` on these predictions, as {metric: value}."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    out: dict[str, float] = {}
    for name in metrics:
        out.update(load_metric(name).compute(predictions=list(predictions), references=list(references)))
    return out
