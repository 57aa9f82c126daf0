"""A new user's mistakes, tried through `synth-datasets generate` as they would make them: each ends
in one clear message (exit code 2) or in a recorded, counted outcome, never in a traceback or a
silently wrong dataset; and two runs of one recipe at once do not corrupt what they write."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import pytest
import yaml
from datasets import Dataset, load_dataset

from synth_datasets import cli
from synth_datasets.pipeline import run_recipe
from synth_datasets.recipe import load_recipe
from test_pipeline import write_recipe


@pytest.fixture(autouse=True)
def own_datasets_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def generate_fails(path: Path, capsys) -> str:
    assert cli.main(["generate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_a_model_folder_that_does_not_exist_is_named_before_any_engine_starts(tmp_path, capsys):
    path = write_recipe(tmp_path, generator={"model": "/nonexistent/model"})
    data = yaml.safe_load(path.read_text())
    data["engine"] = {"max_model_len": 1024}  # the real vLLM backend: it must not be started
    path.write_text(yaml.safe_dump(data))
    err = generate_fails(path, capsys)
    assert "generator.model: the folder '/nonexistent/model' does not exist; a model is a Hugging Face id" in err
    from synth_datasets import engine

    assert not [c for c in engine._ENGINES if c.backend == "vllm" and c.model == "/nonexistent/model"]


def test_a_seeds_file_with_a_header_and_no_rows(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("text,category\n")
    err = generate_fails(write_recipe(tmp_path, seeds={"path": str(empty)}), capsys)
    assert "seeds.path:" in err and "has no rows" in err and "Instruction" not in err.split("datasets said")[0]
    (tmp_path / "nothing.csv").write_text("")
    assert "is empty" in generate_fails(write_recipe(tmp_path, seeds={"path": str(tmp_path / "nothing.csv")}), capsys)


def test_seed_rows_with_an_empty_text_or_label_are_dropped_and_counted_on_the_card(fake_engine, tmp_path):
    rows = [{"text": t, "category": c} for t, c in [
        ("my card has not arrived", "card_arrival"), ("", "card_arrival"), ("   ", "card_arrival"),
        ("where is my new card", "card_arrival"), ("what rate do you use", ""), ("how much is a dollar", "exchange_rate"),
        ("rate for euros please", "exchange_rate")]]
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = write_recipe(tmp_path, seeds={"path": str(seeds), "labels": None, "rare": {}, "per_label": None},
                        task={"balance_to": 4})
    folder, _ = run_recipe(load_recipe(path))
    provenance = json.loads((folder / "provenance.json").read_text())
    assert provenance["seeds"]["dropped"] == {"empty text": 2, "empty label": 1}
    assert [r["label"] for r in provenance["labels"]] == ["card_arrival", "exchange_rate"]  # no "" class
    assert "Rows of the seed file left out as unusable: 2 with an empty text, 1 with an empty label." in (folder / "README.md").read_text()
    assert set(load_dataset(str(folder))["train"]["label"]) == {"card_arrival", "exchange_rate"}


def test_a_huge_seed_row_is_cut_in_the_prompt_so_the_request_fits_the_context(fake_engine, tmp_path):
    huge = "my card " + "is still not here and " * 1000  # about 22,000 characters
    rows = [{"text": huge, "category": "card_arrival"}] + [
        {"text": f"where is my card number {i}", "category": "card_arrival"} for i in range(3)]
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = write_recipe(tmp_path, seeds={"path": str(seeds), "labels": None, "rare": {}, "per_label": None},
                        task={"balance_to": 8})
    recipe = load_recipe(path)
    folder, _ = run_recipe(recipe)
    prompts = load_dataset(str(folder))["train"]["messages"]
    longest = max(len(m[-1]["content"]) for m in prompts)
    # 1024-token context, 96 for the answer: each of the 3 shown seeds may take (1024 - 96 - 256) * 2 / 3 characters
    assert longest < 3 * 448 + 1000 and any(" ..." in m[-1]["content"] for m in prompts)


def test_a_check_option_of_the_wrong_type_names_the_field_the_type_and_the_value(tmp_path, capsys):
    path = write_recipe(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["checks"] = ["parsed", {"length": {"min_chars": "ten"}}]
    path.write_text(yaml.safe_dump(data))
    err = generate_fails(path, capsys)
    assert "checks[1]: checks.length.min_chars: expected an integer, got 'ten'" in err


def test_rerunning_generate_keeps_the_measured_contribution_while_the_recipe_is_unchanged(fake_engine, tmp_path, caplog):
    from test_compare import write_recipe as compare_recipe

    path = compare_recipe(tmp_path, draws=1, real_per_label=[2])
    assert cli.main(["generate", str(path)]) == 0
    assert cli.main(["compare", str(path)]) == 0
    card = tmp_path / "out" / "README.md"
    assert "## Measured contribution" in card.read_text() and "Not measured yet" not in card.read_text()
    assert cli.main(["generate", str(path)]) == 0  # every row from the cache: same data, same measurement
    assert "Not measured yet" not in card.read_text() and "two-stage" in card.read_text()
    data = yaml.safe_load(path.read_text())
    data["generator"]["temperature"] = 0.3  # another recipe: the measurement no longer describes the data
    path.write_text(yaml.safe_dump(data))
    assert cli.main(["generate", str(path)]) == 0
    assert "Not measured yet" in card.read_text()
    assert "dropped: the recipe changed since `compare` measured it" in caplog.text


def _slow_run(path: str, log: str, start) -> None:
    """One of two processes running the same recipe at once (fork: the fake engine is registered)."""
    import logging

    from conftest import FakeEngine, default_responder

    def slow(conversation):
        time.sleep(0.01)
        return default_responder(conversation)

    FakeEngine.responder = staticmethod(slow)
    logging.basicConfig(filename=log, level=logging.WARNING, force=True)
    recipe = load_recipe(path)
    start.wait(timeout=60)  # both processes go at the same moment
    run_recipe(recipe)


def test_two_runs_of_one_recipe_at_once_take_turns_and_leave_one_good_dataset(fake_engine, tmp_path):
    path = write_recipe(tmp_path, output={"run_dir": str(tmp_path / "run"), "dir": str(tmp_path / "out")},
                        generator={"shard_size": 30})
    context = multiprocessing.get_context("fork")
    logs = [str(tmp_path / f"run{i}.log") for i in range(2)]
    start = context.Barrier(2)
    procs = [context.Process(target=_slow_run, args=(str(path), log, start)) for log in logs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0]
    waited = [Path(log).read_text() for log in logs if Path(log).exists()]
    assert sum("another run is writing" in text for text in waited) >= 1  # the second waited for the first
    out = tmp_path / "out"
    assert len(list((out / "data").glob("*.parquet"))) == 1 and not list((out / "data").glob(".*tmp"))
    train = load_dataset(str(out))["train"]
    assert len(train) == 92 and len(set(train["row_id"])) == 92
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["rows"]["kept"] == 92
    shards = sorted((tmp_path / "run" / "shards").glob("*.parquet"))
    assert len(shards) == 4 and sum(Dataset.from_parquet(str(s)).num_rows for s in shards) == 92
