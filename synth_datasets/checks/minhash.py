"""MinHash signatures and LSH banding in numpy: near-duplicate candidates for whole columns at once.

Everything runs as a few numpy calls over all rows at once, never one Python call per shingle (what
`datasketch.MinHash.update` does); see `benchmarks/near_dedup.py` and docs/benchmarks.md for the
measurement against datasketch and rensa, and tests/test_minhash_exact.py for each fast path held
against the plain computation.

- shingles: byte n-grams of the normalised UTF-8 text, or word n-grams (words hashed with xxh3),
  read out of one buffer for all rows and mixed to 64 bits (stable across processes and machines,
  unlike Python's salted `hash`). For ASCII text the normalisation itself is done on that buffer
  (one byte table and a few masks), with exactly `normalize_text`'s result;
- permutations: multiply-add-shift hashing, `(a * x + b) mod 2**64`, top 32 bits, one (a, b) pair
  per permutation from a seeded generator. Real text repeats most of its character n-grams across
  rows (13,083 banking77 messages: 692k 5-grams, 27k distinct), so each distinct shingle is
  permuted once, into a table of distinct shingles x permutations, and a row's signature is the
  minimum of its shingles' table rows, gathered in blocks that stay in the CPU's L2 cache. For char
  n-grams the rows are first combined per window of 2-4 consecutive n-grams (the windows repeat
  too), so a text gathers a third as many rows. Where shingles barely repeat, the permutations run
  over the shingle occurrences instead, also in cache-sized blocks. All give the same values;
- banding: `bands x rows <= num_perm`, chosen so that a pair at the threshold is a candidate with
  probability >= 0.99, with the fewest false candidates below it; candidate pairs share a band
  (grouped by one sort per band, exactly), those whose signature estimate is within reach of the
  threshold are confirmed on their exact shingle sets (sorted ids, counted in numpy), so a flagged
  pair really is above it.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Sequence

import numpy as np
import xxhash

from .basic import normalize_text

EMPTY = np.uint64(1 << 32)  # the signature of a text with no shingles: above every 32-bit hash value
RECALL = 0.99  # chance that a pair exactly at the threshold becomes a candidate (see optimal_bands)
# Candidates whose signature estimate is this far below the threshold are not compared exactly:
# 0.12 is over 3 standard deviations of a 128-permutation estimate near the usual thresholds.
ESTIMATE_SLACK = 0.12

# Sizes chosen for speed only (results do not depend on them): shingle occurrences per chunk of
# rows, the most distinct shingles (or windows) in one table (64 MiB at 128 permutations; a chunk
# with more is halved), table rows gathered per block and occurrences per streamed block (both
# sized to stay in a 1-2 MiB L2 cache), and the share of distinct shingles above which permuting
# every occurrence is cheaper than the table.
CHUNK_SHINGLES = 1 << 20
TABLE_MAX_ROWS = 1 << 17
TABLE_BLOCK_ROWS = 512
STREAM_BLOCK = 1 << 15
TABLE_MAX_SHARE = 0.25
PAIR_BUDGET = 1 << 22  # candidate pairs generated at once before merging (bounds memory on huge buckets)


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


def _ascii_table() -> bytes:
    """What `normalize_text` does to each ASCII character, read off `normalize_text` itself: the
    lower-case character, or a space for a separator (punctuation, whitespace, control characters).
    Bytes >= 128 map to themselves (they only occur in texts normalised one by one)."""
    table = bytearray(range(256))
    for c in range(128):
        out = normalize_text(f"x{chr(c)}x")
        if out == "x x":
            table[c] = 32
        elif len(out) == 3 and out[0] == out[2] == "x" and out[1].isascii() and out[1] != " ":
            table[c] = ord(out[1])
        else:  # normalize_text is no longer one character at a time: the buffer path would be wrong
            raise AssertionError(f"normalize_text maps {chr(c)!r} to {out[1:-1]!r}")
    return bytes(table)


_ASCII = _ascii_table()


def normalized_buffer(texts: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """(bytes, lengths): the UTF-8 bytes of `normalize_text(t)` for every text, back to back in one
    uint8 array, and each one's length; a missing text is empty.

    ASCII texts are normalised on the buffer: lower case and separators from one byte table, then a
    separator is kept, as a space, only right after a word character of the same text, and a space
    left at a text's end is dropped. Texts with other characters (accents to strip) go through
    `normalize_text` one by one. Both give exactly `normalize_text`'s bytes.

    >>> buf, lengths = normalized_buffer(["  Where is  MY card?! ", None, "Café, s'il vous plaît"])
    >>> bytes(buf).decode(), lengths.tolist()
    ('where is my cardcafe s il vous plait', [16, 0, 20])
    """
    raw = [t if t else "" for t in texts]
    joined = "".join(raw)
    others = []
    if not joined.isascii():
        others = [i for i, t in enumerate(raw) if not t.isascii()]
        for i in others:
            raw[i] = normalize_text(raw[i])
        joined = "".join(raw)
    data = joined.encode()
    lengths = np.fromiter(map(len, raw), dtype=np.int64, count=len(raw))
    if others:
        lengths[others] = [len(raw[i].encode()) for i in others]
    if not data:
        return np.zeros(0, dtype=np.uint8), lengths
    mapped = np.frombuffer(bytearray(data.translate(_ASCII)), dtype=np.uint8)
    word = mapped != 32
    ends = np.cumsum(lengths)
    for i in others:  # texts normalised one by one are kept byte for byte
        mapped[ends[i] - lengths[i]:ends[i]] = np.frombuffer(data, dtype=np.uint8, count=lengths[i],
                                                              offset=ends[i] - lengths[i])
        word[ends[i] - lengths[i]:ends[i]] = True
    nonempty = lengths > 0
    starts = (ends - lengths)[nonempty]
    keep = word.copy()
    keep[1:] |= word[:-1]  # a word character, or the first separator after one ...
    keep[starts] = word[starts]  # ... in the same text
    kept = np.zeros(len(raw), dtype=np.int64)
    kept[nonempty] = np.add.reduceat(keep.view(np.uint8), starts, dtype=np.int64)
    # a text ending in separators after a word kept the first of them: the one space to drop
    trailing = np.zeros(len(raw), dtype=bool)
    trailing[nonempty] = (mapped[ends[nonempty] - 1] == 32) & (kept[nonempty] > 0)
    out = mapped[keep]
    if trailing.any():
        last = np.ones(len(out), dtype=bool)
        last[np.cumsum(kept)[trailing] - 1] = False
        out = out[last]
    return out, kept - trailing


def shingle_hashes(texts: Sequence[str | None], ngram: int = 5, unit: str = "char") -> tuple[np.ndarray, np.ndarray]:
    """(hashes, counts): one uint64 per shingle occurrence, grouped by text, and how many each text has.

    char: byte n-grams (n <= 8) of the normalised UTF-8 text, read straight out of one byte buffer;
    word: n consecutive word hashes (xxh3) combined. A shingle repeated in a text is hashed twice,
    which does not change a minimum. A text shorter than n is one shingle; an empty one has none."""
    values, counts, raw = _shingle_values(texts, ngram, unit)
    return (_mix(values ^ np.uint64(ngram)) if raw else values), counts


def _shingle_values(texts: Sequence[str | None], ngram: int, unit: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """(values, counts, raw): for char, each n-gram's bytes as a number (raw=True: not yet mixed,
    `shingle_hashes` mixes them, one to one); for word, the hashes themselves (raw=False)."""
    if unit == "char":
        if not 1 <= ngram <= 8:
            raise ValueError(f"near_dedup: character n-grams need 1 <= ngram <= 8, got {ngram}")
        return (*_char_values(*normalized_buffer(texts), ngram), True)
    if unit != "word":
        raise ValueError(f"near_dedup: unit must be char or word, got {unit!r}")
    norms = [normalize_text(t) if t else "" for t in texts]
    tokens = [t.split() for t in norms]
    lengths = np.array([len(w) for w in tokens], dtype=np.int64)
    buffer = np.fromiter((xxhash.xxh3_64_intdigest(w.encode()) for ws in tokens for w in ws), dtype=np.uint64,
                         count=int(lengths.sum()))
    buffer = np.concatenate([buffer, np.zeros(ngram, np.uint64)])
    counts = np.where(lengths > 0, np.maximum(lengths - ngram + 1, 1), 0)
    starts_of_text = (np.cumsum(lengths) - lengths).astype(np.int64)
    owner = np.repeat(np.arange(len(lengths)), counts)
    first = (np.cumsum(counts) - counts).astype(np.int64)
    pos = starts_of_text[owner] + (np.arange(int(counts.sum())) - first[owner])
    value = np.zeros(len(pos), dtype=np.uint64)
    span = lengths[owner]
    for k in range(ngram):  # shorter texts stop at their own end
        value = _mix(value ^ np.where(k < span, buffer[pos + k], np.uint64(0)))
    return _mix(value ^ np.uint64(ngram)), counts, False


def _char_values(buffer: np.ndarray, lengths: np.ndarray, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Every byte n-gram as a number, first byte highest: one unaligned big-endian 8-byte read per
    position, shifted right. The n-grams that run past their text's end are masked out; a text
    shorter than n keeps its one n-gram, zero-padded."""
    counts = np.where(lengths > 0, np.maximum(lengths - ngram + 1, 1), 0)
    total = len(buffer)
    if total == 0:
        return np.zeros(0, dtype=np.uint64), counts
    padded = np.zeros(total + 8, dtype=np.uint8)
    padded[:total] = buffer
    value = np.ndarray((total,), dtype=">u8", buffer=padded, strides=(1,)).astype(np.uint64)
    value >>= np.uint64(8 * (8 - ngram))
    ends = np.cumsum(lengths)
    short = (lengths > 0) & (lengths < ngram)
    if short.any():  # bytes past the end of a short text belong to the next one: zero them
        at = (ends - lengths)[short]
        cut = ((ngram - lengths[short]) * 8).astype(np.uint64)
        value[at] = (value[at] >> cut) << cut
    inside = np.ones(total, dtype=bool)
    for k in range(1, ngram):  # the last n-1 positions of a text start no n-gram (but its first does)
        inside[ends[lengths > k] - k] = False
    return value[inside], counts


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads bits so that near-equal shingles get unrelated hashes."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def signatures(texts: Sequence[str | None], num_perm: int = 128, ngram: int = 5, unit: str = "char",
               seed: int = 1) -> np.ndarray:
    """(len(texts), num_perm) MinHash signatures (uint64 holding 32-bit values); a missing or empty
    text gets EMPTY everywhere and is never anyone's near-duplicate."""
    values, counts, raw = _shingle_values(texts, ngram, unit)
    return _with_empty(_signatures(values, counts, num_perm, seed, ngram if raw else None), counts)


def signatures_of(hashes: np.ndarray, counts: np.ndarray, num_perm: int = 128, seed: int = 1) -> np.ndarray:
    """Signatures from `shingle_hashes`' output: for each text and permutation, the minimum over the
    text's shingles of the permutation's high 32 bits (the shift commutes with the minimum)."""
    return _with_empty(_signatures(np.asarray(hashes, dtype=np.uint64), counts, num_perm, seed, None), counts)


def _with_empty(sigs: np.ndarray, counts: np.ndarray) -> np.ndarray:
    out = sigs.astype(np.uint64)
    out[np.asarray(counts) == 0] = EMPTY
    return out


def _signatures(values: np.ndarray, counts: np.ndarray, num_perm: int, seed: int, ngram: int | None) -> np.ndarray:
    """`signatures_of` for hashes (ngram None) or for raw char n-gram values (hashed on the way), as
    uint32; the rows of texts without shingles are undefined (`_with_empty` marks them)."""
    a, b = permutations(num_perm, seed)
    counts = np.asarray(counts, dtype=np.int64)
    if 0 < len(values) <= CHUNK_SHINGLES and counts.all():  # the usual case: one chunk, no empty text
        with np.errstate(over="ignore"):
            return _minhash_chunk(values, counts, a, b, ngram)
    out = np.zeros((len(counts), num_perm), dtype=np.uint32)
    ends = np.cumsum(counts)
    lo = 0
    with np.errstate(over="ignore"):
        while lo < len(counts):
            first = int(ends[lo] - counts[lo])
            hi = max(lo + 1, int(np.searchsorted(ends, first + CHUNK_SHINGLES, side="right")))
            chunk = counts[lo:hi]
            nonempty = np.flatnonzero(chunk)
            if len(nonempty):
                out[lo + nonempty] = _minhash_chunk(values[first:int(ends[hi - 1])], chunk[nonempty], a, b, ngram)
            lo = hi
    return out


def _minhash_chunk(values: np.ndarray, counts: np.ndarray, a: np.ndarray, b: np.ndarray,
                   ngram: int | None) -> np.ndarray:
    """(len(counts), num_perm) uint32 minima for texts with at least one shingle each.

    Texts are taken shortest first, so that runs of texts of one length are blocks of a table's
    rows (block[l, t] = the row of text t's l-th unit) whose minimum over l is their signatures.
    For char n-grams (n <= 6) the units are windows of 2-4 consecutive n-grams, whose row is the
    minimum of their n-grams' rows: a half to a quarter of the rows to gather per text."""
    order = np.argsort(counts, kind="stable")
    length = counts[order]
    starts = (np.cumsum(counts) - counts)[order]
    if ngram and ngram <= 6:
        windows = _window_minhash(values, starts, length, order, a, b, ngram)
        if windows is not None:
            return windows
    # the shingles in that order of texts, so that a block is one reshaped slice
    position = np.repeat(starts - (np.cumsum(length) - length), length) + np.arange(len(values))
    distinct, ids, _ = _distinct(values[position], 8 * ngram if ngram else 64)
    if len(distinct) > TABLE_MAX_ROWS and len(counts) > 1:  # too big a table: each half on its own
        half = len(counts) // 2
        split = int(counts[:half].sum())
        return np.concatenate([_minhash_chunk(values[:split], counts[:half], a, b, ngram),
                               _minhash_chunk(values[split:], counts[half:], a, b, ngram)])
    if len(distinct) > TABLE_MAX_SHARE * len(values):
        return _minhash_streamed(_mix(values ^ np.uint64(ngram)) if ngram else values, counts, a, b)
    table = _permuted(_mix(distinct ^ np.uint64(ngram)) if ngram else distinct, a, b)
    return _block_minima(table, ids, length, order)


def _window_size(ngram: int) -> int:
    """The most consecutive char n-grams (up to 4) whose bytes and a size code fit in a uint64 key."""
    return next((w for w in (4, 3, 2) if 8 * (ngram + w - 1) + (w - 1).bit_length() <= 64), 1)


def _window_minhash(values: np.ndarray, starts: np.ndarray, length: np.ndarray, order: np.ndarray, a: np.ndarray,
                    b: np.ndarray, ngram: int) -> np.ndarray | None:
    """Minima (row order[t] for the text at starts[t], length[t]) over windows of w consecutive n-grams (w = 3 for
    5-grams): a text of L >= w n-grams has windows at 0, w, 2w, ... (the last at L - w, overlapping:
    a minimum does not mind), a shorter text one window of all of them. A window's key is its bytes
    (an (n+w-1)-gram) with the number of n-grams it lacks above them; its table row is the minimum
    of its n-grams' rows. None where windows barely repeat (the caller goes n-gram by n-gram)."""
    w = _window_size(ngram)
    span = 8 * (ngram + w - 1)  # bits of a full window's bytes
    low = np.uint64((1 << (8 * ngram)) - 1)
    per_text = np.where(length >= w, (length + w - 1) // w, 1)
    total = int(per_text.sum())
    step = np.arange(total) - np.repeat(np.cumsum(per_text) - per_text, per_text)
    at = np.repeat(starts, per_text) + np.minimum(w * step, np.repeat(np.maximum(length - w, 0), per_text))
    last = len(values) - 1
    keys = values[at] << np.uint64(8 * (w - 1))
    for i in range(1, w):  # each next n-gram adds its last byte
        keys |= (values[np.minimum(at + i, last)] & np.uint64(0xFF)) << np.uint64(8 * (w - 1 - i))
    for size in range(1, w):  # texts of fewer than w n-grams: their bytes, and w - size above them
        short = np.flatnonzero(np.repeat(length == size, per_text))
        if len(short):
            key = values[at[short]] << np.uint64(8 * (size - 1))
            for i in range(1, size):
                key |= (values[at[short] + i] & np.uint64(0xFF)) << np.uint64(8 * (size - 1 - i))
            keys[short] = key | np.uint64((w - size) << span)
    _, ids, where = _distinct(_mix(keys), 64)
    if len(where) > TABLE_MAX_ROWS or len(where) > TABLE_MAX_SHARE * total:
        return None
    keys = keys[where]
    size = w - (keys >> np.uint64(span)).astype(np.int64)
    body = keys & np.uint64((1 << span) - 1)
    grams, which, _ = _distinct(np.concatenate([(body >> (8 * np.maximum(size - 1 - j, 0)).astype(np.uint64)) & low
                                                for j in range(w)]), 8 * ngram)  # j-th n-gram (the last, past the end)
    table = _permuted(_mix(grams ^ np.uint64(ngram)), a, b)
    rows_of = table.view(np.dtype((np.void, table.shape[1] * 4))).ravel()
    count = len(keys)
    window_rows = np.empty((count, len(a)), dtype=np.uint32)
    for s in range(0, count, 1024):
        e = min(s + 1024, count)
        gram = [np.take(rows_of, which[j * count + s:j * count + e]).view(np.uint32).reshape(e - s, -1)
                for j in range(w)]  # the rows of the windows' j-th n-grams
        np.minimum(gram[0], gram[1], out=window_rows[s:e])
        for j in range(2, w):
            np.minimum(window_rows[s:e], gram[j], out=window_rows[s:e])
    return _block_minima(window_rows, ids, per_text, order)


def _permuted(hashes: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(hashes), num_perm) uint32: every hash under every permutation, high 32 bits."""
    table = np.empty((len(hashes), len(a)), dtype=np.uint32)
    for s in range(0, len(hashes), 256):
        part = np.multiply.outer(hashes[s:s + 256], a)
        part += b
        part >>= np.uint64(32)
        table[s:s + 256] = part
    return table


def _block_minima(table: np.ndarray, ids: np.ndarray, length: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Row order[t] of the result: the minimum of table[ids] over text t's slice, texts back to back
    in `ids` with non-decreasing `length`. Runs of texts of one length go in blocks of about
    TABLE_BLOCK_ROWS rows (one gather into L2-sized memory, one minimum over the first axis)."""
    num_perm = table.shape[1]
    rows_of = table.view(np.dtype((np.void, num_perm * 4))).ravel()  # one item per row: a faster gather
    out = np.empty((len(length), num_perm), dtype=np.uint32)
    part = np.empty((TABLE_BLOCK_ROWS, num_perm), dtype=np.uint32)
    lengths = length.tolist()
    i, at, n = 0, 0, len(lengths)
    while i < n:
        rows = lengths[i]
        if rows > TABLE_BLOCK_ROWS:  # a long text: a slice of its rows at a time
            row = table[ids[at:at + TABLE_BLOCK_ROWS]].min(axis=0)
            for s in range(at + TABLE_BLOCK_ROWS, at + rows, TABLE_BLOCK_ROWS):
                np.minimum(row, table[ids[s:min(s + TABLE_BLOCK_ROWS, at + rows)]].min(axis=0), out=row)
            out[order[i]] = row
            i, at = i + 1, at + rows
            continue
        j = min(i + max(1, TABLE_BLOCK_ROWS // rows), bisect_right(lengths, rows, i))  # texts of one length
        block = np.take(rows_of, ids[at:at + (j - i) * rows].reshape(j - i, rows).T)  # C order, unlike []
        np.minimum.reduce(block.view(np.uint32).reshape(rows, j - i, num_perm), axis=0, out=part[:j - i])
        out[order[i:j]] = part[:j - i]
        i, at = j, at + (j - i) * rows
    return out


def _distinct(values: np.ndarray, value_bits: int, canonical: bool = False
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct, ids, where) with distinct[ids] == values and values[where] == distinct, from one
    sort of a uint64 key per value: the value (or, if it does not fit beside the position, its high
    bits) above its position; numpy sorts that far faster than an argsort. With high bits only, two
    different values that share them may give one value two entries, harmless for a table of
    permuted values; `canonical` (one id per value, as set comparisons need) then falls back to
    np.unique."""
    n = len(values)
    bits = max(1, (n - 1).bit_length())
    shift = np.uint64(bits)
    exact = value_bits + bits <= 64
    keys = ((values << shift) if exact else ((values >> shift) << shift)) | np.arange(n, dtype=np.uint64)
    keys.sort()
    pos = (keys & np.uint64((1 << bits) - 1)).astype(np.intp)
    ordered = (keys >> shift) if exact else values[pos]
    new = np.empty(n, dtype=bool)
    new[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    if canonical and not exact:
        keys >>= shift
        if (new[1:] & (keys[1:] == keys[:-1])).any():  # high bits shared by different values
            distinct, first, ids = np.unique(values, return_index=True, return_inverse=True)
            return distinct, ids.reshape(-1), first
    firsts = np.flatnonzero(new)
    ids = np.empty(n, dtype=np.intp)
    ids[pos] = np.repeat(np.arange(len(firsts)), np.diff(np.append(firsts, n)))
    return ordered[firsts], ids, pos[firsts]


def _minhash_streamed(hashes: np.ndarray, counts: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The same minima, permuting every occurrence, in blocks of texts that stay in cache."""
    out = np.empty((len(a), len(counts)), dtype=np.uint64)
    ends = np.cumsum(counts)
    lo = 0
    while lo < len(counts):
        first = int(ends[lo] - counts[lo])
        hi = max(lo + 1, int(np.searchsorted(ends, first + STREAM_BLOCK, side="right")))
        block = hashes[first:int(ends[hi - 1])]
        offsets = ends[lo:hi] - counts[lo:hi] - first
        tmp = np.empty_like(block)
        for p in range(len(a)):
            np.multiply(block, a[p], out=tmp)
            tmp += b[p]
            np.minimum.reduceat(tmp, offsets, out=out[p, lo:hi])
        lo = hi
    out >>= np.uint64(32)
    return out.T.astype(np.uint32)


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
    first, second = _candidates(sigs, np.flatnonzero(sigs[:, 0] != EMPTY), bands, rows, max_bucket)
    return set(zip(first.tolist(), second.tolist()))


_BAND_MULTIPLIERS = np.random.default_rng(0x5EED).integers(0, 1 << 63, size=1024, dtype=np.uint64) * np.uint64(2) + 1


def _candidates(sigs: np.ndarray, index: np.ndarray, bands: int, rows: int, max_bucket: int = 1000
                ) -> tuple[np.ndarray, np.ndarray]:
    """`candidate_pairs` among the rows `index` (those with shingles), as two arrays (i, j), sorted by
    j, then i.

    Each band's rows are sorted by a 64-bit key: a linear hash of the band's values in the high
    bits, the row's position in the low bits, so a bucket is a run of equal high bits, its members
    in row order. Runs are checked on the band's actual values; a band where two different values
    share a key (rare) is grouped again, exactly, by a lexicographic sort of its values."""
    n = len(sigs)
    m = len(index)
    nothing = np.zeros(0, dtype=np.int64)
    if m < 2 or bands < 1:
        return nothing, nothing
    values = (sigs if m == n else sigs[index])[:, :bands * rows].reshape(m, bands, rows)
    packed = values  # uint32 values two to a uint64: half the products for the same key
    if values.dtype == np.uint32 and rows % 2 == 0 and values.strides[2] == 4:
        packed = values.reshape(m, bands * rows).view(np.uint64).reshape(m, bands, rows // 2)
    multipliers = _BAND_MULTIPLIERS[np.arange(packed.shape[2]) % len(_BAND_MULTIPLIERS)]
    bits = max(1, (m - 1).bit_length())
    shift = np.uint64(bits)
    with np.errstate(over="ignore"):
        keys = np.ascontiguousarray(np.einsum("mbr,r->bm", packed, multipliers))  # (bands, m), mod 2**64
    keys >>= shift
    keys <<= shift
    keys |= np.arange(m, dtype=np.uint64)
    keys.sort(axis=1)
    member = (keys & np.uint64((1 << bits) - 1)).astype(np.intp)  # (bands, m): rows, bucket by bucket
    keys >>= shift
    same = keys[:, 1:] == keys[:, :-1]  # same[band, k]: member k + 1 is in member k's bucket
    band_of, at = np.nonzero(same)
    differ = (values[member[band_of, at], band_of] != values[member[band_of, at + 1], band_of]).any(axis=1)
    for band in np.unique(band_of[differ]):  # a key shared by different values
        columns = values[:, band]
        member[band] = np.lexsort((np.arange(m),) + tuple(columns[:, k] for k in reversed(range(rows))))
        ordered = columns[member[band]]
        same[band] = (ordered[1:] == ordered[:-1]).all(axis=1)
    # a bucket member at position y >= 1 is paired with the bucket's first min(y, max_bucket) members
    follower = np.flatnonzero(same) + np.flatnonzero(same) // (m - 1) + 1  # positions in member.ravel()
    if not len(follower):
        return nothing, nothing
    first_of_run = np.ones(len(follower), dtype=bool)
    first_of_run[1:] = np.diff(follower) != 1
    bucket_start = (follower[first_of_run] - 1)[np.cumsum(first_of_run) - 1]
    repeats = np.minimum(follower - bucket_start, max_bucket)
    flat = member.ravel()
    done = np.cumsum(repeats)
    cuts = [0] + np.searchsorted(done, np.arange(PAIR_BUDGET, int(done[-1]), PAIR_BUDGET)).tolist() + [len(done)]
    codes = nothing
    for lo, hi in zip(cuts[:-1], cuts[1:]):  # one piece unless buckets are huge
        reps = repeats[lo:hi]
        step = np.arange(int(reps.sum())) - np.repeat(np.cumsum(reps) - reps, reps)
        later = index[np.repeat(flat[follower[lo:hi]], reps)]
        earlier = index[flat[np.repeat(bucket_start[lo:hi], reps) + step]]
        codes = _unique(np.concatenate([codes, later * n + earlier]))
    return codes % n, codes // n


def _unique(values: np.ndarray) -> np.ndarray:
    """np.unique for integers by one plain sort (np.unique itself is ~20x slower in numpy 2.3)."""
    values = np.sort(values)
    keep = np.empty(len(values), dtype=bool)
    keep[:1] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def _estimates(sigs: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The signature estimate of Jaccard similarity for each pair (the share of equal values)."""
    out = np.empty(len(first), dtype=np.float64)
    for s in range(0, len(first), 2048):  # 1 MiB gathers: no large allocation to fault in
        equal = sigs[first[s:s + 2048]] == sigs[second[s:s + 2048]]
        out[s:s + 2048] = np.count_nonzero(equal, axis=1) / sigs.shape[1]  # == equal.mean(axis=1)
    return out


def _exact_jaccard(values: np.ndarray, counts: np.ndarray, first: np.ndarray, second: np.ndarray,
                   value_bits: int) -> np.ndarray:
    """Exact Jaccard similarity of each pair's shingle sets: the rows' shingles get dense ids, each
    row's set is its sorted distinct ids, and a pair's intersection is the number of ids that occur
    twice when the two sets are sorted together."""
    sims = np.zeros(len(first), dtype=np.float64)
    if not len(first):
        return sims
    rows = _unique(np.concatenate([first, second]))
    local = np.searchsorted(rows, np.concatenate([first, second]))
    lengths = counts[rows]
    starts = np.cumsum(counts) - counts
    flat = values[np.repeat(starts[rows] - (np.cumsum(lengths) - lengths), lengths) + np.arange(int(lengths.sum()))]
    _, ids, _ = _distinct(flat, value_bits, canonical=True)
    id_bits = max(1, (len(flat) - 1).bit_length())
    members = _unique(np.repeat(np.arange(len(rows), dtype=np.int64), lengths) << id_bits | ids)
    member_ids = members & ((1 << id_bits) - 1)
    set_start = np.searchsorted(members >> id_bits, np.arange(len(rows)))
    set_size = np.diff(np.append(set_start, len(members)))
    left, right = local[:len(first)], local[len(first):]
    total = set_size[left] + set_size[right]
    done = np.cumsum(total)
    cuts = [0] + np.searchsorted(done, np.arange(PAIR_BUDGET, int(done[-1]), PAIR_BUDGET)).tolist() + [len(done)]
    for lo, hi in zip(cuts[:-1], cuts[1:]):  # one piece unless there are very many pairs
        sides = np.concatenate([left[lo:hi], right[lo:hi]])
        size = set_size[sides]
        pair = np.repeat(np.tile(np.arange(hi - lo, dtype=np.int64), 2), size)
        at = np.repeat(set_start[sides] - (np.cumsum(size) - size), size) + np.arange(int(size.sum()))
        keys = np.sort(pair << id_bits | member_ids[at])
        both = np.bincount(keys[1:][keys[1:] == keys[:-1]] >> id_bits, minlength=hi - lo)
        sims[lo:hi] = both / (total[lo:hi] - both)
    return sims


def near_duplicates(texts: Sequence[str | None], threshold: float = 0.8, num_perm: int = 128, ngram: int = 5,
                    unit: str = "char", seed: int = 1, verify: str = "exact"
                    ) -> tuple[list[bool], list[float], list[int | None]]:
    """Greedy in row order: a row is flagged when its Jaccard similarity with an earlier *kept* row is
    >= threshold. Returns (flag, best similarity to an earlier row found, index of the kept row it repeats).

    LSH banding (tuned so that a pair at the threshold is a candidate with probability >= 0.99) picks
    the candidate pairs; each whose signature estimate is within ESTIMATE_SLACK of the threshold is
    then confirmed on its exact shingle sets (verify="exact", the default: no false positives) or
    taken on the estimate (verify="estimate"). Deterministic:
    the same rows in the same order give the same flags.

    >>> flags, best, of = near_duplicates(["Where is my new card?", "where is my new card", "A fee?", None])
    >>> flags, best, of
    ([False, True, False, False], [0.0, 1.0, 0.0, 0.0], [None, 0, None, None])
    """
    if verify not in ("exact", "estimate"):
        raise ValueError(f"near_dedup: verify must be exact or estimate, got {verify!r}")
    values, counts, raw = _shingle_values(texts, ngram, unit)
    sigs = _signatures(values, counts, num_perm, seed, ngram if raw else None)
    bands, rows = optimal_bands(threshold, num_perm)
    first, second = _candidates(sigs, np.flatnonzero(counts), bands, rows)  # by later row, then earlier
    estimate = _estimates(sigs, first, second)
    if verify == "exact":  # only candidates whose estimate is within reach (3+ sd at 128 permutations)
        near = estimate >= threshold - ESTIMATE_SLACK
        first, second = first[near], second[near]
        sims = _exact_jaccard(values, counts, first, second, 8 * ngram if raw else 64).tolist()
    else:
        sims = estimate.tolist()
    n = len(counts)
    flags, best, of = [False] * n, [0.0] * n, [None] * n
    for i, j, sim in zip(first.tolist(), second.tolist(), sims):
        if sim > best[j]:
            best[j] = sim
        if sim >= threshold and not flags[i] and of[j] is None:
            flags[j], of[j] = True, i
    return flags, best, of


def nearest_in(texts: Sequence[str | None], reference: Sequence[str | None], threshold: float = 0.5,
               num_perm: int = 128, ngram: int = 5, unit: str = "char", seed: int = 1
               ) -> tuple[list[float], list[int | None]]:
    """For each text, the highest exact Jaccard similarity to a reference text among the LSH
    candidates for `threshold` (so values well below it read as 0.0), and that reference's index."""
    m = len(reference)
    values, counts, raw = _shingle_values(list(reference) + list(texts), ngram, unit)  # references first:
    sigs = _signatures(values, counts, num_perm, seed, ngram if raw else None)        # they lead a huge bucket
    bands, rows = optimal_bands(threshold, num_perm)
    first, second = _candidates(sigs, np.flatnonzero(counts), bands, rows)
    cross = (first < m) & (second >= m)
    first, second = first[cross], second[cross]
    near = _estimates(sigs, first, second) >= threshold - ESTIMATE_SLACK
    first, second = first[near], second[near]
    n = len(texts)
    best, of = [0.0] * n, [None] * n
    sims = _exact_jaccard(values, counts, first, second, 8 * ngram if raw else 64).tolist()
    for i, j, sim in zip(first.tolist(), second.tolist(), sims):
        if sim > best[j - m]:
            best[j - m], of[j - m] = sim, i
    return best, of
