"""Resumable generation: real SIGKILL mid-run, stale-run refusal, corrupt shards. Fake engine."""

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from datasets import Dataset

from synth_datasets import Generate
from synth_datasets.engine import EngineConfig
from synth_datasets.shards import StaleRunError, generate_resumable
from synth_datasets.tasks import classification as c

FAKE = EngineConfig(backend="fake")
LABELS = ["card_arrival", "lost_card"]


def prompts(per_label=10) -> Dataset:
    seeds = Dataset.from_dict({"text": ["where is my card", "lost it"], "label": LABELS})
    return c.classification_prompts(seeds, per_label=per_label)


def gen(**kw) -> Generate:
    return Generate(engine=FAKE, json_schema=c.json_schema(LABELS), parser="classification", **kw)


def test_all_rows_once_in_order_and_a_rerun_generates_nothing(fake_engine, tmp_path):
    p = prompts()
    out = generate_resumable(p, gen(), tmp_path / "run", shard_size=6)
    assert fake_engine.calls == [6, 6, 6, 2]
    assert out["row_id"] == p["row_id"] and out["parse_error"] == [None] * 20
    again = generate_resumable(p, gen(), tmp_path / "run", shard_size=6)
    assert fake_engine.calls == [6, 6, 6, 2]
    assert again["raw_completion"] == out["raw_completion"]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["rows"] == 20


def test_a_changed_configuration_refuses_stale_shards_unless_told(fake_engine, tmp_path):
    generate_resumable(prompts(), gen(), tmp_path / "run", shard_size=6)
    with pytest.raises(StaleRunError, match="overwrite=True"):
        generate_resumable(prompts(), gen(sampling={"temperature": 0.1}), tmp_path / "run", shard_size=6)
    with pytest.raises(StaleRunError):
        generate_resumable(prompts(per_label=11), gen(), tmp_path / "run", shard_size=6)
    fake_engine.calls.clear()
    out = generate_resumable(prompts(), gen(sampling={"temperature": 0.1}), tmp_path / "run", shard_size=6, overwrite=True)
    assert fake_engine.calls == [6, 6, 6, 2] and len(out) == 20


@pytest.mark.parametrize("damage", ["truncate", "garbage", "other_rows", "missing_column"])
def test_a_corrupt_shard_is_detected_and_regenerated(fake_engine, tmp_path, caplog, damage):
    run = tmp_path / "run"
    first = generate_resumable(prompts(), gen(), run, shard_size=6)
    shard = sorted((run / "shards").glob("*.parquet"))[1]
    if damage == "truncate":
        shard.write_bytes(shard.read_bytes()[:200])
    elif damage == "garbage":
        shard.write_bytes(b"not parquet at all")
    elif damage == "other_rows":  # a readable file holding shard 0's rows under shard 1's name
        shard.write_bytes(sorted((run / "shards").glob("*.parquet"))[0].read_bytes())
    else:  # readable, right rows, but written by another version without a column
        import pyarrow.parquet as pq

        pq.write_table(pq.read_table(shard).drop_columns(["label_agrees"]), shard)
    fake_engine.calls.clear()
    with caplog.at_level(logging.WARNING):
        again = generate_resumable(prompts(), gen(), run, shard_size=6)
    assert fake_engine.calls == [6]
    assert "generating it again" in caplog.text and shard.name in caplog.text
    assert again["raw_completion"] == first["raw_completion"]


def test_rows_with_repeated_ids_are_refused(fake_engine, tmp_path):
    p = prompts(1)
    dup = Dataset.from_dict({"row_id": ["a", "a"], "messages": p["messages"]})
    with pytest.raises(ValueError, match="repeated row_id"):
        generate_resumable(dup, gen(), tmp_path / "run")


SCRIPT = textwrap.dedent('''
    import sys, time, json
    sys.path.insert(0, {tests!r})
    from conftest import FakeEngine
    from datasets import Dataset
    from synth_datasets import Generate, engine
    from synth_datasets.engine import EngineConfig
    from synth_datasets.shards import generate_resumable
    from synth_datasets.tasks import classification as c

    class SlowFake(FakeEngine):
        def chat(self, conversations, sampling, json_schema=None, use_tqdm=False):
            with open({log!r}, "a") as f:
                f.write(json.dumps(len(conversations)) + "\\n")
            time.sleep(float(sys.argv[1]))
            return super().chat(conversations, sampling, json_schema)

    engine.BACKENDS["fake"] = SlowFake
    labels = ["card_arrival", "lost_card"]
    seeds = Dataset.from_dict({{"text": ["where is my card", "lost it"], "label": labels}})
    prompts = c.classification_prompts(seeds, per_label=20)
    gen = Generate(engine=EngineConfig(backend="fake"), json_schema=c.json_schema(labels), parser="classification")
    out = generate_resumable(prompts, gen, {run!r}, shard_size=4)
    out.to_json({result!r})
''')


def test_sigkill_mid_run_then_rerun_continues_without_loss_or_duplicates(tmp_path):
    run, log, result = tmp_path / "run", tmp_path / "calls.log", tmp_path / "result.jsonl"
    script = tmp_path / "run_it.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent), log=str(log), run=str(run), result=str(result)))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, str(script), "0.4"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shards = run / "shards"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(shards.glob("*.parquet"))) < 3:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(shards.glob("*.parquet")))
    assert 3 <= done_before < 10, "the kill should land mid-run"
    assert not result.exists()
    calls_before = len(log.read_text().splitlines())

    subprocess.run([sys.executable, str(script), "0"], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    calls_after = len(log.read_text().splitlines()) - calls_before
    assert calls_after == 10 - done_before  # only the missing shards, the one in flight included
    rows = [json.loads(line) for line in result.read_text().splitlines()]
    ids = [r["row_id"] for r in rows]
    assert len(ids) == 40 and len(set(ids)) == 40
    assert all(r["parse_error"] is None for r in rows)


def test_the_run_fingerprint_sees_the_ids_not_where_the_prompts_live(fake_engine, tmp_path):
    from datasets import load_from_disk

    from synth_datasets.shards import run_fingerprint

    p = prompts()
    p.save_to_disk(str(tmp_path / "a"))
    p.save_to_disk(str(tmp_path / "b"))
    same = [p, p.select(range(len(p))), load_from_disk(str(tmp_path / "a")), load_from_disk(str(tmp_path / "b"))]
    assert len({run_fingerprint(x, gen(), 6) for x in same}) == 1
    assert run_fingerprint(p, gen(), 6) != run_fingerprint(p, gen(), 7)
    assert run_fingerprint(p, gen(), 6) != run_fingerprint(p.select(range(19)), gen(), 6)
    lean = Generate(engine=EngineConfig(backend="fake", options={"kv_cache_space_gib": 1, "gpu_memory_utilization": 0.5}),
                    json_schema=c.json_schema(LABELS), parser="classification")
    assert run_fingerprint(p, lean, 6) == run_fingerprint(p, gen(), 6)  # memory settings: same run
    styled = Generate(engine={"backend": "fake", "style": "fancy"}, json_schema=c.json_schema(LABELS), parser="classification")
    assert run_fingerprint(p, styled, 6) != run_fingerprint(p, gen(), 6)  # an option that changes outputs: another run


def test_empty_prompts_give_an_empty_typed_result(fake_engine, tmp_path):
    out = generate_resumable(prompts().select(range(0)), gen(), tmp_path / "run")
    assert len(out) == 0 and out.features["parse_error"].dtype == "string" and fake_engine.calls == []


def test_a_malformed_manifest_is_a_stale_run(fake_engine, tmp_path):
    generate_resumable(prompts(), gen(), tmp_path / "run", shard_size=6)
    (tmp_path / "run" / "run.json").write_text("{not json")
    with pytest.raises(StaleRunError):
        generate_resumable(prompts(), gen(), tmp_path / "run", shard_size=6)


def test_the_request_journal_keeps_finished_requests_only_and_survives_a_torn_line(tmp_path):
    from synth_datasets.engine import Completion
    from synth_datasets.shards import RequestJournal

    path = tmp_path / "journal" / "00000-of-00001.jsonl"
    journal = RequestJournal(path)
    journal.record("a", Completion("one", "stop", 3, 1))
    journal.record("b", Completion("", None, error="request failed: 500"))  # not kept: a rerun sends it again
    journal.close()
    journal.record("c", Completion("late", "stop", 3, 1))  # after close (an interrupted call): not kept
    with open(path, "a") as f:
        f.write('{"row_id": "d", "completion": {"te')  # a kill mid-line
    again = RequestJournal(path)
    again.record("e", Completion("five", "length", 3, 2))
    again.close()
    found = RequestJournal(path).load(["a", "b", "c", "d", "e", "z"])
    assert sorted(found) == ["a", "e"] and found["e"] == Completion("five", "length", 3, 2)
    assert RequestJournal(path).load(["e"]).keys() == {"e"}  # only the rows asked for
    RequestJournal(path).close(delete=True)
    assert not path.exists()


def test_overwrite_deletes_the_journal_of_another_run(fake_engine, tmp_path):
    p = prompts()
    run = tmp_path / "run"
    generate_resumable(p, gen(), run, shard_size=6)
    (run / "journal").mkdir()
    (run / "journal" / "00001-of-00004.jsonl").write_text('{"row_id": "x"}\n')
    generate_resumable(p, gen(), run, shard_size=5, overwrite=True)
    assert not (run / "journal").exists()
