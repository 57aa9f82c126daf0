"""What a review of main at 8d47303 found, each pinned by a test that failed before the fix:
the judge's control and engine work, the checks' cache keys, recipe errors found late, imports
where fcntl is missing, engine lifecycle and a fake engine that ignored the JSON schema."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from datasets import Dataset, load_from_disk
from datasets.fingerprint import Hasher

from synth_datasets import engine as engine_mod
from synth_datasets.checks import CheckContext, Decontaminate, Judge, LabelAgreement, code_digest, run_checks
from synth_datasets.engine import EngineConfig
from synth_datasets.recipe import RecipeError, load_recipe

FAKE = EngineConfig(backend="fake")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"


@pytest.fixture(autouse=True)
def own_datasets_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def file_backed(ds: Dataset, folder: Path) -> Dataset:
    ds.save_to_disk(str(folder))
    return load_from_disk(str(folder))


def judge_answers(conversation):
    prompt = conversation[-1]["content"]
    if "Rate the text" not in prompt:  # a generation request
        from conftest import default_responder

        return default_responder(conversation)
    fit = 5 if "card" in prompt.split("Text: ", 1)[1].split("\n", 1)[0].lower() else 1
    return json.dumps({"label_fit_reason": "r", "label_fit": fit, "plausibility_reason": "r", "plausibility": 4})


def test_the_judge_control_does_not_run_again_when_every_row_comes_from_the_cache(fake_engine, tmp_path):
    fake_engine.responder = staticmethod(judge_answers)
    ds = file_backed(Dataset.from_dict({"text": ["my card is late", "hello there"], "label": ["card_arrival"] * 2}),
                     tmp_path / "rows")
    context = CheckContext(real_texts=["my card has not arrived"] * 4, real_labels=["card_arrival"] * 4,
                           extra={"generator": (FAKE, None)})
    kept, _ = run_checks(ds, [Judge()], context=context)
    assert fake_engine.calls == [4, 2] and kept["text"] == ["my card is late"]  # control rows, then the rows
    kept_again, report = run_checks(ds, [Judge()], context=context)
    assert fake_engine.calls == [4, 2]  # all from the datasets cache: no control, no judging
    assert kept_again["text"] == kept["text"] and report.results[0].removed == 1


def test_the_judges_requests_are_not_counted_as_generation(fake_engine, tmp_path):
    from test_pipeline import write_recipe

    from synth_datasets.pipeline import run_recipe

    fake_engine.responder = staticmethod(judge_answers)
    path = write_recipe(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["checks"] = ["parsed", {"judge": {"control_rows": 0}}]
    path.write_text(yaml.safe_dump(data))
    folder, report = run_recipe(load_recipe(path))
    provenance = json.loads((folder / "provenance.json").read_text())
    assert provenance["engine_work"]["requests"] == 92 == provenance["requests"]  # generation only
    judge = report.results[1]
    assert judge.engine_work["requests"] == 92 and fake_engine.calls == [92, 92]
    assert "The judge check ran 92 requests on its engine" in (folder / "README.md").read_text()


def _write_check_module(folder: Path, name: str, needle: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(f'''
        from dataclasses import dataclass
        from synth_datasets.checks import Check

        @dataclass
        class Contains(Check):
            name = "contains"

            def flag_batch(self, batch):
                return {{self.flag_column: ["{needle}" in t for t in batch[self.text_col]]}}
    '''))


def test_a_user_defined_check_reruns_when_its_own_code_changes_and_only_then(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    _write_check_module(tmp_path, "user_check_a", "a")
    _write_check_module(tmp_path, "user_check_b", "b")
    import user_check_a
    import user_check_b

    ds = file_backed(Dataset.from_dict({"text": ["apple", "berry", "cherry"]}), tmp_path / "rows")
    assert user_check_a.Contains().annotate(ds)["contains_flag"] == [True, False, False]
    digest_b = code_digest(user_check_b.Contains)
    _write_check_module(tmp_path, "user_check_a", "rr")  # the check's own code changes...
    importlib.invalidate_caches()
    importlib.reload(user_check_a)
    assert user_check_a.Contains().annotate(ds)["contains_flag"] == [False, True, True]  # ...so it runs again
    importlib.reload(user_check_b)
    assert code_digest(user_check_b.Contains) == digest_b  # another module's edit changes nothing here


def test_fitted_state_stays_out_of_the_cache_key(tmp_path):
    ds = file_backed(Dataset.from_dict({"text": ["where is my card", "what rate for dollars"],
                                        "label": ["card_arrival", "exchange_rate"]}), tmp_path / "rows")
    context = CheckContext(real_texts=["my card has not come", "how much is a dollar in euro"] * 2,
                           real_labels=["card_arrival", "exchange_rate"] * 2, test_texts=["a b c d e f"])
    for check in (LabelAgreement().bind(context), Decontaminate(n=3, min_words=2).bind(context)):
        before = Hasher.hash(check)
        first = check.annotate(ds)
        assert check.__dict__.get("_student") is not None or check.__dict__.get("_index") is not None  # it fitted
        assert Hasher.hash(check) == before  # ...and its key did not change: a second map hits the cache
        assert check.annotate(ds)._fingerprint == first._fingerprint


def test_recipe_errors_that_used_to_surface_after_generation_stop_the_load(tmp_path, monkeypatch):
    from test_pipeline import write_recipe

    path = write_recipe(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["checks"] = ["parsed", "decontaminate"]
    data["compare"]["test_path"] = None
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RecipeError, match=r"checks\[1\] \(decontaminate\): needs the evaluation split; set compare.test_path"):
        load_recipe(path)
    data["checks"] = ["parsed", "semantic_dedup"]
    path.write_text(yaml.safe_dump(data))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "sentence_transformers" else real_find_spec(name, *a))
    with pytest.raises(RecipeError, match=r"semantic_dedup\): needs sentence_transformers.*synth-datasets\[train\]"):
        load_recipe(path)


def test_the_package_imports_and_locks_where_fcntl_is_missing(tmp_path):
    code = ("import sys; sys.modules['fcntl'] = None\n"  # as on Windows: `import fcntl` fails
            "import synth_datasets, synth_datasets.models, synth_datasets.pipeline\n"
            "from synth_datasets.locks import folder_lock\n"
            f"with folder_lock({str(tmp_path / 'out')!r}): print('locked')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "locked" in proc.stdout, proc.stderr[-2000:]


def test_the_fake_engine_refuses_what_the_grammar_would_not_allow(fake_engine):
    """The fast suite sees grammar regressions: a schema that does not allow the requested label."""
    from conftest import SchemaBroken

    from synth_datasets import Generate, generate
    from synth_datasets.tasks import classification as c

    seeds = Dataset.from_dict({"text": ["my card is late"], "label": ["card_arrival"]})
    prompts = c.classification_prompts(seeds, per_label=2)
    generate(prompts, Generate(engine=FAKE, json_schema=c.json_schema(["card_arrival"]), parser="classification"))
    with pytest.raises(SchemaBroken, match="is not one of"):
        generate(prompts, Generate(engine=FAKE, json_schema=c.json_schema(["exchange_rate"]), parser="classification"))
    with pytest.raises(SchemaBroken, match="too long"):
        generate(prompts, Generate(engine=FAKE, json_schema=c.json_schema(["card_arrival"], max_chars=5), parser="classification"))


class _LifecycleEngine:
    """The fake engine, recording when it answers and when it is shut down."""

    options_class = engine_mod.BackendOptions
    events: list[str] = []

    def __init__(self, config):
        from conftest import FakeEngine

        self.inner = FakeEngine(config)

    def chat(self, conversations, sampling, json_schema=None):
        _LifecycleEngine.events.append("generate")
        return self.inner.chat(conversations, sampling, json_schema)

    def describe(self):
        return {"backend": "lifecycle"}

    def shutdown(self):
        _LifecycleEngine.events.append("shutdown")


def test_compare_releases_the_engine_before_it_trains_students(fake_engine, tmp_path):
    from test_compare import _SpyStudent, write_recipe

    from synth_datasets.compare import run_compare

    class Student(_SpyStudent):
        def fit(self, rows, task, prior=None):
            _LifecycleEngine.events.append("fit")
            return super().fit(rows, task, prior)

    engine_mod.BACKENDS.register("lifecycle", _LifecycleEngine)
    _LifecycleEngine.events = []
    try:
        path = write_recipe(tmp_path, draws=2, real_per_label=[2])
        data = yaml.safe_load(path.read_text())
        data["engine"] = {"backend": "lifecycle"}
        path.write_text(yaml.safe_dump(data))
        run_compare(load_recipe(path), student=Student(), progress=False, echo=None)
    finally:
        engine_mod.BACKENDS.unregister("lifecycle")
    events = _LifecycleEngine.events
    assert events[:3] == ["generate", "generate", "shutdown"] and set(events[3:]) == {"fit"}
    assert not [c for c in engine_mod._ENGINES if c.backend == "lifecycle"]


def test_a_judge_with_a_model_of_its_own_releases_its_engine_and_keeps_the_generators(fake_engine):
    fake_engine.responder = staticmethod(judge_answers)
    generator = EngineConfig(backend="fake", model=None)
    engine_mod.get_engine(generator)
    context = CheckContext(extra={"generator": (generator, None)})
    ds = Dataset.from_dict({"text": ["my card is late"], "label": ["card_arrival"]})
    judge = Judge(model="org/judge-model", control_rows=0).bind(context)
    judge.annotate(ds)
    assert judge.engine_work["requests"] == 1
    assert generator in engine_mod._ENGINES  # generation's engine stays for the next draw
    assert not [c for c in engine_mod._ENGINES if c.model == "org/judge-model"]  # the judge's is gone
    same = Judge(control_rows=0).bind(context)
    same.annotate(ds)
    assert generator in engine_mod._ENGINES  # a judge on the generator's engine leaves it to its owner


def test_keep_holds_an_engine_that_release_would_free(fake_engine):
    config = EngineConfig(backend="fake", seed=7)
    engine_mod.get_engine(config)
    with engine_mod.keep(config):
        assert engine_mod.release(config) is False and config in engine_mod._ENGINES
    assert engine_mod.release(config) is True and config not in engine_mod._ENGINES


def test_generation_statistics_belong_to_the_transform_not_the_process(fake_engine):
    from synth_datasets import Generate, generate
    from synth_datasets.tasks import classification as c

    seeds = Dataset.from_dict({"text": ["my card is late"], "label": ["card_arrival"]})
    prompts = c.classification_prompts(seeds, per_label=3)
    one, two = (Generate(engine=FAKE, json_schema=c.json_schema(["card_arrival"]), parser="classification") for _ in range(2))
    generate(prompts, one)
    generate(prompts.select(range(2)), two)
    assert one.stats.requests == 3 and two.stats.requests == 2
    assert Hasher.hash(one) == Hasher.hash(two)  # the statistics are not part of the cache key
