"""Students: small models trained on real, synthetic or blended rows to measure what the data is worth.

A student kind is an object with `fit(texts, labels, label_names, prior=None) -> model` and
`predict(model, texts) -> label names`; `prior` is the model of a first training stage (two-stage
training continues from it). `STUDENTS` maps the names a recipe uses to factories.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from .classifier import ClassifierConfig, ClassifierStudent, train_classifier
from .encoder import DEFAULT_ENCODER, get_encoder

__all__ = ["ClassifierConfig", "ClassifierStudent", "ClassifierKind", "STUDENTS", "train_classifier", "get_encoder",
           "DEFAULT_ENCODER"]


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


STUDENTS: dict[str, Callable[..., Any]] = {"classifier": ClassifierKind}
