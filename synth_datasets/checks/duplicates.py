"""Near-duplicates within the synthetic rows: MinHash-LSH over character (or word) n-grams."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Check
from .minhash import near_duplicates


@dataclass
class NearDuplicates(Check):
    """Flags a row whose n-gram Jaccard similarity with an earlier kept row is >= `threshold`; rows are
    walked in dataset order, so the same input keeps the same rows. Candidates come from MinHash-LSH
    (`num_perm` permutations, banding tuned to the threshold) and are confirmed exactly.
    `near_dedup_score` is the highest similarity found to an earlier row."""

    threshold: float = 0.8
    ngram: int = 5
    unit: str = "char"
    num_perm: int = 128
    seed: int = 1
    column: str | None = None
    name = "near_dedup"
    family = "duplicates"
    code_deps = ("synth_datasets.checks.minhash",)
    whole_column = True

    def __post_init__(self):
        if not 0 < self.threshold <= 1:
            raise ValueError(f"near_dedup: threshold is a Jaccard similarity in (0, 1], got {self.threshold}")
        if self.unit not in ("char", "word"):
            raise ValueError(f"near_dedup: unit must be char or word, got {self.unit!r}")
        if self.ngram < 1 or (self.unit == "char" and self.ngram > 8):
            raise ValueError(f"near_dedup: ngram must be 1..8 for char n-grams (>= 1 for words), got {self.ngram}")
        if self.num_perm < 8:
            raise ValueError(f"near_dedup: num_perm must be >= 8, got {self.num_perm}")

    def flag_batch(self, batch):
        flags, best, _ = near_duplicates(batch[self.text_col], self.threshold, num_perm=self.num_perm, ngram=self.ngram,
                                         unit=self.unit, seed=self.seed)
        return {f"{self.name}_score": [round(b, 4) for b in best], self.flag_column: flags}
