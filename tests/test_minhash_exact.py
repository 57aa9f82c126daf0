"""The numpy MinHash-LSH against plain-Python references: each fast path gives exactly what the
straightforward computation gives (normalised bytes, shingle hashes, signatures, LSH buckets, exact
Jaccard), and near-duplicate flags on real banking77 messages match brute force and the flags of the
implementation before the 2026-11-30 speed-up, row for row."""

from __future__ import annotations

import csv
import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pytest

from synth_datasets.checks import minhash
from synth_datasets.checks.base import normalize_text
from synth_datasets.checks.minhash import (_candidates, _distinct, _exact_jaccard, _mix, _shingle_values,
                                           near_duplicates, nearest_in, normalized_buffer, optimal_bands, permutations,
                                           shingle_hashes, shingles, signatures, signatures_of)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"


def banking() -> list[str]:
    texts = []
    for split in ("train", "test"):
        with open(DATA / f"{split}.csv", newline="") as f:
            texts += [r["text"] for r in csv.DictReader(f)]
    return texts


def odd_texts(count: int, seed: int = 0) -> list[str | None]:
    """Separators everywhere: control characters, runs of punctuation and whitespace at either
    end, accents, characters that NFKD turns into upper-case ASCII, empty and missing texts."""
    rng = random.Random(seed)
    alphabet = [chr(c) for c in range(128)] + list("éÉüßøŁ€£½ℌ℡ﬁ\u0301\u00a0\u2003中文🙂")
    alphabet += ["ab", "Card", "  ", "?!"]
    texts: list[str | None] = [None, "", " ", "?!", "a", "ab", "abcd", "abcde", "\x00x\x00", "℡", "x" * 3000]
    for _ in range(count):
        texts.append("".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40))))
    return texts


def reference_hashes(texts, ngram: int = 5) -> tuple[list[int], list[int]]:
    """Char n-gram hashes the slow way: normalise, encode, fold each n-gram's bytes, mix."""
    hashes, counts = [], []
    for t in texts:
        raw = normalize_text(t).encode() if t else b""
        grams = [raw[i:i + ngram] for i in range(max(len(raw) - ngram + 1, 1))] if raw else []
        counts.append(len(grams))
        for g in grams:
            value = int.from_bytes(g.ljust(ngram, b"\0"), "big")
            hashes.append(int(_mix(np.array([value ^ ngram], dtype=np.uint64))[0]))
    return hashes, counts


def reference_signatures(hashes: np.ndarray, counts, num_perm: int = 128, seed: int = 1) -> np.ndarray:
    a, b = permutations(num_perm, seed)
    out = np.full((len(counts), num_perm), minhash.EMPTY, dtype=np.uint64)
    at = 0
    with np.errstate(over="ignore"):
        for row, count in enumerate(counts):
            if count:
                h = hashes[at:at + count]
                out[row] = ((h[:, None] * a + b) >> np.uint64(32)).min(axis=0)
            at += count
    return out


def reference_pairs(sigs: np.ndarray, bands: int, rows: int, max_bucket: int = 1000) -> set[tuple[int, int]]:
    pairs = set()
    for band in range(bands):
        buckets: dict[tuple, list[int]] = {}
        for i in range(len(sigs)):
            if sigs[i, 0] != minhash.EMPTY:
                buckets.setdefault(tuple(sigs[i, band * rows:(band + 1) * rows].tolist()), []).append(i)
        for members in buckets.values():
            pairs.update((members[x], members[y]) for y in range(1, len(members)) for x in range(min(y, max_bucket)))
    return pairs


def test_normalized_buffer_is_normalize_text_byte_for_byte():
    texts = banking() + odd_texts(3000)
    buf, lengths = normalized_buffer(texts)
    expected = [normalize_text(t).encode() if t else b"" for t in texts]
    assert lengths.tolist() == [len(e) for e in expected]
    assert bytes(buf) == b"".join(expected)
    for edge in (["a", "£"], ["£"], ["£", None, "", "€ ", "b"], ["ÉÉ", "£"], [], [None, ""]):  # empty last
        buf, lengths = normalized_buffer(edge)
        assert bytes(buf) == b"".join(normalize_text(t).encode() if t else b"" for t in edge)
        assert lengths.tolist() == [len(normalize_text(t).encode()) if t else 0 for t in edge]
    ascii_only = [t for t in odd_texts(2000, seed=1) if t is None or t.isascii()]
    buf, lengths = normalized_buffer(ascii_only)  # the all-ASCII path on its own
    assert bytes(buf) == b"".join(normalize_text(t).encode() if t else b"" for t in ascii_only)


@pytest.mark.parametrize("ngram", [1, 3, 5, 8])
def test_char_shingle_hashes_match_the_slow_definition(ngram):
    texts = banking()[:300] + odd_texts(300)
    hashes, counts = shingle_hashes(texts, ngram=ngram)
    ref_hashes, ref_counts = reference_hashes(texts, ngram)
    assert counts.tolist() == ref_counts
    assert hashes.tolist() == ref_hashes
    for t, (lo, n) in zip(texts[:50], zip(np.cumsum(counts) - counts, counts)):  # the sets `shingles` reads
        assert len(set(hashes[lo:lo + n].tolist())) == len(shingles(t, ngram=ngram))


@pytest.mark.parametrize("paths", [{}, {"TABLE_MAX_SHARE": 0.0}, {"TABLE_MAX_SHARE": 1.0, "TABLE_BLOCK_ROWS": 7},
                                   {"CHUNK_SHINGLES": 500, "STREAM_BLOCK": 64}, {"TABLE_MAX_ROWS": 300}])
def test_signatures_match_the_plain_minimum_on_every_path(monkeypatch, paths):
    """Default, forced streaming, forced table with tiny blocks (long texts in slices), tiny chunks,
    tables too big (chunks halved until they fit or are one text)."""
    for name, value in paths.items():
        monkeypatch.setattr(minhash, name, value)
    texts = banking()[:400] + odd_texts(200) + ["word " * 400]
    hashes, counts = shingle_hashes(texts)
    expected = reference_signatures(hashes, counts)
    assert np.array_equal(signatures_of(hashes, counts), expected)
    assert np.array_equal(signatures(texts), expected)
    words, word_counts = shingle_hashes(texts, ngram=2, unit="word")
    assert np.array_equal(signatures(texts, ngram=2, unit="word"), reference_signatures(words, word_counts))


def test_candidate_pairs_match_dict_buckets_also_when_keys_collide(monkeypatch):
    texts = banking()[:1500] + ["Where is my new card?"] * 30 + [None, ""]
    sigs = signatures(texts)
    for threshold in (0.5, 0.8):
        bands, rows = optimal_bands(threshold, 128)
        assert minhash.candidate_pairs(sigs, bands, rows) == reference_pairs(sigs, bands, rows)
    assert minhash.candidate_pairs(sigs, 21, 6, max_bucket=4) == reference_pairs(sigs, 21, 6, max_bucket=4)
    first, second = _candidates(sigs, np.flatnonzero(sigs[:, 0] != minhash.EMPTY), 21, 6)
    assert np.all(np.diff(second * len(sigs) + first) > 0)  # sorted by the later row, then the earlier one
    # every band key the same: each band is regrouped by its actual values (uint64 and packed uint32 paths)
    monkeypatch.setattr(minhash, "_BAND_MULTIPLIERS", np.zeros(1024, dtype=np.uint64))
    assert minhash.candidate_pairs(sigs, 21, 6) == reference_pairs(sigs, 21, 6)
    nonempty = np.flatnonzero(sigs[:, 0] != minhash.EMPTY)
    first, second = _candidates(sigs.astype(np.uint32), nonempty, 21, 6)
    assert set(zip(first.tolist(), second.tolist())) == reference_pairs(sigs, 21, 6)
    monkeypatch.setattr(minhash, "PAIR_BUDGET", 100)  # pairs generated and merged piece by piece
    assert minhash.candidate_pairs(sigs, 21, 6, max_bucket=7) == reference_pairs(sigs, 21, 6, max_bucket=7)


def test_distinct_values_and_exact_jaccard_match_python_sets(monkeypatch):
    rng = np.random.default_rng(0)
    hashed = rng.integers(0, 1 << 63, 5000, dtype=np.uint64)
    high = np.uint64(1 << 60)
    clash = np.array([high + np.uint64(1), high + np.uint64(2), high + np.uint64(1)], dtype=np.uint64)  # one high part
    for values, bits in ((rng.integers(0, 1 << 40, 5000, dtype=np.uint64), 40), (hashed, 64),
                         (np.concatenate([hashed[:10], hashed[:10], clash]), 64)):
        for canonical in (False, True):
            distinct, ids, where = _distinct(values, bits, canonical)
            assert np.array_equal(distinct[ids], values) and np.array_equal(values[where], distinct)
            if canonical:
                assert len(np.unique(distinct)) == len(distinct)
    texts = banking()[:500]
    values, counts, _ = _shingle_values(texts, 5, "char")
    starts = np.cumsum(counts) - counts
    first = rng.integers(0, 250, 400)
    second = rng.integers(250, 500, 400)
    for vals, bits in ((values, 40), (_mix(values), 64)):
        sets = [set(vals[s:s + c].tolist()) for s, c in zip(starts, counts)]
        expected = [len(sets[i] & sets[j]) / len(sets[i] | sets[j]) for i, j in zip(first, second)]
        assert _exact_jaccard(vals, counts, first, second, bits).tolist() == expected
    monkeypatch.setattr(minhash, "PAIR_BUDGET", 1000)
    assert _exact_jaccard(values, counts, first, second, 40).tolist() == expected


def test_near_duplicates_equal_brute_force_on_real_messages():
    texts = banking()[:2000]
    sets = [shingles(t) for t in texts]
    truth, kept = [], []
    for j, s in enumerate(sets):
        dup = any(len(s & sets[i]) / len(s | sets[i]) >= 0.8 for i in kept)
        truth.append(dup)
        if not dup:
            kept.append(j)
    flags, best, of = near_duplicates(texts, 0.8)
    assert sum(truth) >= 20 and flags == truth
    for j in range(len(texts)):
        if flags[j]:
            s, r = sets[j], sets[of[j]]
            assert of[j] < j and not flags[of[j]] and best[j] >= len(s & r) / len(s | r) >= 0.8


def test_flags_on_all_of_banking77_are_those_of_the_code_before_the_speed_up():
    """sha1 of the flags, of the kept row each repeats and of the best similarities, recorded with the
    implementation before 2026-11-30 (per-permutation passes over all shingles, sets in Python)."""
    texts = banking()
    assert len(texts) == 13_083

    def digest(x):
        return hashlib.sha1(json.dumps(x).encode()).hexdigest()

    flags, best, of = near_duplicates(texts, 0.8)
    assert sum(flags) == 345
    assert hashlib.sha1(bytes(flags)).hexdigest() == "80629673950265267e6fe212c2328af24fb94052"
    assert digest(of) == "a109496f5d31d5dff4987280f022088fc89d18af"
    assert digest(best) == "3779e107c35489bff76c9ac2c732a20ce300987d"
    flags, best, of = near_duplicates(texts, 0.7)
    assert sum(flags) == 889
    assert hashlib.sha1(bytes(flags)).hexdigest() == "e5e44f9f676ad08c87a2bda5551a7f9d4329b04e"
    assert digest(of) == "4127f6f626d3c17c66f8eb997149899eb61dac93"


def test_nearest_in_matches_exact_jaccard_of_its_candidates():
    texts = banking()
    reference, queries = texts[:3000], texts[3000:3600] + [None, ""]
    best, of = nearest_in(queries, reference, 0.5)
    for q, b, i in zip(queries, best, of):
        if i is not None:
            s, r = shingles(q), shingles(reference[i])
            assert b == len(s & r) / len(s | r)
        else:
            assert b == 0.0
    assert sum(i is not None for i in of) >= 30
