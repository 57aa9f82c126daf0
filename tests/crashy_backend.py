"""Fake backends for replica and Ray tests, imported by each replica process or Ray actor (tests/ is
on their path). All answer like the tests' fake engine.

- `crashy`: the replica whose environment says `CRASH_SHARD_WITH=<text>` dies (os._exit) in the
  middle of the shard holding that prompt text; with `CRASH_ONCE_FILE=<path>` too, only the first
  time (the file records that it happened), so a restarted replica gets through.
- `hangy`: the replica that meets `HANG_SHARD_WITH=<text>` never answers (an engine that hangs).
- `slowy`: each engine call takes `SLOW_CALL_S` seconds (a run slow enough to be killed midway).
- `tp`: takes a `tensor_parallel_size` option, like vLLM's, so replicas ask for groups of GPUs.

With `ENGINE_LOG_DIR=<folder>`, `slowy` and `tp` engines write, as they are built, which process
built them and the GPUs it sees (`<backend>-<pid>.json`): placement shows even for a replica that
got no shard.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

from conftest import FakeEngine, FakeOptions
from synth_datasets import engine as engine_mod


def _meets(variable: str, conversations) -> bool:
    marker = os.environ.get(variable)
    return bool(marker) and any(marker in c[-1]["content"] for c in conversations)


class CrashyEngine(FakeEngine):
    def chat(self, conversations, sampling, json_schema=None):
        if _meets("CRASH_SHARD_WITH", conversations):
            once = os.environ.get("CRASH_ONCE_FILE")
            if not once:
                os._exit(3)
            try:
                with open(once, "x") as f:  # the first replica to get here creates it, and dies
                    f.write(str(os.getpid()))
                os._exit(3)
            except FileExistsError:
                pass
        return super().chat(conversations, sampling, json_schema)


class HangyEngine(FakeEngine):
    def chat(self, conversations, sampling, json_schema=None):
        if _meets("HANG_SHARD_WITH", conversations):
            time.sleep(3600)
        return super().chat(conversations, sampling, json_schema)


def _log_start(backend: str) -> None:
    folder = os.environ.get("ENGINE_LOG_DIR")
    if folder:
        with open(os.path.join(folder, f"{backend}-{os.getpid()}.json"), "w") as f:
            json.dump({"backend": backend, "pid": os.getpid(), "devices": os.environ.get("CUDA_VISIBLE_DEVICES")}, f)


class SlowyEngine(FakeEngine):
    def __init__(self, config):
        super().__init__(config)
        _log_start("slowy")

    def chat(self, conversations, sampling, json_schema=None):
        time.sleep(float(os.environ.get("SLOW_CALL_S", "0")))
        return super().chat(conversations, sampling, json_schema)


@dataclass(frozen=True)
class TPOptions(FakeOptions):
    tensor_parallel_size: int = 1
    runtime_only = ("kv_cache_space_gib", "gpu_memory_utilization", "tensor_parallel_size")


class TPEngine(FakeEngine):
    options_class = TPOptions

    def __init__(self, config):
        super().__init__(config)
        _log_start("tp")


for _name, _cls in (("crashy", CrashyEngine), ("hangy", HangyEngine), ("slowy", SlowyEngine), ("tp", TPEngine)):
    if _name not in engine_mod.BACKENDS:
        engine_mod.BACKENDS.register(_name, _cls)
