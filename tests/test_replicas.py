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


def test_gpu_groups_for_tensor_parallel_replicas(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3,4,5,6,7")
    assert hardware.replica_envs(4, gpus_per_replica=2) == [{"CUDA_VISIBLE_DEVICES": d} for d in ("0,1", "2,3", "4,5", "6,7")]
    with pytest.raises(ValueError, match="3 replicas of 4 GPU"):
        hardware.replica_envs(3, gpus_per_replica=4)
    tp = EngineConfig(replicas="auto", options={"tensor_parallel_size": 4})
    assert tp.gpus_per_replica() == 4 and tp.replica_count() == 2  # 8 GPUs, 4 a replica
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert tp.replica_count() == 1  # no GPU: one engine


def test_where_engines_run_is_not_what_they_generate():
    from synth_datasets.shards import run_fingerprint

    base = EngineConfig(backend="fake")
    scaled = EngineConfig(backend="fake", replicas=4, executor="ray", ray_address="ray://head:10001",
                          ray_cpus_per_replica=1.0, ray_stall_timeout=60)
    assert base.__getstate__() == scaled.__getstate__()  # datasets' cache key and the replicas' copies
    p = prompts(per_label=2)
    assert run_fingerprint(p, Generate(engine=base), 4) == run_fingerprint(p, Generate(engine=scaled), 4)
    assert EngineConfig().cache_fields() == EngineConfig(options={"tensor_parallel_size": 2}).cache_fields()  # runtime-only
    with pytest.raises(ValueError, match="executor must be one of"):
        EngineConfig(executor="slurm")
    with pytest.raises(ValueError, match="ray_cpus_per_replica and ray_stall_timeout must be > 0"):
        EngineConfig(ray_cpus_per_replica=0)
    with pytest.raises(ValueError, match="tensor_parallel_size must be"):
        EngineConfig(options={"tensor_parallel_size": 0})


def test_ray_replica_counts_and_placement_from_the_cluster_shape():
    from synth_datasets.ray_exec import RayJobError, actor_resources, replica_count

    gpu_node = {"nodes": [{"node": "a", "cpus": 16, "gpus": 8}, {"node": "b", "cpus": 16, "gpus": 8}], "cpus": 32, "gpus": 16}
    cpu_nodes = {"nodes": [{"node": "a", "cpus": 2, "gpus": 0}] * 3, "cpus": 6, "gpus": 0}
    assert replica_count("auto", 1, gpu_node) == 16 and replica_count("auto", 4, gpu_node) == 4
    assert replica_count("auto", 1, cpu_nodes) == 3 and replica_count(5, 1, cpu_nodes) == 5
    assert replica_count("auto", 1, gpu_node, uses_accelerator=False) == 2  # HTTP clients: one per node
    assert actor_resources(0.5, 4, gpu_node) == {"num_cpus": 0.5, "num_gpus": 4}
    assert actor_resources(0.5, 4, cpu_nodes) == {"num_cpus": 0.5, "num_gpus": 0}
    with pytest.raises(RayJobError, match="needs 0.5 CPU and 16 GPU .*a: 16 CPU 8 GPU"):
        actor_resources(0.5, 16, gpu_node)
    with pytest.raises(RayJobError, match="needs 4 CPU"):
        actor_resources(4, 1, cpu_nodes)


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
    data["engine"].update(replicas=1, executor="ray")
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RecipeError, match="engine.executor: ray .*set output.run_dir"):
        load_recipe(path)
    data["engine"].update(replicas=2, executor="local")
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


def test_ray_rows_in_any_order_pieces_and_repeats_make_each_shard_once_in_order(tmp_path):
    """What the Ray driver does with what comes back (no Ray needed): pieces out of order, a shard
    split over pieces, a piece that spans two shards, rows that come back twice."""
    import pyarrow as pa

    from synth_datasets.ray_exec import ShardAssembler

    ids = [f"r{i}" for i in range(10)]
    table = pa.table({"row_id": ids, "parse_error": [None] * 9 + ["request failed: 500"],
                      "prompt_tokens": [3] * 10, "completion_tokens": [5] * 10})
    written = []
    g = gen()
    paths = [tmp_path / f"{i}.parquet" for i in range(3)]
    shards = ShardAssembler(ids, 4, [0, 1, 2], paths, lambda ds, path: written.append((path.name, ds["row_id"])), g)
    assert shards.rows_left() == 10
    assert shards.add(table.take([9, 5])) == 2          # half of shard 2, a quarter of shard 1
    assert shards.add(table.take([9, 5, 3, 0])) == 2    # r9 and r5 again: dropped
    assert written == []
    assert shards.add(table.take([7, 6, 2, 1, 4])) == 5  # spans shards 0 and 1, out of order: both complete
    assert written == [("0.parquet", ["r0", "r1", "r2", "r3"]), ("1.parquet", ["r4", "r5", "r6", "r7"])]
    assert shards.rows_left() == 1 and shards.add(table.take([8])) == 1 and shards.rows_left() == 0
    assert written[2:] == [("2.parquet", ["r8", "r9"])]
    assert shards.add(table.take([1, 8])) == 0 and len(written) == 3  # rows of shards already written
    assert (g.stats.requests, g.stats.prompt_tokens, g.stats.completion_tokens) == (9, 27, 45)  # r9's request failed
