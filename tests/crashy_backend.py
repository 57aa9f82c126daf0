"""A fake backend for replica tests, imported by each replica process (tests/ is on their path):
it answers like the tests' fake engine, and the replica whose environment says
`CRASH_SHARD_WITH=<text>` dies (os._exit) in the middle of the shard holding that prompt text."""

from __future__ import annotations

import os

from conftest import FakeEngine
from synth_datasets import engine as engine_mod


class CrashyEngine(FakeEngine):
    def chat(self, conversations, sampling, json_schema=None):
        marker = os.environ.get("CRASH_SHARD_WITH")
        if marker and any(marker in c[-1]["content"] for c in conversations):
            os._exit(3)
        return super().chat(conversations, sampling, json_schema)


if "crashy" not in engine_mod.BACKENDS:
    engine_mod.BACKENDS.register("crashy", CrashyEngine)
