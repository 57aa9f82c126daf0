"""ROUGE-L novelty (synth_datasets.checks.rouge) against Google's rouge-score, the reference it must match
bit for bit: tokens, F-measures (float ties at the threshold included) and the greedy keep/drop decisions."""

from __future__ import annotations

import json
import random
from fractions import Fraction
from pathlib import Path

import pytest

from synth_datasets.checks import CHECKS, CheckContext, build_check, run_checks
from synth_datasets.checks.rouge import (RougeNovelty, RougeNoveltyCheck, lcs_length, novel, rouge_l, rouge_l_text,
                                         rouge_tokens)

rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer", reason="rouge-score is the reference: pip install rouge-score")
hypothesis = pytest.importorskip("hypothesis", reason="property tests need hypothesis: pip install hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

SEEDS = Path(__file__).parents[2] / "shared/data/self_instruct/seed_tasks.jsonl"
SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None)


def ref_tokens(text: str) -> list[str]:
    return SCORER._tokenizer.tokenize(text)


def ref_f(new: list[str], old: list[str]) -> float:
    """What Alpaca computes: `_score_lcs(new_instruction_tokens, old_tokens).fmeasure`."""
    return rouge_scorer._score_lcs(new, old).fmeasure


def brute_force(candidates, pool, threshold):
    """Alpaca's loop: (kept, max score) per candidate against the pool plus the kept candidates."""
    kept = [ref_tokens(t) for t in pool]
    out = []
    for text in candidates:
        new = ref_tokens(text)
        best = max((ref_f(new, old) for old in kept), default=0.0)
        out.append((best <= threshold, best))
        if best <= threshold:
            kept.append(new)
    return out


def seed_instructions() -> list[str]:
    if not SEEDS.exists():
        pytest.skip(f"the Self-Instruct seed tasks are not at {SEEDS} (the shared data folder next to the repo)")
    with open(SEEDS) as f:
        return [json.loads(line)["instruction"] for line in f if line.strip()]


# --- the tokenizer ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text,tokens", [
    ("Write a poem, please!", ["write", "a", "poem", "please"]),
    ("Don't re-write 700-1000 CALORIES", ["don", "t", "re", "write", "700", "1000", "calories"]),
    ("snake_case\tand\nnew   lines", ["snake", "case", "and", "new", "lines"]),
    ("café naïve Straße", ["caf", "na", "ve", "stra", "e"]),           # non-ASCII letters separate words
    ("İstanbul", ["i", "stanbul"]),                                      # lower() gives "i" + combining dot
    ("\u212a\u212a 3\u00bd", ["kk", "3"]),                               # Kelvin sign lowers to ASCII "k"; ½ is no digit
    ("日本語のテキスト 🙂", []),
    ("?!... --- ***", []),
    ("", []),
])
def test_tokens_match_rouge_score(text, tokens):
    assert rouge_tokens(text) == tokens
    assert ref_tokens(text) == tokens


@PROPERTY
@given(st.text(max_size=40))
def test_tokens_match_rouge_score_on_any_unicode(text):
    assert rouge_tokens(text) == ref_tokens(text)


# --- LCS and the F-measure -------------------------------------------------------------------------

def test_hand_computed_lcs_and_f():
    a, b = "the cat sat on the mat".split(), "a cat on a mat".split()
    assert lcs_length(a, b) == lcs_length(b, a) == 3  # cat on mat
    # target a (6 tokens), prediction b (5): precision 3/5, recall 3/6
    assert rouge_l(a, b) == 2 * 0.6 * 0.5 / (0.6 + 0.5) == ref_f(a, b)
    assert rouge_l(a, b) == pytest.approx(6 / 11)
    assert lcs_length("a b c d".split(), "d c b a".split()) == 1
    assert lcs_length("x a y b z c".split(), "a b c".split()) == 3
    assert rouge_l("a b".split(), "a b".split()) == 1.0
    assert rouge_l("a b".split(), "c d".split()) == 0.0


def test_the_float_arithmetic_is_rouge_scores_not_the_rational_value():
    # 12/13 as a rational is 0.9230769230769231; rouge-score computes 2*1*(6/7)/(1+6/7)
    a, b = rouge_tokens("Write a poem about the sea."), rouge_tokens("Write a short poem about the sea!")
    assert rouge_l(a, b) == ref_f(a, b) == 0.923076923076923 != 12 / 13


def test_empty_and_tokenless_texts_score_zero():
    assert rouge_l([], ["a"]) == rouge_l(["a"], []) == rouge_l([], []) == 0.0
    assert rouge_l_text("?!?", "...") == rouge_l_text("日本語", "日本語") == 0.0
    assert ref_f(ref_tokens("日本語"), ref_tokens("日本語")) == 0
    # a text without tokens is never a near-duplicate, even of itself
    assert novel(["", "!!!", "日本語", "日本語"], pool=["x"]) == [(True, 0.0, None)] * 4


def words(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


@pytest.mark.parametrize("lcs,m,n,expected,kept", [
    (7, 10, 10, 0.7, True),                  # 2*lcs/(m+n) = 0.7, and the float is 0.7: kept (<= 0.7)
    (7, 9, 11, 0.7000000000000001, False),   # the rational is 0.7 too, the float lands above: dropped
    (7, 8, 12, 0.7000000000000001, False),
    (14, 17, 23, 0.7, True),
    (21, 23, 37, 0.6999999999999998, True),  # and below
])
def test_ties_at_the_threshold_fall_as_rouge_score_rounds_them(lcs, m, n, expected, kept):
    assert Fraction(2 * lcs, m + n) == Fraction(7, 10)
    shared = words("s", lcs)
    old = shared + words("o", n - lcs)
    new = words("x", m - lcs) + shared
    old_text, new_text = " ".join(old), " ".join(new)
    assert lcs_length(new, old) == lcs
    assert rouge_l(new, old) == ref_f(new, old) == expected
    assert novel([new_text], pool=[old_text]) == [(kept, expected, 0)]
    assert brute_force([new_text], [old_text], 0.7) == [(kept, expected)]
    index = RougeNovelty(0.7)
    index.add(old_text)
    assert index.max_score(new_text) == (expected, 0)


def test_f_is_symmetric_in_floating_point_on_the_seeds():
    seeds = [rouge_tokens(t) for t in seed_instructions()]
    for i, a in enumerate(seeds):
        for b in seeds[i + 1:]:
            assert rouge_l(a, b) == rouge_l(b, a)


def test_agrees_with_rouge_score_on_every_seed_pair():
    seeds = seed_instructions()
    assert len(seeds) == 175
    tokens = [ref_tokens(t) for t in seeds]
    assert [rouge_tokens(t) for t in seeds] == tokens
    mismatches = [(i, j) for i in range(len(tokens)) for j in range(i + 1, len(tokens))
                  if rouge_l(tokens[i], tokens[j]) != ref_f(tokens[i], tokens[j])]
    assert mismatches == []


def perturbed(texts: list[str], rng: random.Random) -> list[str]:
    """Near-copies: a word dropped, two swapped, a word from another text inserted."""
    vocab = [w for t in texts for w in t.split()]
    out = []
    for text in texts:
        w = text.split()
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            if op < 0.33 and len(w) > 2:
                del w[rng.randrange(len(w))]
            elif op < 0.66 and len(w) > 2:
                i = rng.randrange(len(w) - 1)
                w[i], w[i + 1] = w[i + 1], w[i]
            else:
                w.insert(rng.randrange(len(w) + 1), rng.choice(vocab))
        out.append(" ".join(w))
    return out


@pytest.mark.parametrize("threshold", [0.7, 0.5])
def test_greedy_decisions_match_rouge_score_on_seed_instructions(threshold):
    seeds = seed_instructions()
    rng = random.Random(0)
    pool = seeds[:60]
    candidates = perturbed(seeds[:80], rng) + seeds[100:140]
    rng.shuffle(candidates)
    expected = brute_force(candidates, pool, threshold)
    got = novel(candidates, pool=pool, threshold=threshold)
    assert [k for k, _, _ in got] == [k for k, _ in expected]
    assert 10 < sum(not k for k, _ in expected) < len(candidates)  # the fixture does drop and keep
    for (k, score, nearest), (_, best) in zip(got, expected):
        if best >= threshold:
            assert score == best
        else:
            assert score < threshold
    exact = novel(candidates, pool=pool, threshold=threshold, floor=0)
    assert [(k, s) for k, s, _ in exact] == expected


# --- property tests ---------------------------------------------------------------------------------

VOCAB = ["a", "b", "c", "d", "e"]
SEPARATORS = [" ", "  ", ", ", ". ", "-", "! ", " é "]


@st.composite
def small_vocab_text(draw, max_words=14):
    """Texts over five words (so LCS is long and ties are common) with case and punctuation noise."""
    ws = draw(st.lists(st.sampled_from(VOCAB + ["A", "B", "Cc"]), max_size=max_words))
    seps = draw(st.lists(st.sampled_from(SEPARATORS), min_size=len(ws), max_size=len(ws)))
    return "".join(w + s for w, s in zip(ws, seps))


@PROPERTY
@given(small_vocab_text(20), small_vocab_text(20))
def test_rouge_l_equals_rouge_score_on_random_texts(a, b):
    ta, tb = ref_tokens(a), ref_tokens(b)
    assert rouge_l_text(a, b) == rouge_l(ta, tb) == SCORER.score(a, b)["rougeL"].fmeasure == ref_f(ta, tb)
    lcs = rouge_scorer._lcs_table(ta, tb)[-1][-1]
    assert lcs_length(ta, tb) == lcs


@PROPERTY
@given(st.text(max_size=30), st.text(alphabet="ab .Xé", max_size=30))
def test_rouge_l_equals_rouge_score_on_random_unicode(a, b):
    assert rouge_l_text(a, b) == SCORER.score(a, b)["rougeL"].fmeasure
    assert rouge_l_text(b, a) == SCORER.score(b, a)["rougeL"].fmeasure


@PROPERTY
@given(st.lists(small_vocab_text(), max_size=25), st.lists(small_vocab_text(), max_size=4),
       st.sampled_from([0.7, 0.5, 2 / 3, 0.8, 0.6, 0.75, 0.0, 1.0]))
def test_greedy_decisions_equal_brute_force_rouge_score(candidates, pool, threshold):
    expected = brute_force(candidates, pool, threshold)
    got = novel(candidates, pool=pool, threshold=threshold)
    assert [k for k, _, _ in got] == [k for k, _ in expected]
    everything = [*pool, *candidates]
    for j, ((kept, score, nearest), (_, best)) in enumerate(zip(got, expected)):
        assert score == best if best >= threshold else score < threshold
        if nearest is not None:  # the index names an earlier text that scores exactly that
            assert nearest < len(pool) + j
            assert rouge_l(ref_tokens(candidates[j]), ref_tokens(everything[nearest])) == score
    exact = novel(candidates, pool=pool, threshold=threshold, floor=0)
    assert [(k, s) for k, s, _ in exact] == expected
    for j, (kept, score, nearest) in enumerate(exact):
        if nearest is None:
            assert score == 0.0
        else:
            assert nearest < len(pool) + j  # an earlier text
            assert nearest < len(pool) or exact[nearest - len(pool)][0]  # that was kept
            assert rouge_l(ref_tokens(candidates[j]), ref_tokens(everything[nearest])) == score


# --- the index ---------------------------------------------------------------------------------------

def test_index_keeps_the_first_of_equal_best_and_validates_its_settings():
    index = RougeNovelty(threshold=0.7)
    assert index.max_score("anything") == (0.0, None)  # nothing kept yet
    assert [index.add(t) for t in ("red blue green", "blue green red", "red blue green")] == [0, 1, 2]
    assert index.max_score("red blue green") == (1.0, 0)
    assert index.max_score("yellow purple") == (0.0, None)
    assert index.offer("red blue green") == (False, 1.0, 0)
    assert index.offer("red blue green yellow purple black") == (True, 0.0, None)  # 0.667 < floor
    assert index.max_score("red blue green yellow purple black") == (1.0, 3)
    assert len(index) == 4
    with pytest.raises(ValueError, match="floor"):
        RougeNovelty(0.7, floor=0.8)
    with pytest.raises(ValueError, match="threshold"):
        RougeNovelty(1.5)


# --- the check ----------------------------------------------------------------------------------------

REAL = ["Write a poem about the sea.", "Translate the sentence into French."]
ROWS = ["Write a short poem about the sea.",        # near the first real row: flagged
        "Summarize the article in two sentences.",  # new
        "Summarize this article in two sentences.",  # near row 1: flagged
        "Translate the sentence into German.",       # near the second real row: flagged (0.8000000000000002)
        "",                                          # no tokens: kept
        None]


def test_check_flags_rows_near_real_rows_or_earlier_kept_rows():
    from datasets import Dataset

    assert CHECKS["rouge_novelty"] is RougeNoveltyCheck
    ds = Dataset.from_dict({"text": ROWS})
    check = RougeNoveltyCheck().bind(CheckContext(real_texts=REAL))
    assert check.needs == ("real_texts",)
    out = check.annotate(ds)
    assert out["rouge_novelty_flag"] == [True, False, True, True, False, False]
    scores = out["rouge_novelty_score"]
    assert scores[0] == rouge_l_text(ROWS[0], REAL[0]) and scores[2] == rouge_l_text(ROWS[2], ROWS[1])
    assert scores[3] == SCORER.score(ROWS[3], REAL[1])["rougeL"].fmeasure == 0.8000000000000002  # lcs 4 of 5 and 5
    assert scores[4] == scores[5] == 0.0
    assert 0 < scores[1] == max(rouge_l_text(ROWS[1], r) for r in REAL) < 0.7  # exact for kept rows too

    alone = build_check("rouge_novelty", {"threshold": 0.8, "include_real": False})
    assert alone.needs == () and alone.bind(CheckContext()).reference is None  # no real rows needed
    assert alone.annotate(ds)["rouge_novelty_flag"] == [False, False, True, False, False, False]
    assert "reference" not in alone.describe()

    kept, report = run_checks(ds, [RougeNoveltyCheck()], context=CheckContext(real_texts=REAL), progress=False)
    assert kept["text"] == [ROWS[1], "", None]
    with pytest.raises(ValueError, match="real rows"):
        RougeNoveltyCheck().bind(CheckContext())
    with pytest.raises(ValueError, match="threshold"):
        build_check("rouge_novelty", {"threshold": 7})
