"""MinHash signatures and LSH banding in numpy: near-duplicate candidates for whole columns at once.

Signatures are computed for thousands of rows per numpy call instead of one Python call per
shingle (what `datasketch.MinHash.update` does), which is where the speed comes from; see
`benchmarks/near_dedup.py` and docs/benchmarks.md for the measurement against datasketch and rensa.

- shingles: byte n-grams of the normalised UTF-8 text, or word n-grams (words hashed with xxh3),
  read out of one buffer for all rows and mixed to 64 bits (stable across processes and machines,
  unlike Python's salted `hash`);
- permutations: multiply-add-shift hashing, `(a * x + b) mod 2**64`, top 32 bits, one (a, b) pair
  per permutation from a seeded generator; the minimum per row is one `np.minimum.reduceat`;
- banding: `bands x rows <= num_perm`, chosen so that a pair at the threshold is a candidate with
  probability >= 0.99, with the fewest false candidates below it; candidate pairs share a band,
  those whose signature estimate is within reach of the threshold are confirmed on their exact
  shingle sets, so a flagged pair really is above the threshold.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np
import xxhash

from .basic import normalize_text

EMPTY = np.uint64(1 << 32)  # the signature of a text with no shingles: above every 32-bit hash value
RECALL = 0.99  # chance that a pair exactly at the threshold becomes a candidate (see optimal_bands)
# Candidates whose signature estimate is this far below the threshold are not compared exactly:
# 0.12 is over 3 standard deviations of a 128-permutation estimate near the usual thresholds.
ESTIMATE_SLACK = 0.12


def shingles(text: str | None, ngram: int = 5, unit: str = "char") -> set[bytes]:
    """The n-grams of the normalised text as bytes, the same units `shingle_hashes` reads (UTF-8
    bytes for "char", words for "word"), for reading, tests and the benchmarks. A text shorter
    than n is one shingle.

    >>> sorted(shingles("Where is my card", ngram=2, unit="word"))
    [b'is my', b'my card', b'where is']
    """
    norm = normalize_text(text or "")
    if unit == "word":
        words = norm.split()
        if not words:
            return set()
        if len(words) <= ngram:
            return {norm.encode()}
        return {" ".join(words[i:i + ngram]).encode() for i in range(len(words) - ngram + 1)}
    raw = norm.encode()
    if not raw:
        return set()
    if len(raw) <= ngram:
        return {raw}
    return {raw[i:i + ngram] for i in range(len(raw) - ngram + 1)}


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Multiply-add-shift hash functions: h(x) = (a * x + b) mod 2**64, high 32 bits; a odd."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 1 << 63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 1 << 63, size=num_perm, dtype=np.uint64)
    return a, b


def shingle_hashes(texts: Sequence[str | None], ngram: int = 5, unit: str = "char") -> tuple[np.ndarray, np.ndarray]:
    """(hashes, counts): one uint64 per shingle occurrence, grouped by text, and how many each text has.

    char: byte n-grams (n <= 8) of the normalised UTF-8 text, read straight out of one byte buffer;
    word: n consecutive word hashes (xxh3) combined. A shingle repeated in a text is hashed twice,
    which does not change a minimum. A text shorter than n is one shingle; an empty one has none."""
    norms = [normalize_text(t) if t else "" for t in texts]
    if unit == "char":
        if not 1 <= ngram <= 8:
            raise ValueError(f"near_dedup: character n-grams need 1 <= ngram <= 8, got {ngram}")
        encoded = [t.encode() for t in norms]
        lengths = np.array([len(e) for e in encoded], dtype=np.int64)
        buffer = np.frombuffer(b"".join(encoded) + bytes(ngram), dtype=np.uint8).astype(np.uint64)
    elif unit == "word":
        tokens = [t.split() for t in norms]
        lengths = np.array([len(w) for w in tokens], dtype=np.int64)
        buffer = np.fromiter((xxhash.xxh3_64_intdigest(w.encode()) for ws in tokens for w in ws), dtype=np.uint64,
                             count=int(lengths.sum()))
        buffer = np.concatenate([buffer, np.zeros(ngram, np.uint64)])
    else:
        raise ValueError(f"near_dedup: unit must be char or word, got {unit!r}")
    counts = np.where(lengths > 0, np.maximum(lengths - ngram + 1, 1), 0)
    starts_of_text = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    owner = np.repeat(np.arange(len(lengths)), counts)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = starts_of_text[owner] + (np.arange(int(counts.sum())) - first[owner])
    value = np.zeros(len(pos), dtype=np.uint64)
    span = lengths[owner]
    for k in range(ngram):  # shorter texts stop at their own end
        part = np.where(k < span, buffer[pos + k], np.uint64(0))
        if unit == "char":
            value = (value << np.uint64(8)) | part
        else:
            value = _mix(value ^ part)
    return _mix(value ^ np.uint64(ngram)), counts


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads bits so that near-equal shingles get unrelated hashes."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def signatures(texts: Sequence[str | None], num_perm: int = 128, ngram: int = 5, unit: str = "char",
               seed: int = 1) -> np.ndarray:
    """(len(texts), num_perm) MinHash signatures (uint64 holding 32-bit values); a missing or empty
    text gets EMPTY everywhere and is never anyone's near-duplicate."""
    return signatures_of(*shingle_hashes(texts, ngram, unit), num_perm=num_perm, seed=seed)


def signatures_of(hashes: np.ndarray, counts: np.ndarray, num_perm: int = 128, seed: int = 1) -> np.ndarray:
    a, b = permutations(num_perm, seed)
    out = np.full((len(counts), num_perm), EMPTY, dtype=np.uint64)
    nonempty = np.flatnonzero(counts)
    if len(nonempty):
        offsets = np.concatenate([[0], np.cumsum(counts[nonempty])[:-1]])
        shift = np.uint64(32)
        with np.errstate(over="ignore"):
            for p in range(num_perm):
                out[nonempty, p] = np.minimum.reduceat((hashes * a[p] + b[p]) >> shift, offsets)
    return out


def optimal_bands(threshold: float, num_perm: int, recall: float = RECALL) -> tuple[int, int]:
    """(bands, rows), bands * rows <= num_perm, that make a pair at exactly `threshold` a candidate
    with probability >= `recall` (1 - (1 - t**rows)**bands), with the fewest false candidates below
    the threshold (the integral of the S-curve from 0 to threshold). Candidates are confirmed
    exactly afterwards, so a false candidate costs a comparison, a missed one a missed duplicate."""
    trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz
    s_low = np.linspace(0.0, threshold, 201)
    best, best_cost = (num_perm, 1), float("inf")
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if 1 - (1 - threshold ** rows) ** bands < recall:
            continue
        cost = trapezoid(1 - (1 - s_low ** rows) ** bands, s_low)
        if cost < best_cost:
            best, best_cost = (bands, rows), cost
    return best


def candidate_pairs(sigs: np.ndarray, bands: int, rows: int, max_bucket: int = 1000) -> set[tuple[int, int]]:
    """(i, j), i < j, for rows that agree on every value of at least one band (EMPTY rows excluded).
    In a bucket larger than `max_bucket`, each row is paired with the bucket's first `max_bucket`
    rows only, so a pathological input (thousands of identical rows) stays linear in its size."""
    pairs: set[tuple[int, int]] = set()
    index = np.flatnonzero(sigs[:, 0] != EMPTY)
    for band in range(bands):
        chunk = np.ascontiguousarray(sigs[index, band * rows:(band + 1) * rows])
        keys = chunk.view(np.dtype((np.void, chunk.dtype.itemsize * rows))).ravel()
        _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        shared = counts[inverse] > 1
        if not shared.any():
            continue
        members_sorted = index[shared][np.argsort(inverse[shared], kind="stable")]
        group_sizes = counts[counts > 1]
        start = 0
        for size in group_sizes:
            members = members_sorted[start:start + size].tolist()
            start += size
            # every member against every earlier member, or, in a huge bucket (thousands of rows
            # sharing a band, e.g. copies of one text), against the bucket's first `max_bucket` ones
            pairs.update((members[x], members[y]) for y in range(1, size) for x in range(min(y, max_bucket)))
    return pairs


def near_duplicates(texts: Sequence[str | None], threshold: float = 0.8, num_perm: int = 128, ngram: int = 5,
                    unit: str = "char", seed: int = 1, verify: str = "exact"
                    ) -> tuple[list[bool], list[float], list[int | None]]:
    """Greedy in row order: a row is flagged when its Jaccard similarity with an earlier *kept* row is
    >= threshold. Returns (flag, best similarity to an earlier row found, index of the kept row it repeats).

    LSH banding (tuned so that a pair at the threshold is a candidate with probability >= 0.99) picks
    the candidate pairs; each whose signature estimate is within ESTIMATE_SLACK of the threshold is
    then confirmed on its exact shingle sets (verify="exact", the default: no false positives) or
    taken on the estimate (verify="estimate"). Deterministic:
    the same rows in the same order give the same flags."""
    if verify not in ("exact", "estimate"):
        raise ValueError(f"near_dedup: verify must be exact or estimate, got {verify!r}")
    hashes, counts = shingle_hashes(texts, ngram, unit)
    sigs = signatures_of(hashes, counts, num_perm=num_perm, seed=seed)
    bands, rows = optimal_bands(threshold, num_perm)
    earlier: dict[int, list[int]] = defaultdict(list)
    for i, j in candidate_pairs(sigs, bands, rows):
        earlier[j].append(i)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sets: dict[int, set] = {}

    def shingle_set(i: int) -> set:
        if i not in sets:
            sets[i] = set(hashes[starts[i]:starts[i] + counts[i]].tolist())
        return sets[i]

    n = len(counts)
    flags, best, of = [False] * n, [0.0] * n, [None] * n
    for j in sorted(earlier):
        cands = sorted(earlier[j])
        if verify == "exact":  # only candidates whose estimate is within reach (3+ sd at 128 permutations)
            estimate = (sigs[cands] == sigs[j]).mean(axis=1)
            cands = [i for i, e in zip(cands, estimate.tolist()) if e >= threshold - ESTIMATE_SLACK]
            sims = [len(shingle_set(i) & shingle_set(j)) / len(shingle_set(i) | shingle_set(j)) for i in cands]
        else:
            sims = (sigs[cands] == sigs[j]).mean(axis=1).tolist()
        for i, sim in zip(cands, sims):
            best[j] = max(best[j], sim)
            if sim >= threshold and not flags[i] and of[j] is None:
                flags[j], of[j] = True, i
    return flags, best, of


def nearest_in(texts: Sequence[str | None], reference: Sequence[str | None], threshold: float = 0.5,
               num_perm: int = 128, ngram: int = 5, unit: str = "char", seed: int = 1
               ) -> tuple[list[float], list[int | None]]:
    """For each text, the highest exact Jaccard similarity to a reference text among the LSH
    candidates for `threshold` (so values well below it read as 0.0), and that reference's index."""
    m = len(reference)
    hashes, counts = shingle_hashes(list(reference) + list(texts), ngram, unit)  # references first: in a
    sigs = signatures_of(hashes, counts, num_perm=num_perm, seed=seed)           # huge bucket they lead
    bands, rows = optimal_bands(threshold, num_perm)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])

    def shingle_set(i: int) -> set:
        return set(hashes[starts[i]:starts[i] + counts[i]].tolist())

    n = len(texts)
    best, of = [0.0] * n, [None] * n
    cross: dict[int, list[int]] = defaultdict(list)
    for i, j in candidate_pairs(sigs, bands, rows):
        if i < m <= j:
            cross[j].append(i)
    for j, refs in cross.items():
        refs = sorted(refs)
        estimate = (sigs[refs] == sigs[j]).mean(axis=1)
        refs = [i for i, e in zip(refs, estimate.tolist()) if e >= threshold - ESTIMATE_SLACK]
        if not refs:
            continue
        mine = shingle_set(j)
        for i in refs:
            other = shingle_set(i)
            sim = len(mine & other) / len(mine | other)
            if sim > best[j - m]:
                best[j - m], of[j - m] = sim, i
    return best, of
