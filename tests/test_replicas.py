"""Engine replicas on one node (shards.run_replicas): N processes, each its own engine and a
contiguous block of shards, merged into every row exactly once in row_id order; a replica that dies
loses only its shard in flight. The replicas run the tests' fake engine in real separate processes."""

from __future__ import annotations

import json

import pytest

import crashy_backend
from synth_datasets import Generate, hardware
from synth_datasets.engine import EngineConfig
from synth_datasets.shards import generate_resumable
from test_shards import LABELS, gen, prompts


def test_two_replicas_give_the_rows_one_process_gives(fake_engine, tmp_path):
    p = prompts(per_label=12)
    one = generate_resumable(p, gen(), tmp_path / "one", shard_size=4)
    two = generate_resumable(p, gen(), tmp_path / "two", shard_size=4, replicas=2)
    assert two.to_list() == one.to_list()  # every row once, in row_id order, the same answers
    records = [json.loads((tmp_path / "two" / "replicas" / f"{k}.json").read_text()) for k in (0, 1)]
    assert records[0]["pid"] != records[1]["pid"]
    assert records[0]["shards"] == [0, 1, 2] and records[1]["shards"] == [3, 4, 5]  # contiguous blocks
    assert [r["env"]["VLLM_CPU_OMP_THREADS_BIND"] for r in records] == [e["VLLM_CPU_OMP_THREADS_BIND"] for e in hardware.replica_envs(2)]
    assert fake_engine.calls == [4] * 6  # the replicas' calls were made elsewhere: only the one-process run's here


def test_a_replica_that_dies_loses_only_its_shard_in_flight(fake_engine, tmp_path, monkeypatch, caplog):
    p = prompts(per_label=12)
    crashing = EngineConfig(backend="crashy")
    target = p[18]["messages"][-1]["content"]  # row 18: shard 4 of 6, the second replica's second shard
    monkeypatch.setenv("CRASH_SHARD_WITH", target)  # every replica inherits it; the one that meets shard 4 dies
    g = Generate(engine=crashing, json_schema=__import__("synth_datasets").classification.json_schema(LABELS),
                 parser="classification")
    monkeypatch.setattr(crashy_backend.CrashyEngine, "chat", crashy_backend.FakeEngine.chat)  # this process never dies
    out = generate_resumable(p, g, tmp_path / "run", shard_size=4, replicas=2)
    assert out["row_id"] == p["row_id"] and out["parse_error"] == [None] * len(p)
    record = json.loads((tmp_path / "run" / "replicas" / "1.json").read_text())
    assert record["shards"] == [3]  # it finished shard 3, died in 4, never reached 5
    assert "replica 1" in caplog.text and "exit code 3" in caplog.text
    assert "2 shard(s) left by replicas that stopped" in caplog.text


def test_replicas_need_cores_or_gpus_and_a_run_folder(tmp_path):
    with pytest.raises(ValueError, match="replicas must be"):
        EngineConfig(replicas=0)
    with pytest.raises(ValueError, match="at least one core per replica|one GPU per replica"):
        hardware.replica_envs(10_000)
    assert EngineConfig(replicas="auto").replica_count() == (hardware.gpu_count() or 1)


def test_a_recipe_asks_for_replicas_with_a_run_folder(fake_engine, tmp_path):
    import yaml

    from synth_datasets.pipeline import run_recipe
    from synth_datasets.recipe import RecipeError, load_recipe
    from test_pipeline import write_recipe

    path = write_recipe(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["engine"]["replicas"] = 2
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RecipeError, match="engine.replicas: .*set output.run_dir"):
        load_recipe(path)
    data["output"]["run_dir"] = str(tmp_path / "run")
    data["generator"]["shard_size"] = 30
    path.write_text(yaml.safe_dump(data))
    folder, _ = run_recipe(load_recipe(path))
    assert sorted(p.name for p in (tmp_path / "run" / "replicas").iterdir()) == ["0.json", "1.json"]
    provenance = json.loads((folder / "provenance.json").read_text())
    assert provenance["rows"]["generated"] == 92


@pytest.mark.slow
def test_two_vllm_cpu_replicas_of_one_core_each(tmp_path):
    """The real engine: two vLLM-CPU replicas of one core each (their own processes, their own
    thread binding), one shard each of a few requests; every row back once, in order."""
    from synth_datasets import SamplingConfig

    p = prompts(per_label=4)
    real = EngineConfig(max_model_len=1024, seed=0)
    g = Generate(engine=real, sampling=SamplingConfig(temperature=0.0, max_tokens=24),
                 json_schema=__import__("synth_datasets").classification.json_schema(LABELS), parser="classification")
    two = generate_resumable(p, g, tmp_path / "two", shard_size=4, replicas=2)
    records = [json.loads((tmp_path / "two" / "replicas" / f"{k}.json").read_text()) for k in (0, 1)]
    assert [r["shards"] for r in records] == [[0], [1]] and records[0]["pid"] != records[1]["pid"]
    assert two["row_id"] == p["row_id"] and sum(e is None for e in two["parse_error"]) >= 6
    assert all(t for t in two["raw_completion"])
