"""Students: small models trained on real, synthetic or blended rows to measure what the data is worth.

A student kind is an object with `fit(texts, labels, label_names, prior=None) -> model` and
`predict(model, texts) -> label names`; `prior` is the model of a first training stage (two-stage
training continues from it). `STUDENTS` maps the names a recipe uses to factories.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from .classifier import ClassifierConfig, ClassifierStudent, train_classifier
from .encoder import DEFAULT_ENCODER, get_encoder

__all__ = ["ClassifierConfig", "ClassifierStudent", "ClassifierKind", "LMKind", "STUDENTS", "train_classifier",
           "get_encoder", "load_student", "DEFAULT_ENCODER"]


class ClassifierKind:
    """The frozen-encoder + logistic-regression student (see classifier.py)."""

    name = "classifier"

    def __init__(self, encoder: str = DEFAULT_ENCODER, c: float = 30.0, seed: int = 0):
        self.config = ClassifierConfig(encoder=encoder, c=c, seed=seed)

    def fit(self, texts: Sequence[str], labels: Sequence[str], label_names: Sequence[str],
            prior: ClassifierStudent | None = None) -> ClassifierStudent:
        return train_classifier(texts, labels, self.config, label_names=label_names, prior=prior)

    def predict(self, model: ClassifierStudent, texts: Sequence[str]) -> list[str]:
        return model.predict(texts)

    def describe(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {"kind": self.name, **asdict(self.config)}


class LMKind:
    """The causal-LM student: TRL SFT + LoRA, answers constrained to the label set (see lm.py)."""

    name = "lm"

    def __init__(self, **settings):
        from .lm import LMStudentConfig

        self.config = LMStudentConfig(**settings)

    def fit(self, texts, labels, label_names, prior=None):
        from .lm import train_lm

        return train_lm(texts, labels, self.config, label_names=label_names, prior=prior)

    def predict(self, model, texts) -> list[str]:
        return model.predict(texts)

    def describe(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {"kind": self.name, **{k: v for k, v in asdict(self.config).items() if k != "prompt"}}


STUDENTS: dict[str, Callable[..., Any]] = {"classifier": ClassifierKind, "lm": LMKind}


def load_student(folder):
    """A saved student of either kind, from the folder `save()` (or train_student.py) wrote."""
    import json
    from pathlib import Path

    from .files import CONFIG_FILE

    kind = json.loads((Path(folder) / CONFIG_FILE).read_text()).get("kind")
    if kind == "classifier":
        return ClassifierStudent.load(folder)
    if kind == "lm":
        from .lm import LMStudent

        return LMStudent.load(folder)
    raise ValueError(f"{folder}: unknown student kind {kind!r}")
