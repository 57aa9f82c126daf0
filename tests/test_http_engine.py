"""The `openai` backend (http_engine.py) against a fault-injecting OpenAI-compatible server on
127.0.0.1 (tests/openai_server.py): every row ends exactly once (a completion or a recorded error),
the window backs off on 429 and recovers, constrained output degrades, the key stays secret, and a
recipe runs through it end to end."""

from __future__ import annotations

import json
import logging
import random

import pytest
import yaml

from loopback import free_port
from openai_server import FaultServer, echo
from synth_datasets.engine import EngineConfig, SamplingConfig
from synth_datasets.http_engine import OpenAIEngine

SAMPLING = SamplingConfig(temperature=0.0, max_tokens=16)


def engine_for(server: FaultServer, **options) -> OpenAIEngine:
    settings = {"backend": "openai", "model": "test-model", "base_url": server.url, "timeout": 1.0,
                "backoff_base": 0.01, "backoff_max": 0.05, **options}
    return OpenAIEngine(EngineConfig.from_dict(settings))


def conversations(n: int) -> list[list[dict]]:
    return [[{"role": "user", "content": f"question {i}"}] for i in range(n)]


def test_every_row_ends_once_through_a_storm_of_faults():
    kinds = ["429", "500", "timeout", "drop", "malformed", "truncated"]
    rng = random.Random(0)
    doomed = "question 7"  # this one always fails: it must come back as a recorded error

    def faults(n, body):
        if body["messages"][-1]["content"] == doomed:
            return "500"
        return rng.choice(kinds) if rng.random() < 0.4 else None

    with FaultServer(faults=faults, hang=1.5) as server:
        engine = engine_for(server, max_concurrency=6, max_retries=8)
        try:
            results = engine.chat(conversations(30), SAMPLING)
        finally:
            engine.shutdown()
    assert len(results) == 30
    for i, r in enumerate(results):
        if i == 7:
            assert r.error and "failed after 9 attempts" in r.error and "server error 500" in r.error and r.text == ""
        else:
            assert r.error is None and r.text == f"echo: question {i}", (i, r)
            assert r.prompt_tokens > 0 and r.completion_tokens == 3
    got = [what for _, what in server.log]
    assert set(kinds) <= set(got)  # every kind of fault happened
    assert engine.stats["errors"] == 1 and engine.stats["retries"] >= got.count("ok") - 29 - 1
    assert server.peak <= 6


def test_a_refused_request_is_a_recorded_error_not_a_lost_batch():
    def faults(n, body):
        return None

    with FaultServer(faults=faults) as server:
        engine = engine_for(server)
        try:
            bad = engine.chat([[{"role": "user", "content": "x"}]], SAMPLING)
            server.key = "required"  # the server now wants a key: 401, not retried
            refused = engine.chat(conversations(3), SAMPLING)
        finally:
            engine.shutdown()
    assert bad[0].error is None
    assert all(r.error and "refused the request (401)" in r.error for r in refused)
    assert len(server.log) == 4  # no retry of a 4xx


def test_the_window_halves_on_429_and_widens_again():
    def faults(n, body):
        return "429" if n < 12 else 0.02  # a burst of 429s, then slow-ish successes

    with FaultServer(faults=faults) as server:
        engine = engine_for(server, max_concurrency=8, recover_after=3, max_retries=12)
        try:
            results = engine.chat(conversations(60), SAMPLING)
            history = list(engine.window.history)
        finally:
            engine.shutdown()
    assert all(r.error is None for r in results)
    low = min(history)
    assert history[0] == 8 and low < 8  # backed off
    assert history.index(low) < len(history) - 1 and history[-1] > low  # and recovered
    assert engine.stats["throttled"] == 12


def test_the_window_keeps_requests_in_flight_without_lockstep():
    """With slow requests the server sees the window full: it is refilled as each one finishes."""
    rng = random.Random(1)

    def faults(n, body):
        return rng.choice([0.01, 0.05, 0.2])

    with FaultServer(faults=faults) as server:
        engine = engine_for(server, max_concurrency=5)
        try:
            results = engine.chat(conversations(40), SAMPLING)
        finally:
            engine.shutdown()
    assert [r.text for r in results] == [f"echo: question {i}" for i in range(40)]
    assert server.peak == 5


def test_constrained_output_degrades_to_parse_and_record_when_the_server_cannot():
    schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
    with FaultServer(faults=lambda n, body: "refuse_format") as server:
        engine = engine_for(server)
        try:
            results = engine.chat(conversations(4), SAMPLING, json_schema=schema)
        finally:
            engine.shutdown()
    assert engine.constrain == "none" and all(r.error is None for r in results)
    sent = [body for body, _ in server.log]
    assert "response_format" in sent[0] and "response_format" not in sent[-1]
    assert sent[0]["response_format"]["json_schema"]["schema"] == schema


def test_completion_mode_and_vllm_structured_outputs():
    schema = {"type": "object"}
    with FaultServer() as server:
        engine = engine_for(server, structured_output="vllm")
        try:
            results = engine.complete(["Once upon", "a time"], SamplingConfig(max_tokens=8, stop=("\n",)), json_schema=schema)
        finally:
            engine.shutdown()
    assert [r.text for r in results] == ["echo: Once upon", "echo: a time"]
    body = server.log[0][0]
    assert body["structured_outputs"] == {"json": schema} and body["stop"] == ["\n"] and body["model"] == "test-model"


def seconds_for(n: int, **options) -> float:
    import time

    with FaultServer() as server:
        engine = engine_for(server, **options)
        try:
            start = time.perf_counter()
            engine.chat(conversations(n), SAMPLING)
            return time.perf_counter() - start
        finally:
            engine.shutdown()


def test_pacing_holds_requests_and_tokens_per_minute():
    # 10 a second, a second's worth at once: 10 from the full bucket, then 15 more at 10 a second (a lower bound:
    # load only slows it)
    assert seconds_for(25, requests_per_minute=600, max_concurrency=8) >= 1.4
    # 40 tokens a second; each request asks 16 + its prompt, about 21: 126 tokens, 40 up front, the rest at 40 a second
    assert seconds_for(6, tokens_per_minute=60 * 40) >= 2.0


def test_options_are_checked_and_a_missing_key_is_named(monkeypatch):
    with pytest.raises(ValueError, match="structured_output"):
        EngineConfig.from_dict({"backend": "openai", "model": "m", "structured_output": "maybe"})
    with pytest.raises(ValueError, match="base_url"):
        EngineConfig.from_dict({"backend": "openai", "model": "m", "base_url": "127.0.0.1:8000"})
    with pytest.raises(ValueError, match="engine.api_key: unknown field; did you mean 'api_key_env'"):
        EngineConfig.from_dict({"backend": "openai", "model": "m", "api_key": "sk-123"})
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(ValueError, match="NO_SUCH_KEY_VAR is not set"):
        OpenAIEngine(EngineConfig.from_dict({"backend": "openai", "model": "m", "api_key_env": "NO_SUCH_KEY_VAR"}))
    with pytest.raises(ValueError, match="needs the name the server serves"):
        OpenAIEngine(EngineConfig.from_dict({"backend": "openai"}))
    a = EngineConfig.from_dict({"backend": "openai", "model": "m", "max_concurrency": 4, "api_key_env": "A"})
    b = EngineConfig.from_dict({"backend": "openai", "model": "m", "max_concurrency": 64})
    assert a.cache_fields() == b.cache_fields()  # speed settings and the key's variable do not change the rows


KEY = "sk-SENTINEL-never-written-0123456789"


def test_a_recipe_runs_through_the_backend_and_the_key_is_never_written(fake_engine, tmp_path, monkeypatch, caplog):
    """The banking77 recipe on `engine.backend: openai` against the test server (answering as a model
    constrained to the task's JSON would): rows, checks and card as with any engine; the key (from
    api_key_env) in no file, log record or provenance."""
    from conftest import default_responder
    from test_pipeline import write_recipe

    import datasets
    from datasets import load_dataset

    from synth_datasets.pipeline import run_recipe
    from synth_datasets.recipe import load_recipe

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    monkeypatch.setenv("TEST_SERVER_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    with FaultServer(responder=lambda body: default_responder(body["messages"]), key=KEY,
                     faults=lambda n, body: "500" if n % 7 == 3 else None) as server:
        path = write_recipe(tmp_path)
        data = yaml.safe_load(path.read_text())
        data["engine"] = {"backend": "openai", "base_url": server.url, "api_key_env": "TEST_SERVER_KEY",
                          "backoff_base": 0.01, "max_concurrency": 8, "price_input_per_million": 0.5,
                          "price_output_per_million": 2.0}
        data["generator"]["model"] = "served-model"
        path.write_text(yaml.safe_dump(data))
        folder, report = run_recipe(load_recipe(path))
    rows = load_dataset(str(folder), split="train")
    assert len(rows) == 92 and all(e is None for e in rows["parse_error"])
    provenance = json.loads((folder / "provenance.json").read_text())
    assert provenance["generator"]["backend"] == "openai" and provenance["requests"] == 92
    work = provenance["engine_work"]
    assert work["requests"] == 92 and work["prompt_tokens"] == sum(rows["prompt_tokens"]) > 0
    assert work["cost"] == pytest.approx(0.5 * work["prompt_tokens"] / 1e6 + 2.0 * work["completion_tokens"] / 1e6)
    assert f"cost {work['cost']} at the recipe's prices" in (folder / "README.md").read_text()
    assert any("response_format" in body for body, _ in server.log)  # the task's JSON schema was sent
    leaks = [str(p) for p in tmp_path.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    leaks += [r.getMessage() for r in caplog.records if KEY in r.getMessage()]
    assert leaks == []
    assert echo({"prompt": "x"}) == "echo: x"



@pytest.mark.slow
def test_a_recipe_through_vllms_own_openai_server(tmp_path, monkeypatch):
    """vLLM's OpenAI-compatible server on 127.0.0.1 with the embedded model on the CPU (started as
    `synth-datasets serve` starts it, under `timeout` so that it stops by itself), and the banking77
    recipe through the openai backend: JSON-schema constrained rows, parsed, checked and carded."""
    import os
    import subprocess

    import datasets
    from datasets import load_dataset

    from synth_datasets.pipeline import run_recipe
    from synth_datasets.recipe import load_recipe
    from synth_datasets.serving import server_command, wait_until_ready
    from test_pipeline import write_recipe

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    port = free_port()
    argv, env = server_command(None, port=port, max_model_len=1024)
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(["timeout", "900", *argv], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/v1", timeout=300, process=server)
        path = write_recipe(tmp_path)
        data = yaml.safe_load(path.read_text())
        data["engine"] = {"backend": "openai", "base_url": f"http://127.0.0.1:{port}/v1", "max_concurrency": 16,
                          "max_model_len": 1024}
        data["generator"]["model"] = "smollm2-135m-instruct"
        data["task"]["balance_to"] = 7  # a few requests: 8 labels, 1 to 5 each
        path.write_text(yaml.safe_dump(data))
        folder, report = run_recipe(load_recipe(path))
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    provenance = json.loads((folder / "provenance.json").read_text())
    assert provenance["generator"]["backend"] == "openai" and provenance["requests"] == 5 * 1 + 3 * 5
    assert provenance["engine_work"]["requests"] == 20 and provenance["engine_work"]["completion_tokens"] > 0
    assert dict(provenance["parse_errors"]).get("invalid JSON", 0) == 0  # the server constrained the JSON
    rows = load_dataset(str(folder), split="train")
    assert len(rows) > 0 and set(rows["label"]) <= set(data["seeds"]["labels"])
    assert "POST /v1/chat/completions" in (tmp_path / "server.log").read_text()


def test_an_unforeseen_error_is_that_rows_error_only():
    with FaultServer() as server:
        engine = engine_for(server)
        send = engine._send

        async def flaky(path, body, chat):
            if body["messages"][-1]["content"] == "question 2":
                raise RuntimeError("something nobody expected")
            return await send(path, body, chat)

        engine._send = flaky
        try:
            results = engine.chat(conversations(4), SAMPLING)
        finally:
            engine.shutdown()
    assert [r.error is None for r in results] == [True, True, False, True]
    assert "RuntimeError: something nobody expected" in results[2].error and engine.stats["errors"] == 1


KILLED_RUN = """
import sys
from datasets import Dataset
from synth_datasets import Generate
from synth_datasets.shards import generate_resumable

url, run = sys.argv[1], sys.argv[2]
rows = Dataset.from_dict({"row_id": [f"r{i:03d}" for i in range(40)],
                          "messages": [[{"role": "user", "content": f"question {i}"}] for i in range(40)]})
engine = {"backend": "openai", "model": "test-model", "base_url": url, "max_concurrency": 4, "timeout": 5.0}
generate_resumable(rows, Generate(engine=engine, sampling={"max_tokens": 16}), run, shard_size=40)
"""


def test_a_killed_run_resends_only_the_requests_that_were_in_flight(tmp_path):
    """One shard of 40 requests, 4 in flight, each 0.05 s: SIGKILL once a dozen are journaled, then
    run again. The rerun sends only what the journal does not hold; the kill lost at most the 4."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from datasets import Dataset

    from synth_datasets import Generate
    from synth_datasets.shards import generate_resumable

    script, run = tmp_path / "run_it.py", tmp_path / "run"
    script.write_text(KILLED_RUN)
    journal = run / "journal" / "00000-of-00001.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH", "")])}
    rows = Dataset.from_dict({"row_id": [f"r{i:03d}" for i in range(40)],
                              "messages": [[{"role": "user", "content": f"question {i}"}] for i in range(40)]})
    with FaultServer(faults=lambda n, body: 0.05) as server:
        proc = subprocess.Popen([sys.executable, str(script), server.url, str(run)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not journal.exists() or len(journal.read_text().splitlines()) < 12):
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(0.2)  # the server finishes answering the requests the dead client had in flight
        sent_before = len(server.log)
        journaled = {json.loads(line)["row_id"] for line in journal.read_text().splitlines() if line.endswith("}")}
        assert 12 <= len(journaled) < 40 and not (run / "shards" / "00000-of-00001.parquet").exists()
        assert sent_before - len(journaled) <= 4  # lost: at most the requests in flight

        gen = Generate(engine={"backend": "openai", "model": "test-model", "base_url": server.url, "max_concurrency": 4,
                               "timeout": 5.0}, sampling={"max_tokens": 16})  # the same run, the same server
        out = generate_resumable(rows, gen, run, shard_size=40)
        resent = [body["messages"][-1]["content"] for body, _ in server.log[sent_before:]]
    assert len(resent) == 40 - len(journaled)  # nothing the journal held was sent again
    assert not {f"question {int(r[1:])}" for r in journaled} & set(resent)
    assert out["row_id"] == rows["row_id"]  # every row once, in order
    assert out["raw_completion"] == [f"echo: question {i}" for i in range(40)]
    assert not journal.exists()  # deleted with its shard written
    assert gen.stats.requests == 40 - len(journaled)
