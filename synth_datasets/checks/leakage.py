"""Leakage: synthetic rows that copy real rows (privacy, memorisation) or overlap the evaluation split."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .base import Check, normalize_text
from .minhash import nearest_in


@dataclass
class RealCopies(Check):
    """Flags a synthetic row whose most similar real row (character 5-gram Jaccard, exact on the
    LSH candidates) is >= `threshold`: a copy or near-copy of a seed, or of any real rows given.
    `real_copy_score` is that similarity (0.0 when no real row is close).

    With `embedding_threshold` set, a row is also flagged when its embedding cosine with a real row
    (`encoder`, all-MiniLM-L6-v2 by default) reaches it: a seed reworded word for word, which shares
    few character n-grams. `real_copy_cosine` is then the highest cosine to a real row."""

    threshold: float = 0.7
    ngram: int = 5
    embedding_threshold: float | None = None
    encoder: str = "all-MiniLM-L6-v2"
    column: str | None = None
    reference: tuple[str, ...] | None = field(default=None, metadata={"report": False})
    name = "real_copy"
    family = "leakage"
    needs = ("real_texts",)
    code_deps = ("synth_datasets.checks.minhash", "synth_datasets.checks.semantic", "synth_datasets.students.encoder")
    whole_column = True

    def __post_init__(self):
        if not 0 < self.threshold <= 1:
            raise ValueError(f"real_copy: threshold is a Jaccard similarity in (0, 1], got {self.threshold}")
        if self.embedding_threshold is not None and not 0 < self.embedding_threshold <= 1:
            raise ValueError(f"real_copy: embedding_threshold is a cosine similarity in (0, 1] (or null for none), "
                             f"got {self.embedding_threshold}")

    @property
    def requires(self) -> tuple[str, ...]:
        return ("sentence_transformers",) if self.embedding_threshold is not None else ()

    def bind(self, context):
        out = super().bind(context)
        if out.reference is None:
            return replace(out, reference=tuple(context.require("real_texts", self.name)))
        return out

    def flag_batch(self, batch):
        if self.reference is None:
            raise ValueError("check real_copy needs the real rows: RealCopies(reference=[...]) or bind(context)")
        best, _ = nearest_in(batch[self.text_col], self.reference, self.threshold, ngram=self.ngram)
        flags = [b >= self.threshold for b in best]
        out = {f"{self.name}_score": [round(b, 4) for b in best]}
        if self.embedding_threshold is not None:
            from .semantic import embed

            from .semantic import COSINE_SLACK

            if self.reference and len(best):
                cosine = (embed(batch[self.text_col], self.encoder) @ embed(self.reference, self.encoder).T).max(axis=1)
            else:
                cosine = np.zeros(len(best))
            out[f"{self.name}_cosine"] = [round(float(c), 4) for c in cosine]
            flags = [f or c >= self.embedding_threshold - COSINE_SLACK for f, c in zip(flags, cosine)]
        return {**out, self.flag_column: flags}


def word_ngrams(words: list[str], n: int) -> set[str]:
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


@dataclass
class Decontaminate(Check):
    """Flags a synthetic row that overlaps the evaluation split: it shares a word n-gram (normalised
    text, n = `n`, 13 as in GPT-3's decontamination) with a test text, or a test text shorter than n
    words (at least `min_words`) makes up most of it (at least `short_coverage` of its words, read as
    one contiguous run). The second rule protects short test rows without flagging every long row
    that happens to contain a common short phrase ("i have not received my card").
    `decontaminate_score` is the longest overlapping run found, in words (0 when clean)."""

    n: int = 13
    min_words: int = 4
    short_coverage: float = 0.6
    column: str | None = None
    reference: tuple[str, ...] | None = field(default=None, metadata={"report": False})
    name = "decontaminate"
    family = "leakage"
    needs = ("test_texts",)

    def __post_init__(self):
        if not 1 <= self.min_words <= self.n:
            raise ValueError(f"decontaminate: need 1 <= min_words <= n, got min_words={self.min_words}, n={self.n}")
        if not 0 < self.short_coverage <= 1:
            raise ValueError(f"decontaminate: short_coverage is a share of words in (0, 1], got {self.short_coverage}")
        self._index: tuple[set[str], dict[int, set[str]]] | None = None

    def bind(self, context):
        out = super().bind(context)
        if out.reference is None:
            return replace(out, reference=tuple(context.require("test_texts", self.name)))
        return out

    def grams(self) -> tuple[set[str], dict[int, set[str]]]:
        """(the test split's n-grams, {length: test texts shorter than n words, as word strings})."""
        if self._index is None:
            if self.reference is None:
                raise ValueError("check decontaminate needs the evaluation split: Decontaminate(reference=[...]) or bind(context)")
            long_grams: set[str] = set()
            short: dict[int, set[str]] = {}
            for text in self.reference:
                words = normalize_text(text or "").split()
                if len(words) >= self.n:
                    long_grams |= word_ngrams(words, self.n)
                elif len(words) >= self.min_words:
                    short.setdefault(len(words), set()).add(" ".join(words))
            self._index = (long_grams, short)
        return self._index

    def overlap(self, text: str | None) -> int:
        long_grams, short = self.grams()
        words = normalize_text(text or "").split()
        if len(words) >= self.n and word_ngrams(words, self.n) & long_grams:
            return self.n
        for size in sorted(short, reverse=True):
            if size <= len(words) and size >= self.short_coverage * len(words) and word_ngrams(words, size) & short[size]:
                return size
        return 0

    def flag_batch(self, batch):
        runs = [self.overlap(t) for t in batch[self.text_col]]
        return {f"{self.name}_score": runs, self.flag_column: [r > 0 for r in runs]}
