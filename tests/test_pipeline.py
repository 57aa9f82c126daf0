"""The whole recipe path with the fake engine: seeds -> prompts -> generate -> checks -> Hub layout."""

import json
import random
from collections import Counter
from pathlib import Path

import pytest
import yaml
from datasets import load_dataset

from synth_datasets import cli
from synth_datasets.pipeline import run_recipe
from synth_datasets.recipe import RecipeError, load_recipe

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77" / "train.csv"


@pytest.fixture(autouse=True)
def own_datasets_cache(tmp_path, monkeypatch):
    """Each test gets its own datasets cache: the fake engine's answers change between tests while
    its configuration does not, so a shared cache would serve one test's rows to another."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def write_recipe(tmp_path, **overrides) -> Path:
    data = yaml.safe_load(Path("recipes/banking77.yaml").read_text())
    data["seeds"]["path"] = str(SHARED)
    data["engine"] = {"backend": "fake"}
    data["output"] = {"dir": str(tmp_path / "out")}
    data["checks"] = ["parsed", {"length": {"min_chars": 12, "max_chars": 400}}, "exact_dedup"]  # counts below rely on these
    data["diversity"] = False
    # nor realism: both embed with torch, which hangs in the forked processes of test_bad_input's
    # two-runs test once the parent has used it (tests/test_realism.py covers the figures)
    data["realism"] = False
    for section, values in overrides.items():
        data[section].update(values)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_recipe_runs_end_to_end_and_loads_back(fake_engine, tmp_path):
    recipe = load_recipe(write_recipe(tmp_path))
    folder, report = run_recipe(recipe)
    loaded = load_dataset(str(folder))
    train = loaded["train"]
    # balancing: 5 labels with 6 seeds get 10 rows each, 3 rare labels with 2 seeds get 14 each
    assert len(train) == 5 * 10 + 3 * 14
    assert Counter(train["label"])["pin_blocked"] == 14 and Counter(train["label"])["card_arrival"] == 10
    assert [r.removed for r in report.results] == [0, 0, 0]
    provenance = json.loads((folder / "provenance.json").read_text())
    assert provenance["seeds"]["count"] == 5 * 6 + 3 * 2
    assert provenance["requests"] == 92 and provenance["rows"] == {"generated": 92, "kept": 92}


def test_card_states_provenance_and_hub_yaml(fake_engine, tmp_path):
    folder, _ = run_recipe(load_recipe(write_recipe(tmp_path)))
    card = (folder / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert "synthetic" in header["tags"]
    (data_file,) = (folder / "data").glob("*.parquet")
    assert header["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": f"data/{data_file.name}"}]}]
    assert header["task_categories"] == ["text-classification"]
    for needle in ("temperature=0.9", "max_tokens=96", "\"maxLength\": 240", "36 real rows", "| pin_blocked | 2 | 14 | 14 |",
                   "| exact_dedup |", "CC BY 4.0", "Write one new message", '"enum"'):
        assert needle in card, needle


def test_filters_and_parse_errors_are_counted_in_the_card(fake_engine, tmp_path, monkeypatch):
    fake_engine.constrained = False  # plays an engine whose output no grammar constrains
    calls = {"n": 0}

    def responder(conv):
        calls["n"] += 1
        if calls["n"] % 4 == 0:
            return "Sure! Here is a message:"
        if calls["n"] % 4 == 1:
            return json.dumps({"text": "The same text every time", "label": "atm_support"})
        return json.dumps({"text": f"unique message number {calls['n']}", "label": "atm_support"})

    monkeypatch.setattr(fake_engine, "responder", staticmethod(responder))
    folder, report = run_recipe(load_recipe(write_recipe(tmp_path)))
    removed = {r.check["name"]: r.removed for r in report.results}
    assert removed == {"parsed": 23, "length": 0, "exact_dedup": 22}
    card = (folder / "README.md").read_text()
    assert "| parsed | - | 92 | 23 | 69 |" in card
    assert "| invalid JSON | 23 |" in card
    assert len(load_dataset(str(folder))["train"]) == 92 - 23 - 22


def test_rerun_with_other_data_loads_the_new_rows_not_a_stale_cache(fake_engine, tmp_path):
    folder, _ = run_recipe(load_recipe(write_recipe(tmp_path)))
    assert len(load_dataset(str(folder))["train"]) == 92
    folder, _ = run_recipe(load_recipe(write_recipe(tmp_path, task={"balance_to": 10})))
    assert len(list((folder / "data").glob("*.parquet"))) == 1
    assert len(load_dataset(str(folder))["train"]) == 5 * 4 + 3 * 8


def test_draw_seeds_is_seeded_and_respects_rare(fake_engine):
    from synth_datasets.tasks.classification import Classification, ClassificationSeeds

    def task(seed, labels, rare):
        seeds = ClassificationSeeds(path=str(SHARED), label_column="category", labels=labels, per_label=4, rare=rare, seed=seed)
        real, dropped = Classification(seeds=seeds).standardize(load_dataset("csv", data_files=str(SHARED), split="train"), "x")
        return Classification(seeds=seeds).with_data(real), real

    t, real = task(3, ["atm_support", "card_arrival"], {"atm_support": 1})
    a, b = t.draw_seeds(real), t.draw_seeds(real)
    assert a["text"] == b["text"] and Counter(a["label"]) == {"atm_support": 1, "card_arrival": 4}
    other, _ = task(4, ["atm_support", "card_arrival"], {"atm_support": 1})
    assert set(other.draw_seeds(real)["text"]) != set(a["text"])
    with pytest.raises(RecipeError, match="not in the data"):
        task(0, ["no_such_intent"], {})


def test_cli_help_and_bad_recipe_exit_code(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0 and "generate" in capsys.readouterr().out
    bad = write_recipe(tmp_path, generator={"temperature": "hot"})
    assert cli.main(["generate", str(bad)]) == 2
    assert "generator.temperature: expected a number, got 'hot'" in capsys.readouterr().err


def test_cli_generate_with_fake_engine(fake_engine, tmp_path, capsys):
    assert cli.main(["generate", str(write_recipe(tmp_path)), "--output", str(tmp_path / "cli-out")]) == 0
    out = capsys.readouterr().out
    assert "exact_dedup" in out and "cli-out" in out
    assert "generation: 92 requests" in out and "parse failures: none" in out
    assert "the engine ran 92 of them in this invocation" in out and "generated tokens/s" in out
    assert len(load_dataset(str(tmp_path / "cli-out"))["train"]) == 92


def test_rerunning_a_recipe_is_served_from_the_cache(fake_engine, tmp_path):
    recipe = load_recipe(write_recipe(tmp_path))
    run_recipe(recipe)
    assert fake_engine.calls == [92]
    first = json.loads((recipe.resolve(recipe.output.dir) / "provenance.json").read_text())["engine_work"]
    assert first["requests"] == 92 and first["completion_tokens"] > 0 and first["seconds"] >= 0
    folder, _ = run_recipe(recipe)
    assert fake_engine.calls == [92]  # same recipe, same prompts: no engine call
    assert len(load_dataset(str(folder))["train"]) == 92
    provenance = json.loads((folder / "provenance.json").read_text())
    assert provenance["engine_work"]["requests"] == 0 and provenance["engine_work"]["generated_tokens_per_second"] is None
    assert "every row came from a cache" in (folder / "README.md").read_text()
    assert "generated nothing this time" in cli.run_summary(provenance)
    run_recipe(load_recipe(write_recipe(tmp_path, generator={"temperature": 0.5})))
    assert fake_engine.calls == [92, 92]


def test_save_hub_layout_with_a_hand_written_provenance(tmp_path):
    from datasets import Dataset, DatasetDict

    from synth_datasets import save_hub_layout

    ds = DatasetDict(train=Dataset.from_dict({"text": ["a", "b"], "label": ["x", "y"]}))
    provenance = {"name": "mine", "generator": {"model": "org/model"}}
    folder = save_hub_layout(ds, tmp_path / "mine", provenance)
    assert load_dataset(str(folder))["train"]["text"] == ["a", "b"]
    assert "`org/model`" in (folder / "README.md").read_text()
    assert "settings" not in json.dumps(provenance)  # the caller's record is left as it was


def test_nothing_to_generate_is_a_clear_error(fake_engine, tmp_path):
    with pytest.raises(RecipeError, match="task: nothing to generate"):
        run_recipe(load_recipe(write_recipe(tmp_path, task={"balance_to": 2})))


def test_a_label_left_without_seeds_is_still_generated_from_its_name(fake_engine, tmp_path):
    folder, _ = run_recipe(load_recipe(write_recipe(tmp_path, seeds={"rare": {"atm_support": 0}})))
    provenance = json.loads((folder / "provenance.json").read_text())
    atm = next(r for r in provenance["labels"] if r["label"] == "atm_support")
    assert atm == {"label": "atm_support", "seeds": 0, "requested": 16, "kept": 16}
    rows = load_dataset(str(folder))["train"].filter(lambda r: r["label"] == "atm_support")
    assert "Real messages" not in rows[0]["messages"][-1]["content"]


def test_checks_that_remove_everything_are_reported_and_the_cli_fails(fake_engine, tmp_path, monkeypatch, capsys):
    fake_engine.constrained = False  # plays an engine whose output no grammar constrains
    monkeypatch.setattr(fake_engine, "responder", staticmethod(lambda conv: "no json at all"))
    path = write_recipe(tmp_path)
    folder, report = run_recipe(load_recipe(path))
    assert [(r.rows_in, r.removed, r.kept) for r in report.results] == [(92, 92, 0), (0, 0, 0), (0, 0, 0)]
    assert "| parsed | - | 92 | 92 | 0 |" in (folder / "README.md").read_text()
    assert cli.main(["generate", str(path)]) == 1
    assert "no row survived the checks" in capsys.readouterr().err


def test_resumable_recipe_run_and_stale_run_refusal_from_the_cli(fake_engine, tmp_path, capsys):
    path = write_recipe(tmp_path, output={"run_dir": str(tmp_path / "run")}, generator={"shard_size": 40})
    assert cli.main(["generate", str(path)]) == 0
    assert fake_engine.calls == [40, 40, 12]
    assert len(list((tmp_path / "run" / "shards").glob("*.parquet"))) == 3
    hotter = write_recipe(tmp_path, output={"run_dir": str(tmp_path / "run")}, generator={"shard_size": 40, "temperature": 0.3})
    assert cli.main(["generate", str(hotter)]) == 2
    assert "--overwrite-run" in capsys.readouterr().err
    assert cli.main(["generate", str(hotter), "--overwrite-run"]) == 0
    assert fake_engine.calls == [40, 40, 12, 40, 40, 12]


def test_recipe_quality_checks_use_the_seeds_and_the_test_split(fake_engine, tmp_path, monkeypatch):
    """Planted in the generator's answers: a seed copied verbatim, a test message, meta-text, a
    near-duplicate. The recipe's checks get the seeds and compare.test_path without being told."""
    from synth_datasets.pipeline import load_seeds

    recipe_path = write_recipe(tmp_path, compare={"test_path": str(SHARED.with_name("test.csv"))})
    data = yaml.safe_load(recipe_path.read_text())
    data["checks"] = ["parsed", "meta_text", "exact_dedup", {"near_dedup": {"threshold": 0.8}},
                      {"real_copy": {"threshold": 0.7}}, {"decontaminate": {"n": 8}}]
    recipe_path.write_text(yaml.safe_dump(data))
    recipe = load_recipe(recipe_path)
    _, seeds, _ = load_seeds(recipe)
    seed_text = seeds["text"][0]
    test_text = next(r for r in load_dataset("csv", data_files=str(SHARED.with_name("test.csv")), split="train")["text"]
                     if len(r.split()) >= 10)
    planted = [seed_text, test_text, "Sure! Here is a new message: my card is late",
               "My card still has not arrived after two weeks of waiting",
               "My card still has not arrived after two long weeks of waiting"]  # a near-duplicate
    calls = {"n": 0}
    words = sorted(set(" ".join(seeds["text"]).lower().split()))
    rng = random.Random(0)

    def responder(conv):
        calls["n"] += 1
        text = planted[calls["n"] - 1] if calls["n"] <= len(planted) else " ".join(rng.sample(words, 8))
        return json.dumps({"text": text, "label": "atm_support"})

    monkeypatch.setattr(fake_engine, "responder", staticmethod(responder))
    folder, report = run_recipe(recipe)
    removed = {r.check["name"]: r.removed for r in report.results}
    assert removed == {"parsed": 0, "meta_text": 1, "exact_dedup": 0, "near_dedup": 1, "real_copy": 1, "decontaminate": 1}
    kept = load_dataset(str(folder))["train"]["text"]
    assert not set(planted[:3]) & set(kept) and planted[3] in kept
    card = (folder / "README.md").read_text()
    assert "Removed by real_copy, for example:" in card and "| decontaminate | n=8, min_words=4, short_coverage=0.6, column=text |" in card
    provenance = json.loads((folder / "provenance.json").read_text())
    labels, removed_by = provenance["checks"]["labels"], Counter()
    for check in provenance["checks"]["checks"]:
        removed_by.update(check["removed_by_label"])
    assert sum(labels["before"].values()) == 92 and sum(removed_by.values()) == 4
    assert labels["after"] == {label: n - removed_by[label] for label, n in labels["before"].items()}


def test_decontaminate_without_a_test_split_is_a_recipe_error(tmp_path):
    data = yaml.safe_load(write_recipe(tmp_path).read_text())
    data["checks"] = ["parsed", "decontaminate"]
    del data["compare"]
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RecipeError, match="compare.test_path"):
        run_recipe(load_recipe(path))
