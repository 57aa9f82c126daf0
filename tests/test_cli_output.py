"""What `synth-datasets generate` prints: quiet by default (warnings, one bar per stage, the summary
and tables), everything with -v. Run in a child process, as a user runs it, on the fake engine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from test_pipeline import write_recipe

RUN = ("import sys; sys.path.insert(0, 'tests'); import conftest; from synth_datasets import cli; "
       "sys.exit(cli.main(sys.argv[1:]))")


def run_cli(*args: str, tmp_path: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("SYNTH_DATASETS_LOG_LEVEL", "VLLM_LOGGING_LEVEL")}
    environment.update({"HF_DATASETS_CACHE": str(tmp_path / "hf-cache"), **(env or {})})
    return subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True, env=environment, timeout=300)


def test_generate_is_quiet_by_default_and_says_more_with_v(tmp_path):
    path = write_recipe(tmp_path)
    quiet = run_cli("generate", str(path), tmp_path=tmp_path)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    output = quiet.stdout + quiet.stderr
    assert " INFO " not in output and "INFO synth_datasets" not in output
    for bar in ("generate:", "checks:"):  # one bar per stage...
        assert bar in quiet.stderr, quiet.stderr[-1500:]
    for noise in ("Map", "Filter", "check parsed", "filter exact_dedup", "Flattening", "Saving the dataset"):
        assert noise not in quiet.stderr  # ...and none of the per-check map/filter bars
    for line in ("generation: 92 requests", "exact_dedup", "wrote "):  # the summary and the tables stay
        assert line in quiet.stdout
    lines = [line for line in output.replace("\r", "\n").splitlines() if line.strip()]

    verbose = run_cli("-v", "generate", str(path), tmp_path=tmp_path)
    assert verbose.returncode == 0
    assert "INFO synth_datasets.checks.report: check parsed: 92 in, 0 removed, 92 kept" in verbose.stderr
    more = [line for line in (verbose.stdout + verbose.stderr).replace("\r", "\n").splitlines() if line.strip()]
    assert len(more) > len(lines)

    env_level = run_cli("generate", str(path), tmp_path=tmp_path, env={"SYNTH_DATASETS_LOG_LEVEL": "INFO"})
    assert "INFO synth_datasets" in env_level.stderr
    bad = run_cli("generate", str(path), tmp_path=tmp_path, env={"SYNTH_DATASETS_LOG_LEVEL": "LOUD"})
    assert bad.returncode != 0 and "SYNTH_DATASETS_LOG_LEVEL='LOUD' is not a logging level" in bad.stderr
