"""ROUGE-L novelty, as Self-Instruct and Alpaca filter generated instructions: exact and fast.

Self-Instruct keeps a new instruction only if its ROUGE-L F-measure against every instruction kept
so far is <= 0.7, using Google's `rouge-score` (`RougeScorer(["rougeL"], use_stemmer=False)`;
Alpaca tokenizes every instruction once and calls `rouge_scorer._score_lcs(new, old)` against each
kept one). That is a pure-Python LCS table per pair, quadratic in the number of instructions. This
module makes the same keep/drop decisions, bit for bit, without depending on rouge-score or nltk:

- `rouge_tokens` is rouge-score's tokenizer without stemming: `str.lower()` (full Unicode
  lower-casing, so U+212A, the Kelvin sign, becomes "k" and "İ" becomes "i" plus a combining dot), every
  run of characters other than ASCII a-z and 0-9 is a separator, nothing else is a token (accented
  letters, CJK and emoji separate words and vanish);
- `rouge_l(target, prediction)` is `_score_lcs(target, prediction).fmeasure` with the same float
  arithmetic: `precision = lcs / len(prediction)`, `recall = lcs / len(target)`,
  `f = 2 * precision * recall / (precision + recall)` (0.0 when either side has no tokens). The
  F-measure is symmetric in floating point too (`2 * p` is exact and `*`, `+` commute), so which
  side is the target does not change a decision;
- the LCS length is computed bit-parallel (Allison-Dix / Hyyrö: one big-int add, and, or, subtract
  per token of one side, `int.bit_count` at the end), not with an m x n table;
- `RougeNovelty`, the incremental index, skips most kept instructions without an LCS at all: tokens
  are mapped to ints, an inverted index over (token, occurrence number) gives each kept instruction's
  multiset overlap O with the new one in one numpy `bincount`, and since LCS <= min(O, len(old)),
  F <= 2 * min(O, n) / (m + n) (m, n: the two lengths; the exact F is 2 * LCS / (m + n) up to a few
  units in the last place). A kept instruction whose bound is below the floor by a relative margin of
  1e-9, far above float rounding (< 1e-15), cannot reach it and is never compared; the rest are
  compared exactly, highest bound first, until no bound can reach the best score found.

What `RougeNovelty.max_score` guarantees: with M the true maximum of rouge-score's F over the kept
instructions, if M >= `floor` (by default the threshold) the score returned is M exactly and the
index is the earliest kept instruction that scores M; otherwise the score is below `floor` (the best
among the instructions compared, a lower bound of M; 0.0 with index None if none was). So
`score > threshold` is exactly rouge-score's `max(scores) > threshold`, ties at the threshold
included, and whenever the index is not None the score is exactly rouge-score's F for that pair.

    >>> novel(["Write a poem about the sea.", "Write a short poem about the sea.", "Sum two numbers."])
    [(True, 0.0, None), (False, 0.923076923076923, 0), (True, 0.0, None)]

(0.923076923076923, as rouge-score computes 2 * 1 * (6/7) / (1 + 6/7), where 12/13 would be
0.9230769230769231: ties at the threshold hang on such last digits.)
"""

from __future__ import annotations

import re
from array import array
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

import numpy as np

from .base import Check

_TOKEN = re.compile(r"[a-z0-9]+")
# A kept instruction is compared exactly unless its upper bound is below the floor by this relative
# margin; the float F differs from the rational 2 * lcs / (m + n) by < 1e-15 relative.
_MARGIN = 1e-9
_FIRST = 64  # kept texts compared in the first round of a query, before the others are cut by its best


def rouge_tokens(text: str) -> list[str]:
    """rouge-score's default tokens (`tokenize.tokenize(text, stemmer=None)`): lower case, runs of
    ASCII letters and digits; everything else separates tokens and is dropped.

    >>> rouge_tokens("Don't re-write 700-1000 CALORIES, café!")
    ['don', 't', 're', 'write', '700', '1000', 'calories', 'caf']
    """
    return _TOKEN.findall(text.lower())


def _fmeasure(lcs: int, n_target: int, n_prediction: int) -> float:
    """rouge-score's `_score_lcs` F-measure from the LCS length and the two lengths (both > 0)."""
    precision = lcs / n_prediction
    recall = lcs / n_target
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def _match_masks(tokens: Sequence) -> dict:
    """{token: bit mask of its positions in `tokens`}."""
    masks: dict = {}
    for i, t in enumerate(tokens):
        masks[t] = masks.get(t, 0) | (1 << i)
    return masks


def _lcs_bits(masks: dict, full: int, m: int, other: Iterable) -> int:
    """LCS length of the sequence behind `masks` (length m, `full` = 2**m - 1) and `other`:
    V starts all ones; per token c of `other`, U = V & M[c], V = (V + U) | (V - U); the LCS is the
    number of zero bits among V's low m bits (carries past bit m never come back down)."""
    v = full
    get = masks.get
    for t in other:
        u = get(t)
        if u:
            u &= v
            v = (v + u) | (v - u)
    return m - (v & full).bit_count()


def lcs_length(a: Sequence, b: Sequence) -> int:
    """Length of the longest common subsequence of two token sequences (bit-parallel).

    >>> lcs_length("the cat sat on the mat".split(), "a cat on a mat".split())
    3
    """
    if len(a) < len(b):
        a, b = b, a  # iterate over the shorter one
    if not b:
        return 0
    return _lcs_bits(_match_masks(a), (1 << len(a)) - 1, len(a), b)


def rouge_l(a_tokens: Sequence[str], b_tokens: Sequence[str]) -> float:
    """ROUGE-L F-measure exactly as rouge-score's `_score_lcs(a_tokens, b_tokens).fmeasure` (a is
    the target, b the prediction; the value is the same either way round). 0.0 if either is empty.

    >>> rouge_l("the cat sat on the mat".split(), "a cat on a mat".split())  # lcs 3, lengths 6 and 5
    0.5454545454545454
    """
    if not a_tokens or not b_tokens:
        return 0.0
    return _fmeasure(lcs_length(a_tokens, b_tokens), len(a_tokens), len(b_tokens))


def rouge_l_text(a: str, b: str) -> float:
    """`rouge_l` of two texts, tokenized as rouge-score does.

    >>> rouge_l_text("Write a poem about the sea.", "Write a short poem about the sea!")
    0.923076923076923
    """
    return rouge_l(rouge_tokens(a), rouge_tokens(b))


class RougeNovelty:
    """An incremental index of kept texts for Self-Instruct's novelty rule: keep a text if its
    ROUGE-L against every kept text is <= `threshold`.

    `add(text)` keeps a text unconditionally (the seed pool); `max_score(text)` gives its highest
    ROUGE-L against the kept texts and the index (in `add` order) of the most similar; `offer(text)`
    keeps it if that is <= threshold and returns (kept, score, index). See the module docstring for
    what is exact: the score is rouge-score's maximum whenever it is >= `floor` (default: the
    threshold), else some value below `floor`. A lower `floor` gives exact scores further down at
    the cost of more LCS computations (0 makes every score exact).

    >>> index = RougeNovelty(threshold=0.7)
    >>> index.add("Write a poem about the sea.")
    0
    >>> index.offer("Write a short poem about the sea.")
    (False, 0.923076923076923, 0)
    >>> index.offer("Write a poem about the moon.")  # lcs 5, 6 and 6 tokens: 0.833 > 0.7
    (False, 0.8333333333333334, 0)
    >>> index.max_score("Write a story about a dragon.", floor=0)  # floor 0: always exact
    (0.5, 0)
    >>> index.offer("Write a story about a dragon.")  # 0.5 is below the floor (0.7): not computed
    (True, 0.0, None)
    >>> len(index), index.max_score("Write a story about a dragon.")
    (2, (1.0, 1))
    """

    def __init__(self, threshold: float = 0.7, floor: float | None = None):
        if not 0 <= threshold <= 1:
            raise ValueError(f"rouge_novelty: threshold is a ROUGE-L F-measure in [0, 1], got {threshold}")
        floor = threshold if floor is None else floor
        if not 0 <= floor <= threshold:
            raise ValueError(f"rouge_novelty: floor must be in [0, threshold={threshold}], got {floor}")
        self.threshold = threshold
        self.floor = floor
        self._vocab: dict[str, int] = {}
        self._tokens: list[tuple[int, ...]] = []
        self._lengths = array("i")
        self._postings: dict[tuple[int, int], array] = {}

    def __len__(self) -> int:
        return len(self._tokens)

    def _ids(self, text: str, grow: bool) -> list[int]:
        vocab = self._vocab
        if grow:
            return [vocab.setdefault(t, len(vocab)) for t in rouge_tokens(text)]
        return [vocab.get(t, -1) for t in rouge_tokens(text)]  # -1: a token no kept text has

    def _add_ids(self, ids: list[int]) -> int:
        i = len(self._tokens)
        self._tokens.append(tuple(ids))
        self._lengths.append(len(ids))
        seen: dict[int, int] = {}
        postings = self._postings
        for t in ids:
            k = seen[t] = seen.get(t, 0) + 1
            lst = postings.get((t, k))
            if lst is None:
                lst = postings[(t, k)] = array("i")
            lst.append(i)
        return i

    def add(self, text: str) -> int:
        """Keep `text` whatever its score; returns its index."""
        return self._add_ids(self._ids(text, grow=True))

    def _query(self, ids: list[int], floor: float) -> tuple[float, int | None]:
        m = len(ids)
        if not m or not self._tokens:
            return 0.0, None
        seen: dict[int, int] = {}
        lists = []
        for t in ids:
            k = seen[t] = seen.get(t, 0) + 1
            lst = self._postings.get((t, k))
            if lst is not None:
                lists.append(np.frombuffer(lst, dtype=np.intc))
        if not lists:
            return 0.0, None
        counts = np.bincount(np.concatenate(lists))
        del lists  # release the buffers, so the arrays can grow again
        cand = np.flatnonzero(counts)
        overlap = counts[cand]
        lengths = np.frombuffer(self._lengths, dtype=np.intc)[cand]
        bound = 2.0 * np.minimum(overlap, lengths) / (m + lengths)
        cut = floor * (1 - _MARGIN)
        if cut > 0:
            ok = bound >= cut
            cand, bound, lengths = cand[ok], bound[ok], lengths[ok]
            if not len(cand):
                return 0.0, None
        masks = _match_masks(ids)
        full = (1 << m) - 1
        best, best_i = 0.0, None
        tokens = self._tokens
        # Highest bounds first: the _FIRST best bounds, then (if none of them stopped the walk) the
        # rest whose bound can still reach max(best, floor): usually few once a good match is found.
        rest = None
        if len(cand) > _FIRST:
            top = np.argpartition(-bound, _FIRST - 1)[:_FIRST]
            rest = np.ones(len(cand), dtype=bool)
            rest[top] = False
            stages = [top]
        else:
            stages = [np.arange(len(cand))]
        while stages:
            sel = stages.pop()
            c, b, n = cand[sel], bound[sel], lengths[sel]
            order = np.lexsort((c, -b))
            stopped = False
            for i, bi, ni in zip(c[order].tolist(), b[order].tolist(), n[order].tolist()):
                if bi < max(best, floor) * (1 - _MARGIN):
                    stopped = True
                    break
                f = _fmeasure(_lcs_bits(masks, full, m, tokens[i]), m, ni)
                if f > best or (f == best and best_i is not None and i < best_i):
                    best, best_i = f, i
            if rest is not None and not stopped:
                sel = np.flatnonzero(rest & (bound >= max(best, floor) * (1 - _MARGIN)))
                rest = None
                if len(sel):
                    stages.append(sel)
        return best, best_i

    def max_score(self, text: str, floor: float | None = None) -> tuple[float, int | None]:
        """(highest ROUGE-L of `text` against the kept texts, index of that kept text or None).

        Exact (rouge-score's `max(_score_lcs(new, old).fmeasure)`) when that maximum is >= `floor`
        (default: the index's floor); otherwise a value below `floor`. Index None when the score is
        0.0 (nothing kept, no token shared, or an empty text)."""
        return self._query(self._ids(text, grow=False), self.floor if floor is None else floor)

    def offer(self, text: str) -> tuple[bool, float, int | None]:
        """Self-Instruct's rule: keep `text` (and add it) if its highest ROUGE-L against the kept
        texts is <= threshold. Returns (kept, score, index of the most similar kept text)."""
        ids = self._ids(text, grow=False)
        score, nearest = self._query(ids, self.floor)
        kept = score <= self.threshold
        if kept:
            self._add_ids(self._ids(text, grow=True) if -1 in ids else ids)
        return kept, score, nearest


def novel(candidates: Iterable[str], pool: Iterable[str] = (), threshold: float = 0.7,
          floor: float | None = None) -> list[tuple[bool, float, int | None]]:
    """The greedy Self-Instruct filter: each candidate, in order, against `pool` plus the candidates
    kept before it; kept if its highest ROUGE-L is <= `threshold`. Returns one
    (kept, score, nearest) per candidate; `nearest` indexes `[*pool, *candidates]`. Scores are exact
    when >= `floor` (default: the threshold; see `RougeNovelty`).

    >>> novel(["Name three birds.", "Name three birds please."], pool=["Name three fish."])
    [(True, 0.0, None), (False, 0.8571428571428571, 1)]
    >>> novel(["Name three birds.", "Name three birds please."], pool=["Name three fish."], floor=0)
    [(True, 0.6666666666666666, 0), (False, 0.8571428571428571, 1)]
    """
    index = RougeNovelty(threshold, floor)
    origin: list[int] = []
    for text in pool:
        index.add(text)
        origin.append(len(origin))
    base = len(origin)
    out = []
    for j, text in enumerate(candidates):
        kept, score, nearest = index.offer(text)
        if kept:
            origin.append(base + j)
        out.append((kept, score, None if nearest is None else origin[nearest]))
    return out


@dataclass
class RougeNoveltyCheck(Check):
    """Self-Instruct's novelty filter: flags a row whose ROUGE-L F-measure (rouge-score's, tokens
    without stemming) with a real row (when `include_real`) or with an earlier kept row is above
    `threshold` (0.7). Rows are walked in dataset order, so the same input keeps the same rows; the
    decisions are exactly rouge-score's. `rouge_novelty_score` is the row's highest ROUGE-L against
    the real rows and the earlier kept rows, exactly as rouge-score computes it (`floor=0`: every
    score exact, kept rows' too). Texts without a token (empty, missing, only punctuation or
    non-ASCII letters) score 0.0 against everything: kept, as rouge-score would keep them."""

    threshold: float = 0.7
    include_real: bool = True
    column: str | None = None
    reference: tuple[str, ...] | None = field(default=None, metadata={"report": False})
    name = "rouge_novelty"
    family = "duplicates"
    whole_column = True

    def __post_init__(self):
        if not 0 <= self.threshold <= 1:
            raise ValueError(f"rouge_novelty: threshold is a ROUGE-L F-measure in [0, 1], got {self.threshold}")

    @property
    def needs(self) -> tuple[str, ...]:
        return ("real_texts",) if self.include_real else ()

    def bind(self, context):
        out = super().bind(context)
        if out.include_real and out.reference is None:
            return replace(out, reference=tuple(context.require("real_texts", self.name)))
        return out

    def flag_batch(self, batch):
        if self.include_real and self.reference is None:
            raise ValueError("check rouge_novelty needs the real rows: RougeNoveltyCheck(reference=[...]), "
                             "bind(context), or include_real=False")
        pool = [t or "" for t in self.reference or ()] if self.include_real else []
        results = novel([t or "" for t in batch[self.text_col]], pool=pool, threshold=self.threshold, floor=0.0)
        return {f"{self.name}_score": [s for _, s, _ in results], self.flag_column: [not k for k, _, _ in results]}
