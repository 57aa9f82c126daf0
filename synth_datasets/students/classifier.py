"""The classifier student: a frozen sentence encoder and a multinomial logistic-regression head.

Chosen by measurement (docs/students.md): on banking77 with k real rows per class, this probe on
all-MiniLM-L6-v2 matches the published few-shot baselines in seconds, where a naive full fine-tune
of the same encoder reached 63% in minutes.

The head is fitted with full-batch L-BFGS on

    sum of cross-entropies + 1 / (2 C) * ||W - W_prior||^2

so `C` is scikit-learn's inverse regularisation strength, and a `prior` (the head of an earlier
student) turns the second stage of two-stage training into "learn the real rows, staying near what
the synthetic rows taught" rather than starting again from zero. Rows may carry weights.

A saved student is a folder of safetensors weights, a JSON config and a model card: no pickle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .encoder import DEFAULT_ENCODER, get_encoder
from .files import read_student_config, write_student_config

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "head.safetensors"


@dataclass
class ClassifierConfig:
    """Settings of the classifier student (each is also a `train_student.py` flag)."""

    encoder: str = field(default=DEFAULT_ENCODER, metadata={"help": "Sentence-transformers model id or folder; the default is the embedded all-MiniLM-L6-v2."})
    c: float = field(default=30.0, metadata={"help": "Inverse L2 strength of the logistic-regression head (as scikit-learn's C); chosen by measurement, docs/students.md."})
    max_iter: int = field(default=300, metadata={"help": "L-BFGS iterations for the head."})
    seed: int = field(default=0, metadata={"help": "Seed for the head's fit."})

    def __post_init__(self):
        if not self.c > 0:
            raise ValueError(f"classifier c must be > 0 (inverse regularisation strength); got {self.c}")
        if self.max_iter < 1:
            raise ValueError(f"classifier max_iter must be >= 1; got {self.max_iter}")


class ClassifierStudent:
    """A fitted head over a named encoder; predicts label names."""

    def __init__(self, labels: Sequence[str], weight: np.ndarray, bias: np.ndarray, config: ClassifierConfig,
                 history: dict | None = None):
        self.labels = list(labels)
        self.weight = np.asarray(weight, dtype=np.float32)
        self.bias = np.asarray(bias, dtype=np.float32)
        self.config = config
        self.history = history or {}

    @property
    def encoder(self):
        return get_encoder(self.config.encoder)

    def logits(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        x = self.encoder.encode(texts) if embeddings is None else embeddings
        return x @ self.weight.T + self.bias

    def predict(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> list[str]:
        return [self.labels[i] for i in self.logits(texts, embeddings).argmax(axis=1)]

    def top_k(self, texts: Sequence[str], k: int = 3, embeddings: np.ndarray | None = None) -> list[list[str]]:
        order = np.argsort(-self.logits(texts, embeddings), axis=1)[:, :k]
        return [[self.labels[i] for i in row] for row in order]

    def save(self, folder: str | Path) -> Path:
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"weight": self.weight, "bias": self.bias}, str(folder / WEIGHTS_FILE))
        write_student_config(folder, "classifier", self.labels, self.config, self.history)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "ClassifierStudent":
        from safetensors.numpy import load_file

        meta = read_student_config(folder, "classifier")
        tensors = load_file(str(Path(folder) / WEIGHTS_FILE))
        return cls(meta["labels"], tensors["weight"], tensors["bias"], ClassifierConfig(**meta["config"]), meta.get("history"))


def fit_head(x: np.ndarray, y: np.ndarray, n_classes: int, c: float, max_iter: int = 300, seed: int = 0,
             sample_weight: np.ndarray | None = None, prior: tuple[np.ndarray, np.ndarray] | None = None):
    """Multinomial logistic regression by L-BFGS; returns (weight, bias, final loss)."""
    import torch

    if len(x) == 0:
        raise ValueError("cannot fit a classifier on zero rows")
    gen = torch.Generator().manual_seed(seed)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).double()
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    wt = torch.ones(len(x), dtype=torch.float64) if sample_weight is None else torch.as_tensor(sample_weight, dtype=torch.float64)
    w0 = torch.zeros(n_classes, x.shape[1], dtype=torch.float64) if prior is None else torch.as_tensor(prior[0], dtype=torch.float64)
    b0 = torch.zeros(n_classes, dtype=torch.float64) if prior is None else torch.as_tensor(prior[1], dtype=torch.float64)
    w = (w0 + 1e-3 * torch.randn(w0.shape, generator=gen, dtype=torch.float64)).requires_grad_(True)
    b = b0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, tolerance_grad=1e-6, tolerance_change=1e-9,
                            history_size=20, line_search_fn="strong_wolfe")

    def objective():
        ce = torch.nn.functional.cross_entropy(xt @ w.T + b, yt, reduction="none")
        return (wt * ce).sum() + ((w - w0) ** 2).sum() / (2 * c)

    def closure():
        opt.zero_grad()
        loss = objective()
        loss.backward()
        return loss

    opt.step(closure)  # returns the loss at the start, not the end
    with torch.no_grad():
        final = float(objective())
    return w.detach().float().numpy(), b.detach().float().numpy(), final


def train_classifier(texts: Sequence[str], labels: Sequence[str], config: ClassifierConfig | None = None,
                     label_names: Sequence[str] | None = None, sample_weight: Sequence[float] | None = None,
                     prior: ClassifierStudent | None = None) -> ClassifierStudent:
    """Fit the head on (text, label-name) pairs.

    `label_names` fixes the label set and its order (labels absent from the rows keep a zero, or the
    prior's, row); `prior` is an earlier student whose head the fit stays near (two-stage training).
    """
    config = config or ClassifierConfig()
    names = list(label_names) if label_names is not None else sorted(set(labels))
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise ValueError(f"labels not in label_names: {unknown[:5]}")
    x = get_encoder(config.encoder).encode(texts)
    y = np.array([index[label] for label in labels])
    prior_head = None
    if prior is not None:
        if prior.config.encoder != config.encoder:
            raise ValueError(f"prior student uses encoder {prior.config.encoder!r}, this one {config.encoder!r}")
        rows = {name: i for i, name in enumerate(prior.labels)}
        w0 = np.zeros((len(names), x.shape[1]), dtype=np.float32)
        b0 = np.zeros(len(names), dtype=np.float32)
        for i, name in enumerate(names):
            if name in rows:
                w0[i], b0[i] = prior.weight[rows[name]], prior.bias[rows[name]]
        prior_head = (w0, b0)
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    w, b, loss = fit_head(x, y, len(names), config.c, config.max_iter, config.seed, weights, prior_head)
    history = {"rows": len(y), "final_loss": loss, "two_stage": prior is not None}
    logger.debug("classifier head fitted on %d rows, %d labels (loss %.3f)", len(y), len(names), loss)
    return ClassifierStudent(names, w, b, config, history)
