"""Leakage: synthetic rows that copy real rows (privacy, memorisation) or overlap the evaluation split."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .basic import Check, normalize_text
from .minhash import nearest_in


@dataclass
class RealCopies(Check):
    """Flags a synthetic row whose most similar real row (character 5-gram Jaccard, exact on the
    LSH candidates) is >= `threshold`: a copy or near-copy of a seed, or of any real rows given.
    `real_copy_score` is that similarity (0.0 when no real row is close)."""

    threshold: float = 0.7
    ngram: int = 5
    column: str = "text"
    reference: tuple[str, ...] | None = field(default=None, metadata={"report": False})
    name = "real_copy"
    needs = ("real_texts",)
    whole_column = True

    def __post_init__(self):
        if not 0 < self.threshold <= 1:
            raise ValueError(f"real_copy: threshold is a Jaccard similarity in (0, 1], got {self.threshold}")

    def bind(self, context):
        if self.reference is None:
            return replace(self, reference=tuple(context.require("real_texts", self.name)))
        return self

    def flag_batch(self, batch):
        if self.reference is None:
            raise ValueError("check real_copy needs the real rows: RealCopies(reference=[...]) or bind(context)")
        best, _ = nearest_in(batch[self.column], self.reference, self.threshold, ngram=self.ngram)
        return {f"{self.name}_score": [round(b, 4) for b in best], self.flag_column: [b >= self.threshold for b in best]}


def word_ngrams(text: str | None, sizes: tuple[int, ...]) -> set[str]:
    words = normalize_text(text or "").split()
    return {" ".join(words[i:i + n]) for n in sizes for i in range(len(words) - n + 1)}


@dataclass
class Decontaminate(Check):
    """Flags a synthetic row that shares a word n-gram (normalised text, n = `n`) with the evaluation
    split. An evaluation text shorter than n words (but at least `min_words`) counts as one n-gram of
    its own length, so short test rows are protected too. `decontaminate_score` counts shared n-grams."""

    n: int = 8
    min_words: int = 4
    column: str = "text"
    reference: tuple[str, ...] | None = field(default=None, metadata={"report": False})
    name = "decontaminate"
    needs = ("test_texts",)

    def __post_init__(self):
        if not 1 <= self.min_words <= self.n:
            raise ValueError(f"decontaminate: need 1 <= min_words <= n, got min_words={self.min_words}, n={self.n}")
        self._grams: set[str] | None = None
        self._sizes: tuple[int, ...] = ()

    def bind(self, context):
        if self.reference is None:
            return replace(self, reference=tuple(context.require("test_texts", self.name)))
        return self

    def _index(self):
        if self._grams is None:
            if self.reference is None:
                raise ValueError("check decontaminate needs the evaluation split: Decontaminate(reference=[...]) or bind(context)")
            sizes, grams = {self.n}, set()
            for text in self.reference:
                words = normalize_text(text or "").split()
                size = self.n if len(words) >= self.n else len(words)
                if size >= self.min_words:
                    sizes.add(size)
                    grams |= {" ".join(words[i:i + size]) for i in range(len(words) - size + 1)}
            self._grams, self._sizes = grams, tuple(sorted(sizes))
        return self._grams, self._sizes

    def flag_batch(self, batch):
        grams, sizes = self._index()
        shared = [len(word_ngrams(t, sizes) & grams) for t in batch[self.column]]
        return {f"{self.name}_score": shared, self.flag_column: [s > 0 for s in shared]}
