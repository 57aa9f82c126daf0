"""Students: small models trained on real, synthetic or blended rows to measure what the data is worth.
Built in: `classifier` (frozen encoder + logistic regression), `lm` (TRL SFT + LoRA) and `tagger`
(an encoder fine-tuned for token classification).

A student kind is a class, registered in `STUDENTS` under the name `compare.student` uses (plugins add
theirs through the `synth_datasets.students` entry-point group), built with keyword settings, with

    tasks                       the task kinds it fits (None: any)
    requires                    modules it needs (an extra); compare stops before generating without them
    recipe_fields               compare-section fields it takes settings from ({field: setting})
    fit(rows, task, prior=None) -> model    rows: a Dataset in the task's columns (+ `source`);
                                            `prior` is the model of a first stage (two-stage training)
    predict(model, rows, task) -> list      one prediction per row; the task scores them (`Task.score`)
    describe() -> dict                      its settings, for compare.json and the card
    load(folder) (classmethod)              a saved model, for `load_student`
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..registry import BUILTIN, Registry
from .classifier import ClassifierConfig, ClassifierStudent, train_classifier
from .encoder import DEFAULT_ENCODER, get_encoder
from .lm import LMStudentConfig  # light: torch, transformers and TRL are imported when a student trains
from .tagger import TaggerConfig

__all__ = ["ClassifierConfig", "ClassifierStudent", "ClassifierKind", "LMKind", "TaggerKind", "STUDENTS", "train_classifier",
           "get_encoder", "load_student", "DEFAULT_ENCODER"]


class ClassifierKind:
    """The frozen-encoder + logistic-regression student (see classifier.py)."""

    name = "classifier"
    tasks = ("classification",)
    requires = ("sentence_transformers", "torch")
    settings_class = ClassifierConfig  # what compare.student_options may set
    recipe_fields = {"encoder": "encoder", "c": "c"}

    def __init__(self, encoder: str = DEFAULT_ENCODER, c: float = 30.0, seed: int = 0, max_iter: int = 300):
        self.config = ClassifierConfig(encoder=encoder, c=c, seed=seed, max_iter=max_iter)

    def fit(self, rows, task, prior: ClassifierStudent | None = None) -> ClassifierStudent:
        """Rows with a `weight` column weigh that much in the loss (compare.tune's synthetic weight)."""
        weights = rows["weight"] if "weight" in rows.column_names else None
        return train_classifier(rows["text"], rows["label"], self.config, label_names=task.labels, prior=prior,
                                sample_weight=weights)

    def predict(self, model: ClassifierStudent, rows, task) -> list[str]:
        return model.predict(rows["text"])

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name, **asdict(self.config)}

    @classmethod
    def load(cls, folder) -> ClassifierStudent:
        return ClassifierStudent.load(folder)


class LMKind:
    """The causal-LM student: TRL SFT + LoRA, answers constrained to the label set (see lm.py). Its
    question for a row is `prompt`, else the task's (`Task.student_prompt`, from the recipe)."""

    name = "lm"
    tasks = ("classification", "instruction", "extraction")
    requires = ("trl", "peft", "torch")
    settings_class = LMStudentConfig
    recipe_fields = {"lm_model": "model", "lm_epochs": "epochs"}

    def __init__(self, training_args=None, output_dir=None, **settings):
        """`settings`: LMStudentConfig's fields; `training_args`: a TRL SFTConfig used as given (the
        student script's), with the Trainer's own files in `output_dir`."""
        self.config = LMStudentConfig(**settings)
        self.training_args, self.output_dir = training_args, output_dir

    def fit(self, rows, task, prior=None):
        from dataclasses import replace

        from .lm import train_lm

        config = self.config
        if task.label_column is None:  # prompt-response rows: the task's conversations, as they are
            from datasets import Dataset

            from .lm import train_lm_on

            return train_lm_on(Dataset.from_dict(task.conversations(rows)), config, prior=prior,
                               output_dir=self.output_dir, training_args=self.training_args)
        if config.prompt is None and hasattr(task, "student_prompt"):
            config = replace(config, prompt=task.student_prompt())
        return train_lm(rows["text"], rows["label"], config, label_names=task.labels, prior=prior,
                        output_dir=self.output_dir, training_args=self.training_args)

    def predict(self, model, rows, task) -> list:
        """Labels (constrained to the label set); for a task without labels, per row the greedy
        `answer` (None beyond the first `answer_rows` rows) and the mean per-token `nll` of the
        reference answer."""
        if task.label_column is not None:
            return model.predict(rows["text"])
        talk = task.conversations(rows)
        references = [c[-1]["content"] for c in talk["completion"]]
        n = len(references) if model.config.answer_rows is None else min(model.config.answer_rows, len(references))
        answers = model.respond(talk["prompt"][:n]) + [None] * (len(references) - n)
        nll = model.reference_nll(talk["prompt"], references)
        return [{"answer": a, "nll": x} for a, x in zip(answers, nll)]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name, **{k: v for k, v in asdict(self.config).items() if k != "prompt"}}

    @classmethod
    def load(cls, folder):
        from .lm import LMStudent

        return LMStudent.load(folder)


class TaggerKind:
    """The token-classification student: an encoder with a token-classification head, fine-tuned on
    words + BIO tags (see tagger.py); the task turns its rows into words and tags and scores the
    predicted tags (entity-level F1)."""

    name = "tagger"
    tasks = ("extraction",)
    requires = ("transformers", "torch", "seqeval")
    settings_class = TaggerConfig

    def __init__(self, **settings):
        self.config = TaggerConfig(**settings)

    def fit(self, rows, task, prior=None):
        from .tagger import train_tagger

        words, tags = task.words_and_tags(rows)
        return train_tagger(words, tags, task.tag_set(), self.config, prior=prior)

    def predict(self, model, rows, task) -> list[list[str]]:
        words, _ = task.words_and_tags(rows)
        return model.predict(words)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name, **asdict(self.config)}

    @classmethod
    def load(cls, folder):
        from .tagger import TaggerStudent

        return TaggerStudent.load(folder)


STUDENTS = Registry("synth_datasets.students", "student")
STUDENTS.register("classifier", ClassifierKind, BUILTIN)
STUDENTS.register("lm", LMKind, BUILTIN)
STUDENTS.register("tagger", TaggerKind, BUILTIN)


def load_student(folder):
    """A saved student of any registered kind, from the folder `save()` (or train_student.py) wrote."""
    import json
    from pathlib import Path

    from .files import CONFIG_FILE

    kind = json.loads((Path(folder) / CONFIG_FILE).read_text()).get("kind")
    if kind not in STUDENTS:
        raise ValueError(f"{folder}: unknown student kind {kind!r}; known: {sorted(STUDENTS)}")
    return STUDENTS[kind].load(folder)
