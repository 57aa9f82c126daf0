"""Realism: the classifier two-sample test, the `realism` check, and the figures in report and card.

Real banking77 rows on both sides must read as indistinguishable (AUC near 0.5); rows with a
planted style (upper case and a stock phrase) must be told apart, and named as the most
synthetic-looking, overall and in the one label where they were planted.
"""

import random
from pathlib import Path

import pytest
from datasets import Dataset

from synth_datasets.checks import CheckContext, Realism, build_check, run_checks
from synth_datasets.realism import auc, two_sample

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"
LABELS = ["card_arrival", "card_linking", "exchange_rate", "lost_or_stolen_card", "top_up_failed", "transfer_timing"]


def rows(per_label: int, skip: int = 0, labels=LABELS):
    ds = Dataset.from_csv(str(DATA / "train.csv"))
    by_label = {label: [] for label in labels}
    for text, label in zip(ds["text"], ds["category"]):
        if label in by_label:
            by_label[label].append(text)
    rng = random.Random(0)
    out = []
    for label in labels:
        texts = by_label[label]
        rng.shuffle(texts)
        out += [(t, label) for t in texts[skip:skip + per_label]]
    return [t for t, _ in out], [label for _, label in out]


def styled(text: str) -> str:
    return text.upper() + " Dear valued bank, kindly assist me at your earliest convenience!"


def test_auc_counts_ties_as_half_and_needs_both_sides():
    assert auc([0.1, 0.9, 0.9], [False, True, False]) == pytest.approx(0.75)
    assert auc([0.2, 0.3], [True, True]) is None


def test_real_rows_against_other_real_rows_are_indistinguishable():
    real, real_labels = rows(40)
    other, other_labels = rows(40, skip=40)
    figures = two_sample(real, other, real_labels, other_labels)
    assert figures["real_rows"] == figures["synthetic_rows"] == 240
    assert 0.4 <= figures["auc"] <= 0.6, figures["auc"]
    assert len(figures["scores"]) == 240 and all(0 <= s <= 1 for s in figures["scores"])
    assert set(figures["per_label"]) == set(LABELS)


def test_rows_with_a_planted_style_are_told_apart_and_named():
    real, real_labels = rows(40)
    other, other_labels = rows(40, skip=40)
    planted = [styled(t) if label == "exchange_rate" else t for t, label in zip(other, other_labels)]
    figures = two_sample(real, planted, real_labels, other_labels, top=5)
    per_label = {label: f["auc"] for label, f in figures["per_label"].items()}
    assert per_label["exchange_rate"] >= 0.95, per_label
    assert max(v for label, v in per_label.items() if label != "exchange_rate") < 0.75, per_label
    assert 0.55 < figures["auc"] < 0.8  # one label in six: the overall figure alone would hide it
    assert all(row["label"] == "exchange_rate" and "Dear valued bank" in row["text"] for row in figures["most_synthetic"])


def test_too_few_rows_give_no_figure_and_say_why():
    figures = two_sample(["a real row"] * 3, ["a synthetic row"] * 50)
    assert figures["auc"] is None and "fewer than 10" in figures["reason"]


def test_realism_check_drops_the_planted_rows_and_keeps_real_ones():
    real, real_labels = rows(30)
    other, other_labels = rows(30, skip=30)
    planted = [styled(t) for t in other[:30]]  # the first label's rows, styled
    ds = Dataset.from_dict({"text": other + planted, "label": other_labels + other_labels[:30]})
    check = build_check("realism", {"real_quantile": 0.99})
    context = CheckContext(real_texts=real, real_labels=real_labels, labels=LABELS)
    kept, report = run_checks(ds, [check], context=context, realism=True, progress=False)
    removed = set(ds["text"]) - set(kept["text"])
    assert set(planted) <= removed  # every styled row
    assert len(removed - set(planted)) <= 0.05 * len(other)  # few real ones
    assert report.results[0].removed == len(ds) - len(kept)
    assert report.realism["before"]["auc"] > report.realism["after"]["auc"]
    assert 0.35 <= report.realism["after"]["auc"] <= 0.65
    assert "scores" not in report.realism["after"]
    assert "Realism: a classifier told synthetic from real rows" in report.realism_lines()
    from synth_datasets.card import render_card

    provenance = {"name": "t", "task": "classification", "checks": report.as_dict(), "generator": {"model": "m"}}
    card = str(render_card({"train": kept}, provenance))
    realism = card[card.index("## Realism"):card.index("## Measured contribution")]
    assert f"ROC AUC {report.realism['after']['auc']:.2f}" in realism
    assert f"Before the checks: {report.realism['before']['auc']:.2f}" in realism
    assert realism.count("\n- ") == 5  # the five most synthetic-looking kept rows


def test_realism_check_needs_real_rows_and_valid_settings():
    with pytest.raises(ValueError, match="real_quantile"):
        Realism(real_quantile=0)
    with pytest.raises(ValueError, match=r"needs the real rows \(seeds\)"):
        Realism().bind(CheckContext())
