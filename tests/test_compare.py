"""compare: real draws, synthetic rows per draw, the four arms, verdicts, outputs and the card.

The student is the real classifier (embedded MiniLM encoder + logistic regression, seconds); the
generator is the fake engine or a hand-made synthesizer whose effect is known in advance.
"""

import json
import random
import statistics
from pathlib import Path

import pytest
import yaml
from datasets import Dataset

from synth_datasets import cli
from synth_datasets.compare import draw_real, report_markdown, run_compare, summarise, verdicts, write_results
from synth_datasets.pipeline import run_recipe
from synth_datasets.recipe import RecipeError, load_recipe

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"
# neighbouring intents, so that a few rows per label leave room to gain or lose accuracy
LABELS = ["card_arrival", "card_delivery_estimate", "card_not_working", "declined_card_payment", "card_linking",
          "activate_my_card"]


@pytest.fixture(autouse=True)
def own_datasets_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def write_recipe(tmp_path, **compare) -> Path:
    data = yaml.safe_load(Path("recipes/banking77.yaml").read_text())
    data["seeds"]["path"] = str(DATA / "train.csv")
    data["seeds"]["labels"] = LABELS
    data["seeds"]["rare"] = {}
    data["engine"] = {"backend": "fake"}
    data["output"] = {"dir": str(tmp_path / "out")}
    data["checks"] = ["parsed", {"length": {"min_chars": 12, "max_chars": 400}}, "exact_dedup"]  # counts below rely on these
    data["diversity"] = False
    data["compare"] = {"test_path": str(DATA / "test.csv"), "real_per_label": [2, 4], "draws": 2,
                       "synthetic_per_label": 4, "ratios": [1.0], "primary_ratio": 1.0, **compare}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def real_rows(path: Path) -> Dataset:
    ds = Dataset.from_csv(str(path))
    return Dataset.from_dict({"text": ds["text"], "label": ds["category"]})


def test_draws_are_nested_seeded_and_per_label():
    train = real_rows(DATA / "train.csv")
    a, b, other = draw_real(train, LABELS, [2, 5], seed=0), draw_real(train, LABELS, [2, 5], seed=0), draw_real(train, LABELS, [2, 5], seed=1)
    assert a[2]["text"] == b[2]["text"] and a[5]["text"] == b[5]["text"]
    assert set(a[2]["text"]) <= set(a[5]["text"])
    assert set(a[5]["text"]) != set(other[5]["text"])
    assert sorted(a[5]["label"]) == sorted(LABELS * 5)
    with pytest.raises(RecipeError, match="fewer than k"):
        draw_real(train, LABELS, [10_000], seed=0)


def test_compare_end_to_end_with_the_fake_engine(fake_engine, tmp_path, capsys):
    recipe_path = write_recipe(tmp_path)
    seen: list[str] = []
    base = fake_engine.responder

    def responder(conversation):
        seen.append(conversation[-1]["content"])
        return base(conversation)

    fake_engine.responder = staticmethod(responder)
    run_recipe(load_recipe(recipe_path))  # the dataset whose card gets the result
    generate_prompts = len(seen)
    assert cli.main(["compare", str(recipe_path)]) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "out" / "compare"
    result = json.loads((folder / "compare.json").read_text())
    # per draw: k=2: real-only + 3 arms x (ratio 1, all 4 rows); k=4: ratio 1 already takes all 4, so no "all"
    assert len(result["runs"]) == 2 * ((1 + 3 * 2) + (1 + 3 * 1))
    assert {r["ratio"] for r in result["runs"] if r["k"] == 4} == {0.0, 1.0}
    assert (folder / "compare.png").read_bytes()[:4] == b"\x89PNG"
    assert "| k | student trained on" in (folder / "compare.md").read_text()
    assert "verdict: k=2:" in out and "card updated" in out
    card = (tmp_path / "out" / "README.md").read_text()
    assert "## Measured contribution" in card and "Not measured yet" not in card and "two-stage" in card
    assert "full results in `compare`" in card  # shown relative to the dataset folder
    # each draw's prompts were built from its own real rows: no test text, and 2 x 2 x 5 x 4 requests
    compare_prompts = seen[generate_prompts:]
    assert len(compare_prompts) == 2 * 2 * len(LABELS) * 4
    test_texts = set(real_rows(DATA / "test.csv")["text"])
    assert not any(t in p for p in compare_prompts for t in test_texts if len(t) > 25)
    train = real_rows(DATA / "train.csv")
    first_draw_k2 = compare_prompts[: len(LABELS) * 4]  # draw 0, k=2 is generated first
    allowed = set(draw_real(train, LABELS, [2], seed=0)[2]["text"])
    shown = {t for t in train["text"] if len(t) > 25 and any(t in p for p in first_draw_k2)}
    assert shown and shown <= allowed


def test_a_rerun_reuses_the_generated_rows(fake_engine, tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, draws=1, real_per_label=[2]))
    run_compare(recipe, progress=False, echo=None)
    calls = list(fake_engine.calls)
    run_compare(recipe, progress=False, echo=None)
    assert fake_engine.calls == calls  # served from the datasets cache


def _noise(real: Dataset, labels, seed: int) -> Dataset:
    """Word salad from the real rows' vocabulary, with random labels: data that can only hurt."""
    rng = random.Random(seed)
    words = " ".join(real["text"]).split()
    rows = [(" ".join(rng.choices(words, k=10)), label) for label in labels for _ in range(8)]  # text unrelated to label
    return Dataset.from_dict({"text": [t for t, _ in rows], "label": [label for _, label in rows]})


def _held_out_real(train: Dataset, per_label: int = 8):
    """Real rows the draw did not use, with their true labels: data that should help."""
    def synthesize(real: Dataset, labels, seed: int) -> Dataset:
        used = set(real["text"])
        rng = random.Random(seed)
        rows = []
        for label in labels:
            pool = [t for t, lab in zip(train["text"], train["label"]) if lab == label and t not in used]
            rows += [(t, label) for t in rng.sample(pool, per_label)]
        return Dataset.from_dict({"text": [t for t, _ in rows], "label": [label for _, label in rows]})
    return synthesize


def test_verdict_says_did_not_beat_when_synthetic_rows_are_noise(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, real_per_label=[2], draws=3, ratios=[4.0], primary_ratio=4.0,
                                        synthetic_per_label=8))
    result = run_compare(recipe, synthesize=_noise, progress=False, echo=None)
    (verdict,) = result.verdicts
    assert verdict["outcome"] == "hurt" and not verdict["helped"] and verdict["delta"] < 0
    assert "did not beat real-only: it adds noise" in verdict["text"]
    syn_only = next(r for r in result.summary if r["arm"] == "synthetic-only" and r["ratio"] == 4.0)
    real_only = next(r for r in result.summary if r["arm"] == "real-only")
    assert syn_only["accuracy"] < real_only["accuracy"] - 0.2


def test_verdict_says_added_when_synthetic_rows_are_more_real_data(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, real_per_label=[2], draws=3, ratios=[2.0], primary_ratio=2.0))
    result = run_compare(recipe, synthesize=_held_out_real(real_rows(DATA / "train.csv")), progress=False, echo=None)
    (verdict,) = result.verdicts
    assert verdict["outcome"] == "helped" and verdict["delta"] > verdict["delta_sd"]
    assert "synthetic data added +" in verdict["text"]
    # every record counts what it trained on: k=2 x 6 labels real rows, 2 x that many synthetic ones
    for run in result.runs:
        expected_real = {"synthetic-only": 0}.get(run["arm"], 12)
        expected_syn = {"real-only": 0}.get(run["arm"], 24 if run["ratio"] == 2.0 else 48)
        assert (run["real_rows"], run["synthetic_rows"]) == (expected_real, expected_syn), run
    write_results(result, tmp_path / "res")
    assert json.loads((tmp_path / "res" / "compare.json").read_text())["verdicts"][0]["helped"] is True


@pytest.mark.slow  # 36 students: about 2 minutes
def test_synthetic_rows_that_are_real_rows_are_worth_about_as_many_real_rows(tmp_path):
    """At k=2, blended 2x adds 4 held-out real rows per label: the same draw's real-only student at
    k=6 has seen as many real rows, so the blend should be worth about +4 real rows per label."""
    recipe = load_recipe(write_recipe(tmp_path, real_per_label=[2, 8], draws=3, ratios=[2.0], primary_ratio=2.0,
                                      synthetic_per_label=20))
    result = run_compare(recipe, synthesize=_held_out_real(real_rows(DATA / "train.csv"), 20), progress=False, echo=None)
    k2 = result.verdicts[0]
    assert k2["k"] == 2 and k2["worth"] is not None, k2
    worth = k2["worth"]
    assert worth["worth_draws"] + worth["worth_above"] + worth["worth_below"] == 3
    assert worth["worth_below"] == 0 and worth["worth_draws"] >= 2, worth  # never below real-only at k=2
    assert 2.0 <= worth["worth"] <= 6.0, worth  # about the 4 real rows it was given (measured: +4.1 ± 1.3, 2 draws)
    assert "real rows per label" in k2["text"] and "worth, real rows per label" in report_markdown(result)


def test_summary_pairs_each_arm_with_real_only_of_the_same_draw():
    runs = [
        {"draw": 0, "k": 5, "arm": "real-only", "ratio": 0.0, "synthetic_rows": 0, "accuracy": 0.80, "macro_f1": 0.8},
        {"draw": 1, "k": 5, "arm": "real-only", "ratio": 0.0, "synthetic_rows": 0, "accuracy": 0.60, "macro_f1": 0.6},
        {"draw": 0, "k": 5, "arm": "blended", "ratio": 1.0, "synthetic_rows": 5, "accuracy": 0.81, "macro_f1": 0.8},
        {"draw": 1, "k": 5, "arm": "blended", "ratio": 1.0, "synthetic_rows": 5, "accuracy": 0.61, "macro_f1": 0.6},
    ]
    summary = summarise(runs)
    blended = next(r for r in summary if r["arm"] == "blended")
    # unpaired, the spread of accuracies (0.14) would swamp the +1 point; paired, every draw gained 1 point
    assert blended["delta"] == pytest.approx(0.01) and blended["delta_sd"] == pytest.approx(0.0)
    assert verdicts(summary, 1.0)[0]["outcome"] == "helped"


def _summary(gains: list[float]):
    runs = []
    for d, gain in enumerate(gains):
        runs.append({"draw": d, "k": 5, "arm": "real-only", "ratio": 0.0, "synthetic_rows": 0, "accuracy": 0.8, "macro_f1": 0.8})
        runs.append({"draw": d, "k": 5, "arm": "blended", "ratio": 1.0, "synthetic_rows": 5, "accuracy": 0.8 + gain, "macro_f1": 0.8})
    return summarise(runs)


@pytest.mark.parametrize("gains,outcome,words", [
    ([0.010, 0.011, 0.012], "helped", "added +1.1 ± 0.1 points"),
    ([-0.03, -0.04, -0.035], "hurt", "did not beat real-only: it adds noise (-3.5"),
    ([0.02, -0.01, 0.005], "inconclusive", "did not beat real-only clearly: +0.5"),  # positive, but within the spread
    ([0.05], "inconclusive", "one draw only"),  # a single draw never "helps"
])
def test_verdict_outcomes(gains, outcome, words):
    (verdict,) = verdicts(_summary(gains), 1.0)
    assert verdict["outcome"] == outcome and words in verdict["text"]


class _SpyStudent:
    """Records what each fit got, to show that two-stage training really starts from the synthetic model."""

    def __init__(self):
        self.fits = []

    def fit(self, rows, task, prior=None):
        model = {"rows": len(rows), "prior": prior}
        self.fits.append(model)
        return model

    def predict(self, model, rows, task):
        return ["card_arrival"] * len(rows)

    def describe(self):
        return {"kind": "spy"}


def test_two_stage_continues_from_the_synthetic_only_model_and_ratios_without_rows_are_skipped(tmp_path):
    spy = _SpyStudent()
    recipe = load_recipe(write_recipe(tmp_path, real_per_label=[2], draws=1, ratios=[1.0, 4.0], primary_ratio=1.0))
    # 5 synthetic rows per label: ratio 1 (2 rows) runs, ratio 4 (8 rows) cannot, "all" (5 rows) runs
    result = run_compare(recipe, synthesize=_held_out_real_n(5), student=spy, progress=False, echo=None)
    arms = [(r["arm"], r["ratio"]) for r in result.runs]
    assert arms == [("real-only", 0.0), ("synthetic-only", 1.0), ("blended", 1.0), ("two-stage", 1.0),
                    ("synthetic-only", None), ("blended", None), ("two-stage", None)]
    assert result.skipped == [{"draw": 0, "k": 2, "ratio": 4.0, "kept": 30}]
    assert "Not run: k=2 at 4x (draws 0): the checks left fewer than 8 synthetic rows for some labels" in report_markdown(result)
    two_stage = [f for f in spy.fits if f["prior"] is not None]
    synthetic_only = [spy.fits[1], spy.fits[4]]
    assert [f["prior"] for f in two_stage] == synthetic_only and all(f["rows"] == 12 for f in two_stage)


def _held_out_real_n(n: int):
    train = real_rows(DATA / "train.csv")

    def synthesize(real, labels, seed):
        rows = [(t, lab) for lab in labels for t in [x for x, y in zip(train["text"], train["label"]) if y == lab][-n:]]
        return Dataset.from_dict({"text": [t for t, _ in rows], "label": [lab for _, lab in rows]})
    return synthesize


def test_a_ratio_runs_when_a_few_rows_are_missing_and_says_how_many_it_used(tmp_path):
    def one_short(real, labels, seed):
        full = _held_out_real_n(4)(real, labels, seed)
        drop = full["label"].index(labels[0])
        return full.select([i for i in range(len(full)) if i != drop])  # first label: 3 rows, others 4

    recipe = load_recipe(write_recipe(tmp_path, real_per_label=[4], draws=1, ratios=[1.0], synthetic_per_label=4))
    result = run_compare(recipe, synthesize=one_short, student=_SpyStudent(), progress=False, echo=None)
    assert not result.skipped  # 1 of 24 rows missing: within the default 5%
    blended = next(r for r in result.runs if r["arm"] == "blended" and r["ratio"] == 1.0)
    assert blended["synthetic_rows"] == 23
    strict = load_recipe(write_recipe(tmp_path, real_per_label=[4], draws=1, ratios=[1.0], synthetic_per_label=4,
                                      max_shortfall=0.0))
    result = run_compare(strict, synthesize=one_short, student=_SpyStudent(), progress=False, echo=None)
    assert [s["ratio"] for s in result.skipped] == [1.0]


def test_smallest_k_generates_once_per_draw_from_rows_every_k_contains(tmp_path):
    calls = []

    def synthesize(real, labels, seed):
        calls.append((seed, sorted(real["text"])))
        return _held_out_real_n(6)(real, labels, seed)

    recipe = load_recipe(write_recipe(tmp_path, real_per_label=[4, 2], draws=2, generate_from="smallest_k"))
    result = run_compare(recipe, synthesize=synthesize, student=_SpyStudent(), progress=False, echo=None)
    train = real_rows(DATA / "train.csv")
    assert calls == [(seed, sorted(draw_real(train, LABELS, [2, 4], seed)[2]["text"])) for seed in (0, 1)]
    assert [(g["draw"], g["k"], g["generated_from_k"]) for g in result.generation] == [
        (0, 2, 2), (0, 4, 2), (1, 2, 2), (1, 4, 2)]
    assert {r["k"] for r in result.runs} == {2, 4}
    each = run_compare(load_recipe(write_recipe(tmp_path, real_per_label=[4, 2], draws=1)), synthesize=synthesize,
                       student=_SpyStudent(), progress=False, echo=None)
    assert [g["generated_from_k"] for g in each.generation] == [2, 4] and len(calls) == 4


def test_smallest_k_checks_each_k_against_that_ks_own_real_rows(tmp_path):
    """A synthesizer that takes `check_real` is called once per k: generation from the smallest k's
    rows (served from the cache in a recipe), checks against the k's rows the student trains on."""
    calls = []

    def synthesize(real, labels, seed, check_real=None):
        calls.append((seed, sorted(real["text"]), sorted(check_real["text"])))
        return _held_out_real_n(6)(real, labels, seed)

    recipe = load_recipe(write_recipe(tmp_path, real_per_label=[4, 2], draws=1, generate_from="smallest_k"))
    result = run_compare(recipe, synthesize=synthesize, student=_SpyStudent(), progress=False, echo=None)
    drawn = draw_real(real_rows(DATA / "train.csv"), LABELS, [2, 4], 0)
    assert calls == [(0, sorted(drawn[2]["text"]), sorted(drawn[k]["text"])) for k in (2, 4)]
    assert [(g["k"], g["generated_from_k"]) for g in result.generation] == [(2, 2), (4, 2)]


def test_recipe_synthesizer_checks_against_check_real(monkeypatch, tmp_path):
    """The recipe's synthesizer builds its prompts from `real` and the checks' context from `check_real`."""
    import importlib

    import synth_datasets.checks as checks_module
    import synth_datasets.compare as compare_module

    pipeline_module = importlib.import_module("synth_datasets.pipeline")  # where the Runner calls generate()

    seen = {}

    def fake_generate(prompts, gen, batch_size=None, desc=None):
        seen["generations"] = seen.get("generations", 0) + 1
        return Dataset.from_dict({"text": ["x"], "label": [LABELS[0]], "parse_error": [None]})

    def fake_run_checks(ds, checks, context=None, diversity=False, **columns):
        seen["context_real"] = sorted(context.real_texts)
        return ds, checks_module.CheckReport()

    monkeypatch.setattr(pipeline_module, "generate", fake_generate)
    monkeypatch.setattr(checks_module, "run_checks", fake_run_checks)
    monkeypatch.setattr("synth_datasets.pipeline.file_backed", lambda prompts: prompts)
    recipe = load_recipe(write_recipe(tmp_path))
    synthesize = compare_module.recipe_synthesizer(recipe, per_label=1)
    drawn = draw_real(real_rows(DATA / "train.csv"), LABELS, [1, 3], 0)
    synthesize(drawn[1], LABELS, 0, check_real=drawn[3])
    assert seen["context_real"] == sorted(drawn[3]["text"])
    synthesize(drawn[1], LABELS, 0)
    assert seen["context_real"] == sorted(drawn[1]["text"])
    assert seen["generations"] == 1  # the same prompts are generated once, checked twice
    synthesize(drawn[1], LABELS, 1)
    assert seen["generations"] == 2  # another seed, other prompts


def test_compare_needs_a_test_split(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, test_path=None))
    with pytest.raises(RecipeError, match="compare.test_path"):
        run_compare(recipe)


@pytest.mark.parametrize("field,value,message", [
    ("primary_ratio", 3.0, "not among ratios"),
    ("student", "svm", "not a known student"),
    ("real_per_label", [0], "k >= 1"),
    ("generate_from", "largest_k", "choose each_k or smallest_k"),
    ("synthetic_per_label", 3, "primary blend 1x at k=4, which needs 4 kept rows per label"),
])
def test_bad_compare_settings_name_the_field(tmp_path, field, value, message):
    with pytest.raises(RecipeError, match=f"compare.{field}.*{message}"):
        load_recipe(write_recipe(tmp_path, **{field: value}))


def test_the_shipped_compare_recipe_asks_exactly_what_it_asked_before_the_task_seam():
    """The prompts `compare` builds for recipes/banking77-compare.yaml, pinned by the row ids (hashes
    of the full requests) that 8d47303 built: the wording moved from code into the recipe, and the
    draws, seeds shown, personas and order must not have moved with it. A change here invalidates
    every cached generation and the published figures."""
    from synth_datasets.compare import prepare
    from synth_datasets.pipeline import build_generation

    recipe = load_recipe("recipes/banking77-compare.yaml")
    prep = prepare(recipe)
    pinned = {0: ["b13e8d09acff474f", "914327089c69affa", "0f6fae03676090ba"],
              1: ["0c7e4d10337f6b9b", "bcd1da6c2d5da344", "1fcaeff031171606"]}
    for draw, ids in pinned.items():
        real = draw_real(prep.train, prep.task.labels, [5, 10, 20], recipe.seeds.seed + draw)[5]
        prompts, gen = build_generation(recipe, prep.task, real, recipe.seeds.seed + draw,
                                        per_label=recipe.compare.synthetic_per_label)
        assert len(prompts) == 77 * 30 and prompts["row_id"][:3] == ids


def test_a_lower_is_better_primary_metric_counts_a_drop_as_a_gain_and_is_shown_as_it_is():
    """An NLL decides the instruction task's verdict: blended students with a lower NLL than
    real-only of the same draw helped; the table shows NLL as is and ROUGE-L in %."""
    from synth_datasets.compare import markdown_table

    runs = []
    for d, (base, blend) in enumerate([(2.60, 2.50), (2.70, 2.61), (2.55, 2.44)]):
        runs.append({"draw": d, "k": 20, "arm": "real-only", "ratio": 0.0, "synthetic_rows": 0, "nll": base, "rouge_l": 0.2})
        runs.append({"draw": d, "k": 20, "arm": "blended", "ratio": 1.0, "synthetic_rows": 20, "nll": blend, "rouge_l": 0.25})
    summary = summarise(runs, ("nll", "rouge_l"), lower_is_better=("nll",))
    blended = next(r for r in summary if r["arm"] == "blended")
    assert blended["delta"] == pytest.approx(0.1)  # real-only minus blended: positive is better
    (verdict,) = verdicts(summary, 1.0, scale=1, unit="NLL/token gained", digits=3)
    assert verdict["outcome"] == "helped" and "+0.100 ± 0.010 NLL/token gained" in verdict["text"]
    table = markdown_table(summary, ("nll", "rouge_l"), {"nll": "NLL/token", "rouge_l": "ROUGE-L"}, ["rouge_l"], ["nll"])
    assert "| NLL/token | ROUGE-L % | Δ NLL/token vs real-only (gain, lower is better) |" in table
    assert "| 2.517 ± 0.086 | 25.0 ± 0.0 | +0.100 ± 0.010 |" in table
    # the same numbers read as higher-is-better would be a loss
    assert summarise(runs, ("nll", "rouge_l"))[-1]["delta"] == pytest.approx(-0.1)


def _curve_runs(real: dict[int, list[float]], arm_scores: dict[int, list[float]], k: int = 5) -> list[dict]:
    """real-only scores per k (one per draw) and a blended 1x arm at `k` (one score per draw)."""
    runs = []
    for kk, scores in real.items():
        for d, score in enumerate(scores):
            runs.append({"draw": d, "k": kk, "arm": "real-only", "ratio": 0.0, "synthetic_rows": 0, "accuracy": score, "macro_f1": score})
    for d, score in enumerate(arm_scores[k]):
        runs.append({"draw": d, "k": k, "arm": "blended", "ratio": 1.0, "synthetic_rows": 5, "accuracy": score, "macro_f1": score})
    return runs


def test_worth_in_real_rows_reads_each_draws_real_only_curve():
    from synth_datasets.compare import markdown_table

    real = {5: [0.50, 0.40, 0.45], 10: [0.60, 0.50, 0.55], 20: [0.70, 0.60, 0.65]}
    # draw 0 scores as its real-only at k=10 (+5 rows), draw 1 halfway to k=10 (+2.5), draw 2 at k=15 (+10)
    summary = summarise(_curve_runs(real, {5: [0.60, 0.45, 0.60]}))
    blended = next(r for r in summary if r["arm"] == "blended")
    assert blended["worth"] == pytest.approx(17.5 / 3) and blended["worth_draws"] == 3
    assert blended["worth_sd"] == pytest.approx(statistics.stdev([5, 2.5, 10]))
    (verdict, *_) = verdicts(summary, 1.0)
    assert "worth +5.8 ± 3.8 real rows per label" in verdict["text"] and verdict["worth"]["worth_draws"] == 3
    assert "| +5.8 ± 3.8 |" in markdown_table(summary)
    # equal to real-only at its own k: worth nothing
    same = next(r for r in summarise(_curve_runs(real, {5: [0.50, 0.40, 0.45]})) if r["arm"] == "blended")
    assert same["worth"] == pytest.approx(0.0)


def test_worth_needs_two_k_and_says_so():
    from synth_datasets.compare import CompareResult

    summary = summarise(_curve_runs({5: [0.5, 0.4]}, {5: [0.6, 0.5]}))
    assert "worth_draws" not in next(r for r in summary if r["arm"] == "blended")
    (verdict,) = verdicts(summary, 1.0)
    assert verdict["worth"] is None and "worth" not in verdict["text"]
    result = CompareResult(summary=summary, verdicts=[verdict], setup={
        "student": {"kind": "classifier"}, "labels": ["a", "b"], "test_rows": 10, "draws": 2, "real_per_label": [5],
        "synthetic_per_label": 5})
    assert "Worth in real rows per label: not stated, it needs real-only students at two or more k" in report_markdown(result)


def test_worth_says_plainly_when_the_real_only_curve_does_not_span_the_score():
    real = {5: [0.50, 0.40, 0.45], 10: [0.60, 0.50, 0.55]}
    summary = summarise(_curve_runs(real, {5: [0.65, 0.30, 0.55]}))  # above k=10; below k=5; +5 exactly
    blended = next(r for r in summary if r["arm"] == "blended")
    assert (blended["worth_above"], blended["worth_below"], blended["worth_draws"]) == (1, 1, 1)
    assert blended["worth"] == pytest.approx(5.0)
    (verdict, *_) = verdicts(summary, 1.0, per="")
    assert "the real-only curve (k = 5 to 10) does not span its score" in verdict["text"]
    assert "above real-only at k=10 in 1 of 3 draws (worth more than +5 real rows)" in verdict["text"]
    assert "below real-only at k=5 in 1 of 3 draws (worth less than +0 real rows)" in verdict["text"]
    assert "in the other 1 draw it was worth +5.0 ± 0.0 real rows" in verdict["text"]


def test_worth_with_a_dip_in_the_real_only_curve_and_a_lower_is_better_metric():
    from synth_datasets.compare import _k_reaching

    # a dip at k=10 is noise: the curve is made non-decreasing, so 0.58 is first reached between 10 and 20
    assert _k_reaching([(5, 0.60), (10, 0.55), (20, 0.70)], 0.65) == pytest.approx(10 + 10 * 0.05 / 0.10)
    assert _k_reaching([(5, 0.60), (10, 0.55), (20, 0.70)], 0.60) == 5  # reached at k=5 already
    assert _k_reaching([(5, 0.60), (10, 0.55), (20, 0.70)], 0.58) == "below"
    assert _k_reaching([(5, 0.60), (10, 0.55), (20, 0.70)], 0.71) == "above"
    runs = []
    for d in range(2):
        runs += [{"draw": d, "k": 5, "arm": "real-only", "ratio": 0.0, "synthetic_rows": 0, "nll": 3.0},
                 {"draw": d, "k": 10, "arm": "real-only", "ratio": 0.0, "synthetic_rows": 0, "nll": 2.0},
                 {"draw": d, "k": 5, "arm": "blended", "ratio": 1.0, "synthetic_rows": 5, "nll": 2.5}]
    blended = next(r for r in summarise(runs, ("nll",), ("nll",)) if r["arm"] == "blended")
    assert blended["worth"] == pytest.approx(2.5)  # a lower NLL halfway to k=10's
