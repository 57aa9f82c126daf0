"""compare.tune: which synthetic rows to keep and what they weigh, chosen on the real rows only.

Known answers on real banking77 rows: word salad with random labels must be left out (weight 0);
held-out real rows must be kept; copies of the real rows must not look good just because a copy of
each validation row sits in the training folds (the rows a prompt showed are left out per fold).
"""

import pytest
from synth_datasets.compare import draw_real, run_compare
from synth_datasets.recipe import RecipeError, load_recipe
from synth_datasets.tune import choose, keep_by_margin
from test_compare import DATA, LABELS, _held_out_real, _noise, own_datasets_cache, real_rows, write_recipe  # noqa: F401


@pytest.fixture(scope="module")
def train():
    return real_rows(DATA / "train.csv")


def test_noise_is_left_out(train):
    real = draw_real(train, LABELS, [8], seed=0)[8]
    noise = _noise(real, LABELS, 0)
    choice = choose(real["text"], real["label"], noise["text"], noise["label"], None, LABELS)
    assert choice.weight == 0.0 or choice.margin is not None and keep_by_margin(
        real["text"], real["label"], noise["text"], noise["label"], LABELS, choice.margin).mean() < 0.3, choice
    assert choice.scores["None|1"] < choice.scores["None|0"], choice.scores  # every noisy row at full weight hurts


def test_held_out_real_rows_are_kept(train):
    real = draw_real(train, LABELS, [4], seed=1)[4]
    extra = _held_out_real(train, 12)(real, LABELS, 1)
    choice = choose(real["text"], real["label"], extra["text"], extra["label"], None, LABELS)
    assert choice.weight > 0, choice.scores
    assert max(v for key, v in choice.scores.items() if not key.endswith("|0")) > choice.scores["None|0"] + 0.02


def test_copies_of_the_validation_rows_are_not_counted(train):
    real = draw_real(train, LABELS, [6], seed=2)[6]
    texts, labels = list(real["text"]), list(real["label"])
    copies = [t + "!" for t in texts]  # a paraphrase as close as it gets, shown by the prompt of its real row
    naive = choose(texts, labels, copies, labels, None, LABELS)
    honest = choose(texts, labels, copies, labels, [[t] for t in texts], LABELS)
    assert naive.scores["None|1"] - naive.scores["None|0"] >= 0.1, naive.scores  # copies of the validation rows
    assert honest.scores["None|1"] - honest.scores["None|0"] <= 0.03, honest.scores


def test_compare_tune_records_choices_and_weighs_the_blends(fake_engine, tmp_path, monkeypatch):
    from synth_datasets.students import ClassifierKind

    weights = []
    fit = ClassifierKind.fit

    def spy(self, rows, task, prior=None):
        weights.append(None if "weight" not in rows.column_names else sorted(set(rows["weight"])))
        return fit(self, rows, task, prior=prior)

    monkeypatch.setattr(ClassifierKind, "fit", spy)
    recipe = load_recipe(write_recipe(tmp_path, draws=1, real_per_label=[4], tune=True))
    result = run_compare(recipe, progress=False, echo=None)
    (record,) = result.tuning
    assert record["shown_known"] and record["folds"] == 4 and record["weight"] in (0.0, 0.25, 0.5, 1.0)
    assert set(record["cv_accuracy"]) >= {"None|0", "0.0|0.5", "0.25|1"}
    blended = [w for w, r in zip(weights, result.runs) if r["arm"] == "blended"]
    assert blended and all(w is not None and set(w) <= {1.0, record["weight"]} for w in blended)
    assert all(w is None for w, r in zip(weights, result.runs) if r["arm"] != "blended")
    from synth_datasets.compare import report_markdown

    assert "**Tuned on the real rows**" in report_markdown(result)


def test_tune_needs_the_classifier_student(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, tune=True, student="lm"))
    with pytest.raises(RecipeError, match="compare.tune"):
        run_compare(recipe, progress=False, echo=None)
