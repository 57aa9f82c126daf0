from collections import Counter

import pytest
from datasets import ClassLabel, Dataset, Features, Value

from synth_datasets.engine import Completion
from synth_datasets.tasks import classification as c


def seeds(counts: dict[str, int]) -> Dataset:
    texts, labels = [], []
    for label, n in counts.items():
        texts += [f"{label} example {i}" for i in range(n)]
        labels += [label] * n
    return Dataset.from_dict({"text": texts, "label": labels})


def test_balance_generates_only_the_deficit_of_each_label():
    ds = seeds({"common": 10, "rare": 2, "mid": 6})
    prompts = c.classification_prompts(ds, balance_to=8)
    assert Counter(prompts["label"]) == {"rare": 6, "mid": 2}  # common already has 10 >= 8


def test_balance_counts_the_real_data_when_given():
    ds = seeds({"a": 2, "b": 2})
    real = seeds({"a": 9, "b": 1})
    prompts = c.classification_prompts(ds, balance_to=5, real=real)
    assert Counter(prompts["label"]) == {"b": 4}


def test_per_label_and_label_subset():
    prompts = c.classification_prompts(seeds({"a": 3, "b": 3, "z": 3}), ["a", "b"], per_label=4)
    assert Counter(prompts["label"]) == {"a": 4, "b": 4}
    assert prompts.column_names == ["row_id", "messages", "label", "variation"]


def test_prompts_rotate_seed_examples_across_requests():
    prompts = c.classification_prompts(seeds({"a": 6}), per_label=2, shots=3)
    shown = [set(line[2:] for line in m[-1]["content"].splitlines() if line.startswith("- a example")) for m in prompts["messages"]]
    assert len(shown[0]) == 3 and len(shown[1]) == 3
    assert shown[0].isdisjoint(shown[1])  # two requests, six seeds: every seed shown once


def test_prompts_vary_and_ids_are_stable_and_unique():
    ds = seeds({"a": 4, "b": 4})
    p1 = c.classification_prompts(ds, per_label=20, seed=1)
    p2 = c.classification_prompts(ds, per_label=20, seed=1)
    p3 = c.classification_prompts(ds, per_label=20, seed=2)
    assert p1["row_id"] == p2["row_id"]
    assert len(set(p1["row_id"])) == 40
    assert p1["row_id"] != p3["row_id"]
    assert len(set(p1["variation"])) > 10
    assert p1["messages"][0][0]["role"] == "system" and p1["messages"][0][1]["role"] == "user"


def test_classlabel_seeds_use_label_names():
    features = Features({"text": Value("string"), "label": ClassLabel(names=["neg", "pos"])})
    ds = Dataset.from_dict({"text": ["bad", "good", "great"], "label": [0, 1, 1]}, features=features)
    prompts = c.classification_prompts(ds, balance_to=2)
    assert prompts["label"] == ["neg"]


def test_prompt_errors_name_the_fix():
    ds = seeds({"a": 2})
    with pytest.raises(ValueError, match="exactly one of per_label"):
        c.classification_prompts(ds)
    with pytest.raises(ValueError, match="text_column"):
        c.classification_prompts(ds.rename_column("text", "body"), per_label=1)


def test_parse_keeps_requested_label_and_records_disagreement():
    schema = c.json_schema(["a", "b"])
    fields, err = c.parse({"label": "a"}, Completion('{"text": " hello ", "label": "b"}', "stop"), schema)
    assert err is None
    assert fields == {"text": "hello", "model_label": "b", "label_agrees": False}


@pytest.mark.parametrize("raw,reason", [
    ('{"text": "x", "label": "b"', "invalid JSON"),
    ('{"text": "x", "label": "zzz"}', "not one of"),
    ('{"label": "a"}', "missing required field 'text'"),
    ('{"text": "   ", "label": "a"}', "empty text"),
    ('[1, 2]', "expected a JSON object"),
])
def test_parse_records_errors_instead_of_raising(raw, reason):
    fields, err = c.parse({"label": "a"}, Completion(raw, "stop"), c.json_schema(["a", "b"]))
    assert reason in err
    assert set(fields) == set(c.FIELDS)


def test_truncated_output_says_so():
    _, err = c.parse({"label": "a"}, Completion('{"text": "a long', "length", 5, 80), c.json_schema(["a"]))
    assert err.startswith("truncated: hit max_tokens")


def test_classlabel_names_without_rows_get_the_biggest_deficit():
    features = Features({"text": Value("string"), "label": ClassLabel(names=["neg", "pos", "neutral"])})
    ds = Dataset.from_dict({"text": ["bad", "good"], "label": [0, 1]}, features=features)
    prompts = c.classification_prompts(ds, balance_to=3)
    assert Counter(prompts["label"]) == {"neg": 2, "pos": 2, "neutral": 3}


def test_zero_prompts_keep_typed_columns():
    prompts = c.classification_prompts(seeds({"a": 5}), balance_to=2)
    assert len(prompts) == 0 and prompts.features["messages"].feature["role"].dtype == "string"
