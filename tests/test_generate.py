import json
import pickle

import pytest
from datasets import Dataset, load_from_disk
from datasets.fingerprint import Hasher

from synth_datasets import Generate, SamplingConfig
from synth_datasets.engine import EngineConfig, get_engine
from synth_datasets.tasks import classification as c

FAKE = EngineConfig(backend="fake")
LABELS = ["card_arrival", "lost_card"]


def prompts(n_per_label=3) -> Dataset:
    seeds = Dataset.from_dict({"text": ["where is my card", "card not here", "lost it", "stolen card"],
                               "label": ["card_arrival", "card_arrival", "lost_card", "lost_card"]})
    return c.classification_prompts(seeds, per_label=n_per_label)


def gen(**kw) -> Generate:
    return Generate(engine=FAKE, json_schema=c.json_schema(LABELS), parser="classification", **kw)


def on_disk(ds: Dataset, tmp_path) -> Dataset:
    """Only datasets backed by files get cache files; save and reload to test caching."""
    ds.save_to_disk(str(tmp_path / "prompts"))
    return load_from_disk(str(tmp_path / "prompts"))


def test_map_adds_raw_parsed_and_error_columns_in_one_engine_call(fake_engine):
    out = prompts().map(gen(), batched=True, batch_size=1000)
    assert fake_engine.calls == [6]
    for col in ("raw_completion", "finish_reason", "parse_error", "text", "model_label", "label_agrees", "row_id", "messages"):
        assert col in out.column_names
    assert out["parse_error"] == [None] * 6
    assert out["label_agrees"] == [True] * 6
    assert out["model_label"] == out["label"]


def test_malformed_and_truncated_outputs_are_recorded_not_raised(fake_engine, monkeypatch):
    fake_engine.constrained = False  # plays an engine whose output no grammar constrains
    answers = iter(['{"text": "fine", "label": "lost_card"}', "Sure! Here is", '{"text": "x", "label": "nope"}',
                    json.dumps({"text": "word " * 500, "label": "lost_card"}), "", '{"text": "ok", "label": "card_arrival"}'])
    monkeypatch.setattr(fake_engine, "responder", staticmethod(lambda conv: next(answers)))
    out = prompts().map(gen(sampling=SamplingConfig(max_tokens=50)), batched=True)
    errors = out["parse_error"]
    assert errors[0] is None and errors[5] is None
    assert errors[1].startswith("invalid JSON") and "not one of" in errors[2]
    assert errors[3].startswith("truncated") and out["finish_reason"][3] == "length"
    assert errors[4].startswith("invalid JSON")
    assert out["raw_completion"][1] == "Sure! Here is"
    assert out["text"][1] is None and out["text"][0] == "fine"
    assert out["label_agrees"][0] is False  # requested card_arrival, model said lost_card


def test_fingerprint_comes_from_configuration_not_the_engine(fake_engine):
    a, b = gen(), gen()
    get_engine(FAKE)  # an engine now exists in the process; it must not change the hash
    assert Hasher.hash(a) == Hasher.hash(b)
    assert Hasher.hash(a) != Hasher.hash(gen(sampling=SamplingConfig(temperature=0.1)))
    assert Hasher.hash(a) != Hasher.hash(Generate(engine=FAKE, json_schema=c.json_schema(["x"]), parser="classification"))
    assert Hasher.hash(a) != Hasher.hash(gen(model="some/other-model"))
    assert set(a.__getstate__()) == {"model", "sampling", "engine", "json_schema", "parser", "messages_column", "version"}
    restored = pickle.loads(pickle.dumps(a))
    assert restored.fields == a.fields and Hasher.hash(restored) == Hasher.hash(a)


def test_same_config_hits_the_datasets_cache_and_a_change_misses_it(fake_engine, tmp_path):
    ds = on_disk(prompts(), tmp_path)
    first = ds.map(gen(), batched=True)
    assert fake_engine.calls == [6]
    again = ds.map(gen(), batched=True)
    assert fake_engine.calls == [6]  # no engine call: loaded from the cache file
    assert again["raw_completion"] == first["raw_completion"]
    assert again.cache_files == first.cache_files
    ds.map(gen(sampling=SamplingConfig(temperature=0.2)), batched=True)
    assert fake_engine.calls == [6, 6]
    changed_prompt = on_disk(prompts(n_per_label=2), tmp_path / "other")
    changed_prompt.map(gen(), batched=True)
    assert fake_engine.calls == [6, 6, 4]


def test_each_map_batch_is_one_engine_call(fake_engine):
    prompts(n_per_label=5).map(gen(), batched=True, batch_size=4)
    assert fake_engine.calls == [4, 4, 2]


def test_config_errors_name_the_fix(fake_engine):
    with pytest.raises(ValueError, match="parser='nonsense' is not known; choose 'text', 'json' or a task"):
        Generate(engine=FAKE, parser="nonsense")
    with pytest.raises(ValueError, match="needs a json_schema"):
        Generate(engine=FAKE, parser="json")
    with pytest.raises(ValueError, match="top_p"):
        SamplingConfig(top_p=0)
    with pytest.raises(ValueError, match="backend: 'nope' is not a known backend"):
        get_engine(EngineConfig(backend="nope"))
    with pytest.raises(KeyError, match="messages"):
        Dataset.from_dict({"prompt": ["hi"]}).map(Generate(engine=FAKE), batched=True)


def test_text_parser_keeps_completion_only(fake_engine):
    out = prompts(1).map(Generate(engine=FAKE), batched=True)
    assert "text" not in out.column_names
    assert all(r.startswith("{") for r in out["raw_completion"])


def test_many_batches_with_errors_appearing_late_keep_their_types(fake_engine, monkeypatch):
    fake_engine.constrained = False  # plays an engine whose output no grammar constrains
    # First batch: every answer parses (parse_error all None); later: failures. And the reverse:
    # a first batch where nothing parses (text all None), later ones that do.
    from synth_datasets import generate

    for bad_first in (False, True):
        answers = iter(["not json"] * 4 + ['{"text": "ok", "label": "lost_card"}'] * 4 if bad_first
                       else ['{"text": "ok", "label": "lost_card"}'] * 4 + ["not json"] * 4)
        monkeypatch.setattr(fake_engine, "responder", staticmethod(lambda conv, a=answers: next(a)))
        out = generate(prompts(n_per_label=4), gen(), batch_size=2)
        assert out.features["parse_error"].dtype == "string" and out.features["label_agrees"].dtype == "bool"
        errors = [e is not None for e in out["parse_error"]]
        assert errors == ([True] * 4 + [False] * 4 if bad_first else [False] * 4 + [True] * 4)
        assert out["text"][-1 if bad_first else 0] == "ok"


def test_plain_map_without_features_fails_on_late_errors_as_documented(fake_engine, monkeypatch):
    fake_engine.constrained = False  # plays an engine whose output no grammar constrains
    # Why generate() passes features=: this is what datasets does without them.
    answers = iter(['{"text": "ok", "label": "lost_card"}'] * 2 + ["not json"] * 4)
    monkeypatch.setattr(fake_engine, "responder", staticmethod(lambda conv: next(answers)))
    with pytest.raises(TypeError, match="type in this file is null"):
        prompts().map(gen(), batched=True, batch_size=2)


def test_parser_columns_may_not_replace_input_columns(fake_engine):
    schema = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}
    with pytest.raises(ValueError, match=r"writes \['label'\], which the input already has"):
        prompts(1).map(Generate(engine=FAKE, json_schema=schema, parser="json"), batched=True)


def test_json_parser_features_follow_the_schema_and_untyped_properties_are_refused(fake_engine):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}}}}
    feats = Generate(engine=FAKE, json_schema=schema, parser="json").features(prompts(1).features)
    assert feats["n"].dtype == "int64" and "row_id" in feats
    with pytest.raises(ValueError, match="property 'x': give it a 'type'"):
        Generate(engine=FAKE, json_schema={"properties": {"x": {}}}, parser="json").features(prompts(1).features)


def test_generate_helper_honours_remove_columns(fake_engine):
    from synth_datasets import generate

    out = generate(prompts(1), gen(), remove_columns=["variation"])
    assert "variation" not in out.column_names and "text" in out.column_names


def test_num_proc_above_one_is_refused_by_generate_and_warned_about_in_map(fake_engine, caplog, monkeypatch):
    import multiprocess

    import importlib

    from synth_datasets import generate

    gen_module = importlib.import_module("synth_datasets.generate")  # the package exports a function of that name
    with pytest.raises(ValueError, match="num_proc > 1 would start one engine per worker"):
        generate(prompts(1), gen(), num_proc=2)
    # the detection: true in a worker of the pool datasets uses for num_proc > 1, false here
    with multiprocess.Pool(1) as pool:
        assert pool.apply(gen_module._in_map_worker) is True
    assert gen_module._in_map_worker() is False
    with caplog.at_level("WARNING"):
        prompts(1).map(gen(), batched=True)
    assert "datasets worker process" not in caplog.text  # in this process: no warning
    monkeypatch.setattr(gen_module, "_in_map_worker", lambda: True)  # as inside a worker
    with caplog.at_level("WARNING"):
        prompts(1).map(gen(), batched=True, load_from_cache_file=False)
    assert "running in a datasets worker process (num_proc > 1)" in caplog.text


def test_generate_on_no_rows_still_has_the_generated_columns(fake_engine):
    from synth_datasets import generate

    out = generate(prompts(1).select(range(0)), gen())
    assert len(out) == 0 and {"parse_error", "text", "row_id"} <= set(out.column_names)


def test_the_stage_bar_counts_generated_rows_and_says_when_they_came_from_the_cache(fake_engine, tmp_path, capsys):
    from datasets import load_from_disk

    from synth_datasets import generate

    prompts(2).save_to_disk(str(tmp_path / "p"))
    ds = load_from_disk(str(tmp_path / "p"))  # file-backed: the second map is served from the cache
    generate(ds, gen())
    first = capsys.readouterr().err
    assert f"{len(ds)}/{len(ds)}" in first and "from the cache" not in first
    generate(ds, gen())
    assert "from the cache" in capsys.readouterr().err and fake_engine.calls == [len(ds)]


def test_completion_mode_sends_plain_prompts_to_complete_and_keeps_chat_cache_keys(fake_engine, tmp_path):
    """prompt_column= sends plain-text prompts through the engine's `complete` (no chat template);
    a chat-mode Generate pickles as before the option existed, so old caches still hit."""
    prompts = Dataset.from_dict({"row_id": ["a", "b"], "prompt": ["List:\n1. one\n2.", "List:\n1. two\n2."]})
    gen = Generate(engine=FAKE, prompt_column="prompt", sampling={"max_tokens": 20})
    out = prompts.map(gen, batched=True, features=gen.features(prompts.features))
    assert fake_engine.calls == [2]
    assert out["raw_completion"][0].startswith(" continued ")
    assert out["raw_completion"][0] != out["raw_completion"][1]
    assert "prompt_column" not in Generate(engine=FAKE).__getstate__()
    assert Generate(engine=FAKE, prompt_column="prompt").__getstate__()["prompt_column"] == "prompt"
    assert Hasher.hash(gen) != Hasher.hash(Generate(engine=FAKE, sampling={"max_tokens": 20}))
    with pytest.raises(KeyError, match="'prompt' column of plain-text prompts"):
        Dataset.from_dict({"messages": [[{"role": "user", "content": "hi"}]]}).map(gen, batched=True)


def test_completion_mode_on_a_backend_without_complete_says_so(fake_engine, monkeypatch):
    monkeypatch.delattr(fake_engine, "complete")
    gen = Generate(engine=FAKE, prompt_column="prompt")
    with pytest.raises(ValueError, match="has no `complete`"):
        Dataset.from_dict({"prompt": ["1."]}).map(gen, batched=True)
