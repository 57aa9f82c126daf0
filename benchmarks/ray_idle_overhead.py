"""How much of the machine Ray's own processes take while the engine does nothing.

    unshare -n sh -c 'ip link set lo up && exec .venv/bin/python benchmarks/ray_idle_overhead.py'

A Ray generation job (`executor: ray`, one replica) whose engine sleeps through its one call
(`--sleep` seconds); after `--settle` seconds, the share of all cores busy over `--window` seconds
is read from /proc/stat, and the same share on the idle machine beforehand. What is left is what
Ray (raylet, GCS, idle workers) and the driver's streaming executor cost on their own, the part of
benchmarks/ray_generation.py's gap that is not the engine's. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time

from synth_datasets.engine import BACKENDS, Completion


class SleepingEngine:
    """Answers every request with "ok" after one long sleep (no model: no CPU)."""

    def __init__(self, config):
        self.config = config

    def chat(self, conversations, sampling, json_schema=None):
        time.sleep(float(os.environ.get("SLEEP_S", "40")))
        return [Completion("ok", "stop", 1, 1) for _ in conversations]


if __name__ != "__main__" and "sleeping" not in BACKENDS:  # registered from the importable module only
    BACKENDS.register("sleeping", SleepingEngine)


def busy_share(seconds: float) -> float:
    def read():
        with open("/proc/stat") as f:
            values = list(map(int, f.readline().split()[1:]))
        return sum(values) - values[3] - values[4], sum(values)  # busy (not idle, not iowait), all

    (busy0, all0) = read()
    time.sleep(seconds)
    (busy1, all1) = read()
    return (busy1 - busy0) / (all1 - all0)


def main() -> None:
    from datasets import Dataset

    from synth_datasets import Generate, hardware
    from synth_datasets.engine import EngineConfig
    from synth_datasets.shards import generate_resumable

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sleep", type=float, default=45)
    parser.add_argument("--settle", type=float, default=15)
    parser.add_argument("--window", type=float, default=20)
    args = parser.parse_args()
    os.environ["SLEEP_S"] = str(args.sleep)
    # Ray's workers inherit this process's environment: they import this module to find the backend
    os.environ["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.abspath(__file__)), os.environ.get("PYTHONPATH", "")])
    idle = busy_share(args.window / 2)
    during: list[float] = []

    def sample():
        time.sleep(args.settle)
        during.append(busy_share(args.window))

    threading.Thread(target=sample, daemon=True).start()
    rows = Dataset.from_dict({"row_id": ["a"], "messages": [[{"role": "user", "content": "hi"}]]})
    with tempfile.TemporaryDirectory() as run:
        generate_resumable(rows, Generate(engine=EngineConfig(backend="sleeping")), run, shard_size=1, executor="ray")
    flags = " ".join(sorted(hardware.cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}))
    print(f"{time.strftime('%Y-%m-%d')}  cpu flags: {flags}  {os.cpu_count()} cores")
    print(f"busy share of all cores, idle machine:            {idle:.3f}")
    print(f"busy share of all cores, Ray job, engine asleep:  {during[0]:.3f}")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import ray_idle_overhead  # the backend must live in an importable module, not __main__, for the actor

    ray_idle_overhead.main()
