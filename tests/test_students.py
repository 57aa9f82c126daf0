"""Classifier student (real encoder, real fit), shipped evaluate metrics, and mixing."""

import math

import numpy as np
import pytest
from datasets import Dataset

from synth_datasets.evaluation import load_metric, score
from synth_datasets.mix import mix
from synth_datasets.students import ClassifierConfig, ClassifierStudent, train_classifier
from synth_datasets.students.classifier import fit_head

TEXTS = ["my card has not arrived yet", "when will my new card be delivered", "still waiting for the card in the post",
         "what is the exchange rate today", "how much is a dollar in euros", "which rate do you use to convert currency",
         "my pin is blocked", "I entered the wrong pin three times", "unblock my pin please"]
LABELS = ["card_arrival"] * 3 + ["exchange_rate"] * 3 + ["pin_blocked"] * 3


def test_classifier_trains_predicts_saves_and_loads_back_without_pickle(tmp_path):
    student = train_classifier(TEXTS, LABELS, ClassifierConfig(c=30))
    # the fit starts at ~1e-3 noise around zero; trained weights are orders of magnitude larger
    assert math.isfinite(student.history["final_loss"]) and np.abs(student.weight).max() > 0.5
    new = ["is there a problem with my card delivery", "what rate will I get for pounds", "pin got locked"]
    assert student.predict(new) == ["card_arrival", "exchange_rate", "pin_blocked"]
    folder = student.save(tmp_path / "student")
    assert sorted(p.name for p in folder.iterdir()) == ["head.safetensors", "student_config.json"]
    loaded = ClassifierStudent.load(folder)
    assert loaded.predict(new) == student.predict(new) and loaded.predict(TEXTS) == LABELS  # fits its own rows
    assert np.array_equal(loaded.weight, student.weight)


def test_fit_matches_a_hand_checkable_optimum():
    # two separable points, tiny C: the penalty dominates and the weights stay near zero; large C: fits them
    x, y = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1])
    w_small, _, _ = fit_head(x, y, 2, c=1e-4)
    w_large, _, loss = fit_head(x, y, 2, c=1e4)
    assert np.abs(w_small).max() < 1e-3 < np.abs(w_large).max()
    assert (x @ w_large.T).argmax(axis=1).tolist() == [0, 1] and loss < 0.1


def test_two_stage_prior_pulls_the_head_towards_the_first_stage():
    first = train_classifier(TEXTS, LABELS, ClassifierConfig(c=1.0))
    few_texts, few_labels = TEXTS[::3], LABELS[::3]
    alone = train_classifier(few_texts, few_labels, ClassifierConfig(c=1.0), label_names=first.labels)
    staged = train_classifier(few_texts, few_labels, ClassifierConfig(c=1.0), label_names=first.labels, prior=first)
    assert np.linalg.norm(staged.weight - first.weight) < np.linalg.norm(alone.weight - first.weight)
    assert staged.history["two_stage"] and not alone.history["two_stage"]


def test_label_names_fix_the_label_set_and_unknown_labels_fail():
    student = train_classifier(TEXTS[:6], LABELS[:6], label_names=["card_arrival", "exchange_rate", "pin_blocked"])
    assert student.labels == ["card_arrival", "exchange_rate", "pin_blocked"] and student.weight.shape[0] == 3
    with pytest.raises(ValueError, match="not in label_names"):
        train_classifier(TEXTS, LABELS, label_names=["card_arrival"])
    with pytest.raises(ValueError, match="c must be > 0"):
        ClassifierConfig(c=0)


def test_shipped_metrics_load_offline_and_agree_with_hand_counts():
    preds, refs = [0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0]
    # class 0: tp1 fp1 fn1 -> 0.5; class 1: tp1 fp0 fn1 -> 2/3; class 2: tp2 fp1 fn0 -> 0.8
    assert score("classification", preds, refs) == pytest.approx({"accuracy": 4 / 6, "macro_f1": (0.5 + 2 / 3 + 0.8) / 3})
    assert load_metric("accuracy").compute(predictions=[1], references=[1]) == {"accuracy": 1.0}
    with pytest.raises(ValueError, match="no shipped metric"):
        load_metric("bleu")


def test_mix_takes_ratio_per_label_and_marks_the_source():
    real = Dataset.from_dict({"text": ["r1", "r2", "r3"], "label": ["a", "a", "b"]})
    syn = Dataset.from_dict({"text": [f"s{i}" for i in range(10)], "label": ["a"] * 5 + ["b"] * 5})
    mixed = mix(real, syn, ratio=2.0, seed=1)
    synthetic = [(t, label) for t, label, s in zip(mixed["text"], mixed["label"], mixed["source"]) if s == "synthetic"]
    assert sum(1 for _, label in synthetic if label == "a") == 4 and sum(1 for _, label in synthetic if label == "b") == 2
    assert mixed["source"].count("real") == 3
    assert mix(real, syn, ratio=2.0, seed=1)["text"] == mixed["text"]  # seeded
    assert len(mix(real, syn)) == 13
    with pytest.raises(ValueError, match="ratio must be >= 0"):
        mix(real, syn, ratio=-1)
