"""The extraction task (tasks/extraction.py) with the fake engine: records from the schema, documents
checked value by value, noise through the offset map, spans and BIO tags that hold, the outputs."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml
from datasets import load_dataset

from synth_datasets.pipeline import run_recipe
from synth_datasets.recipe import load_recipe
from synth_datasets.spans import to_bio
from synth_datasets.tasks.extraction import Extraction, ExtractionSeeds, entities_record, show_values, span_problems

ROOT = Path(__file__).resolve().parents[1]
MIT = ROOT.parent / "shared" / "data" / "mit_restaurant"
needs_data = pytest.mark.skipif(not (MIT / "train.jsonl").is_file(), reason=f"{MIT} is not here (../shared/data)")


def last_values(prompt: str) -> list[tuple[str, str]]:
    block = prompt.rsplit("Values:\n", 1)[1].split("\nText:")[0]
    return [tuple(line[2:].split(": ", 1)) for line in block.splitlines() if line.startswith("- ")]


def query_completer(prompt: str) -> str:
    """A query holding every value, except that one request in five leaves its last value out."""
    values = last_values(prompt)
    digest = hashlib.sha1(prompt.encode()).digest()
    if digest[0] % 5 == 0 and len(values) > 1:
        values = values[:-1]
    return "find " + " with ".join(v.lower() for _, v in values) + " nearby\n###"


def write_recipe(tmp_path, **task) -> Path:
    data = yaml.safe_load((ROOT / "recipes" / "mit-restaurant.yaml").read_text())
    data["seeds"]["path"] = str(MIT / "train.jsonl")
    data["task"]["schema"] = str(ROOT / "recipes" / "schemas" / "mit-restaurant.json")
    data["task"].update(task)
    data["compare"]["test_path"] = str(MIT / "test.jsonl")
    data["engine"] = {"backend": "fake"}
    data["output"] = {"dir": str(tmp_path / "out")}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@needs_data
def test_seeds_read_from_spans_and_from_bio_give_the_same_rows():
    rows = load_dataset("json", data_files=str(MIT / "train.jsonl"), split="train").select(range(200))
    by_spans, dropped = Extraction(seeds=ExtractionSeeds(path="x")).standardize(rows, "seeds")
    by_bio, _ = Extraction(seeds=ExtractionSeeds(path="x", entities_column=None)).standardize(rows, "seeds")
    assert dropped == {} and len(by_spans) == 200
    assert by_spans.to_list() == by_bio.to_list()
    first = by_spans[0]
    assert first["text"] == "2 start restaurants with inside dining"
    assert [(e["label"], e["text"]) for e in first["entities"]] == [("Rating", "2 start"), ("Amenity", "inside dining")]
    assert json.loads(first["record"]) == {"Rating": "2 start", "Amenity": "inside dining"}
    # the whole training split: every span holds and its BIO tags are MIT's own
    full = load_dataset("json", data_files=str(MIT / "train.jsonl"), split="train")
    for original in full.select(range(0, len(full), 7)):
        spans = [type("S", (), e) for e in original["entities"]]
        assert span_problems(original["text"], original["entities"] and [{**e, "value": e["text"]} for e in original["entities"]],
                             original["tokens"], original["tags"]) == [], spans


def test_records_are_shown_as_lines_or_json():
    assert show_values({"Cuisine": "thai", "Amenity": ["patio", "parking"]}) == \
        "- Cuisine: thai\n- Amenity: patio\n- Amenity: parking"
    assert show_values({"lines": [{"q": 1}]}).startswith("{")
    assert entities_record([{"start": 5, "label": "A", "text": "b"}, {"start": 0, "label": "A", "text": "a"}]) == {"A": ["a", "b"]}


@needs_data
def test_recipe_generates_rows_whose_spans_hold_and_drops_missing_values(fake_engine, tmp_path, monkeypatch):
    monkeypatch.setattr(fake_engine, "completer", staticmethod(query_completer))
    recipe = load_recipe(write_recipe(tmp_path))
    folder, report = run_recipe(recipe)
    provenance = json.loads((folder / "provenance.json").read_text())
    errors = dict(provenance["parse_errors"])
    assert any(reason.startswith("missing") for reason in errors), errors
    data = load_dataset(str(folder), split="train")
    assert 0 < len(data) < 40
    for row in data:
        assert span_problems(row["text"], row["entities"], row["tokens"], row["tags"]) == []
        assert (row["tokens"], row["tags"]) == to_bio(row["text"], [
            type("S", (), {"start": e["start"], "end": e["end"], "label": e["label"]}) for e in row["entities"]])
        record = json.loads(row["record"])
        # every value of the ground-truth record is labelled, and nothing else
        assert sorted(e["value"] for e in row["entities"]) == sorted(str(v) for v in record.values())
        assert sorted(e["label"] for e in row["entities"]) == sorted(record)
        assert row["text"] == row["text"].lower()  # all_lower: 1.0
        assert row["messages"][0]["role"] == "user" and row["text"] in row["messages"][0]["content"]
        assert json.loads(row["messages"][1]["content"]) == record
        assert row["clean_text"].replace(" ", "") != "" and json.loads(row["noise"]) is not None
    # each draw's values come from its own seeds (or Faker's cities for Location)
    seeds = load_dataset("json", data_files=str(MIT / "train.jsonl"), split="train")
    picked = Extraction(seeds=recipe.seeds).draw_seeds(seeds)
    pool = {(e["label"], e["text"]) for entities in picked["entities"] for e in entities}
    for row in data:
        for e in row["entities"]:
            assert e["label"] == "Location" or (e["label"], e["value"]) in pool
    card = (folder / "README.md").read_text()
    assert "spans" in card


@needs_data
def test_noise_is_applied_and_spans_follow_it(fake_engine, tmp_path, monkeypatch):
    monkeypatch.setattr(fake_engine, "completer", staticmethod(query_completer))
    recipe = load_recipe(write_recipe(tmp_path, noise={"typo": 0.5, "whitespace": 0.3, "all_lower": 1.0}))
    folder, _ = run_recipe(recipe)
    data = load_dataset(str(folder), split="train")
    changed = [r for r in data if r["text"] != r["clean_text"]]
    assert len(changed) > len(data) // 2
    typos_inside = 0
    for row in data:
        assert span_problems(row["text"], row["entities"], row["tokens"], row["tags"]) == []
        for e in row["entities"]:
            typos_inside += e["text"] != e["value"].lower()
    assert typos_inside > 0  # values were noised too, and their spans cover the noised form


def test_a_bad_schema_or_noise_setting_names_the_field(tmp_path):
    from synth_datasets.errors import RecipeError

    path = write_recipe(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["task"]["schema"] = "nowhere.json"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RecipeError, match="task.schema: .*does not exist"):
        load_recipe(path)
    data["task"]["schema"] = str(ROOT / "recipes" / "schemas" / "mit-restaurant.json")
    data["task"]["noise"] = {"typos": 0.1}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RecipeError, match="noise: .*typos.*known rates"):
        load_recipe(path)


def test_parse_records_each_reason_and_never_raises():
    from synth_datasets.engine import Completion

    wanted = json.dumps([["Cuisine", "thai", ["thai"]], ["Location", "boston", ["boston"]]])
    row = {"wanted": wanted}
    ok, error = Extraction.parse(row, Completion("cheap thai food in boston\n", "stop", 1, 1), None)
    assert error is None and [(e["label"], e["text"]) for e in ok["entities"]] == [("Cuisine", "thai"), ("Location", "boston")]
    _, error = Extraction.parse(row, Completion("thai food near me", "stop", 1, 1), None)
    assert error.startswith("missing: Location")
    _, error = Extraction.parse(row, Completion("thai food in bos", "length", 1, 1), None)
    assert error == "cut off at max_tokens"
    _, error = Extraction.parse(row, Completion("  \n", "stop", 1, 1), None)
    assert error == "empty document"
    assert re.match(r"ambiguous", Extraction.parse(
        {"wanted": json.dumps([["A", "2", ["2"]], ["B", "2", ["2"]]])}, Completion("2 stars", "stop", 1, 1), None)[1])


def test_document_ends_at_the_few_shot_lists_own_markers():
    """A small model that goes on to a second "Text:" (seen with the embedded model) has left its
    document: the document is what came before, and the stop strings end generation there."""
    from synth_datasets.engine import Completion
    from synth_datasets.tasks.extraction import STOPS

    row = {"wanted": json.dumps([["Cuisine", "vegan", ["vegan"]]])}
    ok, error = Extraction.parse(row, Completion("mexican restaurant with vegan\nText:\nnew york mexican restaurant with vegan\n",
                                                 "stop", 1, 1), None)
    assert error is None and ok["text"] == "mexican restaurant with vegan"
    ok, error = Extraction.parse(row, Completion("vegan place\nValues:\n- Cuisine: thai", "stop", 1, 1), None)
    assert error is None and ok["text"] == "vegan place"
    assert {"###", "\nText:", "\nValues:"} <= set(STOPS)


def invoice_completer(prompt: str) -> str:
    """An invoice that states every value of the requested record, in sections."""
    record = json.loads(prompt.rsplit("Values:\n", 1)[1].rsplit("\nText:", 1)[0])
    # the prompt shows money as written (two decimals, as strings)
    assert all(isinstance(i["unit_price"], str) and i["unit_price"].count(".") == 1 for i in record["line_items"])
    lines = "\n".join(f"{i['description']} - qty {i['quantity']} at ${float(i['unit_price']):,.2f} = {i['line_total']}"
                      for i in record["line_items"])
    return (f"INVOICE {record['invoice_number']}\nFrom: {record['seller']}\nTo: {record['buyer']}\n\n"
            f"Issued on {record['invoice_date']}; please pay by {record['due_date']}.\n\n{lines}\n\n"
            f"Total: {float(record['total']):,.2f} USD\n###")


def test_invoice_recipe_locates_every_value_and_keeps_spans_through_noise(fake_engine, tmp_path, monkeypatch):
    monkeypatch.setattr(fake_engine, "completer", staticmethod(invoice_completer))
    data = yaml.safe_load((ROOT / "recipes" / "invoices.yaml").read_text())
    data["seeds"]["path"] = str(ROOT / "recipes" / "data" / "invoices-seed.jsonl")
    data["task"]["schema"] = str(ROOT / "recipes" / "schemas" / "invoice.json")
    data["task"]["records"] = 30
    data["task"]["noise"].update({"reorder": 1.0, "reformat": 0.5, "typo": 0.05})
    data["engine"] = {"backend": "fake"}
    data["output"] = {"dir": str(tmp_path / "out")}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(data))
    folder, report = run_recipe(load_recipe(tmp_path / "r.yaml"))
    provenance = json.loads((folder / "provenance.json").read_text())
    rows = load_dataset(str(folder), split="train")
    # quantities like "2" can be ambiguous with a day or another quantity: those rows are recorded
    assert len(rows) + sum(n for _, n in provenance["parse_errors"]) == 30 and len(rows) >= 10
    reordered = 0
    for row in rows:
        assert span_problems(row["text"], row["entities"], row["tokens"], row["tags"], "words") == []
        record = json.loads(row["record"])
        labels = {e["label"] for e in row["entities"]}
        assert {"invoice_number", "seller", "buyer", "invoice_date", "due_date", "total",
                "line_items.quantity", "line_items.unit_price", "line_items.line_total"} <= labels
        totals = [e for e in row["entities"] if e["label"] == "total"]
        assert all(float(e["value"]) == record["total"] for e in totals)
        reordered += not row["text"].startswith("INVOICE")
    assert reordered > 0  # sections were shuffled, and the spans moved with them


@needs_data
def test_card_tells_the_extraction_story(fake_engine, tmp_path, monkeypatch):
    from huggingface_hub import DatasetCard

    monkeypatch.setattr(fake_engine, "completer", staticmethod(query_completer))
    folder, _ = run_recipe(load_recipe(write_recipe(tmp_path)))
    card = (folder / "README.md").read_text()
    provenance = json.loads((folder / "provenance.json").read_text())
    kept = provenance["entities"]["kept"]
    assert "labels are exact by\nconstruction" in card and "Values:\n" in card
    for label, n in kept.items():
        assert re.search(rf"\| {label} \| \d+ \| {n} \|", card)
    assert "Liu et al., ICASSP 2013" in card and "`whitespace`" in card
    assert "| missing" in card  # the parse errors table names why documents were dropped
    assert DatasetCard.load(folder / "README.md").data.task_categories == ["token-classification"]


def test_entity_scores_are_strict_and_match_a_hand_count():
    """Gold: 4 entities in 2 rows. Predicted: one exact, one with a wrong end, one of the wrong type,
    one exact, plus one spurious: TP 2, predicted 5, gold 4 -> P 2/5, R 2/4, F1 4/9."""
    from datasets import Dataset

    from synth_datasets.tasks.extraction import ExtractionConfig

    task = Extraction(ExtractionConfig(kind="extraction"))
    task.entity_labels = ["Cuisine", "Location"]
    rows = Dataset.from_dict({
        "text": ["cheap thai food near boston", "italian in new york city"],
        "entities": [[{"start": 6, "end": 10, "label": "Cuisine", "text": "thai", "value": "thai"},
                      {"start": 16, "end": 27, "label": "Location", "text": "near boston", "value": "near boston"}],
                     [{"start": 0, "end": 7, "label": "Cuisine", "text": "italian", "value": "italian"},
                      {"start": 11, "end": 24, "label": "Location", "text": "new york city", "value": "new york city"}]],
        "record": ["{}", "{}"]})
    predicted = [["O", "B-Cuisine", "O", "B-Location", "O"],          # thai exact; "near" only (wrong end)
                 ["B-Location", "O", "B-Location", "I-Location", "I-Location"]]  # wrong type; exact
    predicted[0][0] = "B-Cuisine"  # spurious "cheap"
    scores = task.score(predicted, rows)
    assert scores == pytest.approx({"entity_precision": 2 / 5, "entity_recall": 2 / 4, "entity_f1": 4 / 9})
    assert task.score(task.words_and_tags(rows)[1], rows) == {"entity_f1": 1.0, "entity_precision": 1.0, "entity_recall": 1.0}


def test_tagger_min_steps_adds_passes_over_few_rows_only():
    from synth_datasets.students.tagger import TaggerConfig

    config = TaggerConfig(epochs=20, batch_size=16, min_steps=300)
    assert config.passes(50) == 75      # 4 steps per pass: 20 passes would be 80 steps
    assert config.passes(400) == 20     # 25 steps per pass: 20 passes are 500 steps already
    assert TaggerConfig(epochs=20, min_steps=0).passes(50) == 20
    with pytest.raises(ValueError, match="min_steps"):
        TaggerConfig(min_steps=-1)


@needs_data
@pytest.mark.slow
def test_tagger_student_trains_on_real_rows_and_tags_the_test_split(tmp_path, capsys):
    """Real transformers steps on 300 MIT Restaurant training sentences; on 200 test sentences the
    strict entity F1 is far above a tagger that learned nothing (0), and a saved student reloads to
    the same tags."""
    from synth_datasets.students import STUDENTS
    from synth_datasets.students.tagger import TaggerStudent

    train = load_dataset("json", data_files=str(MIT / "train.jsonl"), split="train").select(range(300))
    test = load_dataset("json", data_files=str(MIT / "test.jsonl"), split="train").select(range(200))
    task = Extraction(seeds=ExtractionSeeds(path="x"))
    train, _ = task.standardize(train, "train")
    test, _ = task.standardize(test, "test")
    task = task.with_data(train)
    assert task.entity_labels == ["Amenity", "Cuisine", "Dish", "Hours", "Location", "Price", "Rating", "Restaurant_Name"]
    kind = STUDENTS["tagger"](epochs=4, min_steps=0)  # 4 passes only, for the test's time
    student = kind.fit(train, task)
    h = student.history
    assert h["steps"] == 76 and h["last_loss"] < h["first_loss"] / 2
    assert "'loss'" not in capsys.readouterr().out  # the log dicts go to the history, not to stdout
    predicted = kind.predict(student, test, task)
    assert all(len(p) == len(t.split()) for p, t in zip(predicted, test["text"]))  # MIT's own tokens
    scores = task.score(predicted, test)
    assert scores["entity_f1"] > 0.3, scores
    again = TaggerStudent.load(student.save(tmp_path / "tagger")).predict(task.words_and_tags(test)[0][:20])
    assert again == predicted[:20]


@needs_data
@pytest.mark.slow
def test_compare_on_mit_restaurant_with_the_tagger(fake_engine, tmp_path, monkeypatch):
    """The whole loop with the fake generator and real tagger training: draws of real sentences,
    synthetic rows from each draw's own seeds, real-only / synthetic-only / blended / two-stage taggers
    scored by strict entity F1 on real test sentences, a verdict and the card section."""
    from synth_datasets import cli

    monkeypatch.setattr(fake_engine, "completer", staticmethod(query_completer))
    test = tmp_path / "test.jsonl"
    with open(MIT / "test.jsonl") as src:
        test.write_text("".join(line for _, line in zip(range(150), src)))
    path = write_recipe(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["compare"] = {"test_path": str(test), "real_per_label": [20], "draws": 2, "synthetic_per_label": 30,
                       "ratios": [1.0], "student_options": {"epochs": 20, "min_steps": 0}}
    path.write_text(yaml.safe_dump(data))
    run_recipe(load_recipe(path))  # the dataset whose card gets the result
    assert cli.main(["compare", str(path)]) == 0
    runs = json.loads((tmp_path / "out" / "compare" / "compare.json").read_text())["runs"]
    arms = {(r["arm"], r["ratio"]) for r in runs}
    assert {("real-only", 0.0), ("synthetic-only", 1.0), ("blended", 1.0), ("two-stage", 1.0)} <= arms
    for run in runs:
        assert 0 <= run["entity_f1"] <= 1 and 0 <= run["entity_precision"] <= 1 and 0 <= run["entity_recall"] <= 1
    real_only = [r["entity_f1"] for r in runs if r["arm"] == "real-only"]
    assert all(f > 0.05 for f in real_only), real_only  # 20 real sentences already teach it something
    markdown = (tmp_path / "out" / "compare" / "compare.md").read_text()
    assert "entity F1" in markdown and "**Verdict**" in markdown
    card = (tmp_path / "out" / "README.md").read_text()
    assert "## Measured contribution" in card and "Not measured yet" not in card


def test_schema_from_a_pydantic_model_named_in_the_recipe(tmp_path, monkeypatch):
    from synth_datasets.tasks.extraction import load_schema

    (tmp_path / "my_schemas.py").write_text(
        "import pydantic\n"
        "class Ticket(pydantic.BaseModel):\n"
        "    city: str = pydantic.Field(json_schema_extra={'x-faker': 'city'})\n"
        "    seats: int = pydantic.Field(ge=1, le=4)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    schema = load_schema("my_schemas:Ticket")
    assert schema["properties"]["city"]["x-faker"] == "city" and schema["required"] == ["city", "seats"]
    from synth_datasets.records import RecordSchema, SchemaError

    import random
    record = RecordSchema(schema).sample(random.Random(0))
    assert set(record) == {"city", "seats"} and 1 <= record["seats"] <= 4
    with pytest.raises(SchemaError, match="cannot import"):
        load_schema("no_such_module_x:Thing")


def test_target_and_student_must_agree(tmp_path):
    from synth_datasets.errors import RecipeError

    path = write_recipe(tmp_path, target="json")
    data = yaml.safe_load(path.read_text())
    data["compare"].pop("student", None)
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RecipeError, match="compare.student: task.target 'json' is learned by the 'lm' student"):
        load_recipe(path)
    data["compare"]["student"] = "tagger"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RecipeError, match="use compare.student: lm"):
        load_recipe(path)
    data["compare"]["student"] = "lm"
    path.write_text(yaml.safe_dump(data))
    assert load_recipe(path).make_task().metrics == ("field_f1", "nll")
    data["checks"] = ["parsed", {"spans": {"tokenizer": "words"}}]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RecipeError, match="spans checks BIO tags with tokenizer 'words' but task.tokenizer is 'whitespace'"):
        load_recipe(path)


def test_sampler_include_forces_a_top_level_field_and_x_choose_still_counts():
    import random

    from synth_datasets.records import RecordSchema, SchemaError

    schema = json.loads((ROOT / "recipes" / "schemas" / "mit-restaurant.json").read_text())
    pools = {name: [f"{name.lower()} value"] for name in schema["properties"]}
    sampler = RecordSchema(schema, pools=pools)
    assert sampler.optional_fields() == {name: name for name in schema["properties"]}
    rng = random.Random(0)
    for _ in range(200):
        record = sampler.sample(rng, include=("Price",))
        assert "Price" in record and 1 <= len(record) <= 3  # x-choose [1, 3] counts the forced field
    free = [sampler.sample(rng) for _ in range(400)]
    assert 0.2 < sum("Price" in r for r in free) / 400 < 0.35  # about 2 of 8 fields: forcing is what changed
    with pytest.raises(SchemaError, match="cannot make a record include .*Nope"):
        sampler.sample(rng, include=("Nope",))
    with pytest.raises(SchemaError, match="x-choose allows 3"):
        sampler.sample(rng, include=("Price", "Dish", "Hours", "Rating"))
    # only optional top-level fields with one value each can be forced
    odd = RecordSchema({"type": "object", "required": ["id"], "properties": {
        "id": {"type": "string", "x-values": ["a1"]},
        "when": {"type": "string", "format": "date"},
        "until": {"type": "string", "format": "date", "x-after": {"field": "when"}},
        "items": {"type": "array", "items": {"type": "string", "x-values": ["x"]}},
        "vip": {"type": "boolean"},
        "total": {"type": "number", "x-formula": "1 + 1"},
        "place": {"type": "string", "x-values": ["rome"], "x-label": "Location"}}})
    assert odd.optional_fields() == {"when": "when", "place": "Location"}
    with pytest.raises(SchemaError, match="cannot make a record include"):
        odd.sample(rng, include=("id",))  # required: always there, nothing to force
    assert all("place" in odd.sample(rng, include=("place",)) for _ in range(20))
    # an invoice's fields are required or nested: nothing to balance
    assert RecordSchema(json.loads((ROOT / "recipes" / "schemas" / "invoice.json").read_text())).optional_fields() == {}


@needs_data
def test_free_records_are_the_ones_drawn_before_balancing_existed(tmp_path):
    """Row ids (so the generation cache) of a recipe without balance_to are those of the code before
    it: taken from commit be928fa with the shipped MIT recipe, seed 0, 30 records."""
    from synth_datasets.pipeline import load_seeds

    task, seeds, _ = load_seeds(load_recipe(ROOT / "recipes" / "mit-restaurant.yaml"))
    prompts = task.prompts(seeds, seed=0, per_label=30)
    assert hashlib.sha256("".join(prompts["row_id"]).encode()).hexdigest()[:16] == "9c2551b1b0a8f09c"
    assert "balancing" not in prompts.column_names


@needs_data
def test_balance_to_asks_each_entity_type_for_its_deficit_in_the_seed_rows(tmp_path):
    from synth_datasets.pipeline import load_seeds

    recipe = load_recipe(write_recipe(tmp_path, records=None, balance_to=6))
    task, seeds, _ = load_seeds(recipe)
    mentions = Extraction.mentions(seeds)
    prompts = task.prompts(seeds, seed=0)
    asked = Counter(prompts["balancing"])
    assert asked  # 40 seed queries leave some labels under 6 mentions
    for label in task.record_schema(seeds).optional_fields().values():
        assert asked.get(label, 0) == max(0, 6 - mentions[label]), (label, mentions)
    for label, record in zip(prompts["balancing"], prompts["record"]):
        assert label in json.loads(record)  # MIT's labels are its field names
    assert len(prompts) == sum(asked.values())
    # raising balance_to keeps every record drawn before: a label's records follow its own index
    more = load_recipe(write_recipe(tmp_path, records=None, balance_to=8))
    task8, _, _ = load_seeds(more)
    ids8 = set(task8.prompts(seeds, seed=0)["row_id"])
    assert set(prompts["row_id"]) <= ids8 and len(ids8) > len(prompts)
    # compare's amount (per_label) is free records, as before
    assert "balancing" not in task.prompts(seeds, seed=0, per_label=5).column_names


def test_balance_to_reports_labels_it_cannot_fill_and_refuses_nothing_to_do():
    from synth_datasets.errors import RecipeError
    from synth_datasets.tasks.extraction import ExtractionConfig

    schema = {"type": "object", "x-choose": [1, 2], "properties": {
        "Cuisine": {"type": "string", "x-pool": "Cuisine"}, "Hours": {"type": "string", "x-pool": "Hours"},
        "Spot": {"type": "string", "x-pool": "Location", "x-label": "Location"}}}
    seeds, _ = Extraction(seeds=ExtractionSeeds(path="x")).standardize(__import__("datasets").Dataset.from_dict({
        "text": ["thai food", "thai place downtown"],
        "entities": [[{"start": 0, "end": 4, "label": "Cuisine"}],
                     [{"start": 0, "end": 4, "label": "Cuisine"}, {"start": 11, "end": 19, "label": "Location"}]]}), "seeds")
    task = Extraction(ExtractionConfig(schema=schema, balance_to=3), seeds=ExtractionSeeds(path="x")).with_data(seeds)
    sampler = task.record_schema(seeds)
    asked, unfilled = task.deficits(seeds, sampler)
    assert asked == {"Cuisine": 1, "Location": 2} and unfilled == {"Hours": 3}  # no seed shows Hours: empty pool
    plan = task.plan(seeds, sampler)
    assert [(label, field) for label, field, _ in plan] == [("Cuisine", "Cuisine"), ("Location", "Spot"), ("Location", "Spot")]
    prompts = task.prompts(seeds, seed=0)
    assert prompts["balancing"] == ["Cuisine", "Location", "Location"]
    assert all("Spot" in json.loads(r) for r in prompts["record"][1:])
    full = Extraction(ExtractionConfig(schema=schema, balance_to=1), seeds=ExtractionSeeds(path="x")).with_data(seeds)
    with pytest.raises(RecipeError, match="every label already has 1 mentions"):
        full.plan(seeds, full.record_schema(seeds))  # Hours cannot be drawn, the others have 1 already


def test_records_and_balance_to_are_exclusive_and_need_fields_to_balance(tmp_path):
    from synth_datasets.errors import RecipeError
    from synth_datasets.tasks.extraction import ExtractionConfig

    with pytest.raises(ValueError, match="records / balance_to: set one"):
        ExtractionConfig(records=10, balance_to=5)
    with pytest.raises(ValueError, match="balance_to must be >= 1"):
        ExtractionConfig(balance_to=0)
    path = write_recipe(tmp_path, records=None, balance_to=5)
    data = yaml.safe_load(path.read_text())
    data["task"]["schema"] = {"type": "object", "required": ["Cuisine"],
                              "properties": {"Cuisine": {"type": "string", "x-values": ["thai"]}}}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RecipeError, match="balance_to needs optional top-level fields"):
        load_recipe(path)


@needs_data
def test_balanced_run_through_the_fake_engine_states_its_deficits_on_the_card(fake_engine, tmp_path, monkeypatch):
    monkeypatch.setattr(fake_engine, "completer", staticmethod(query_completer))
    folder, _ = run_recipe(load_recipe(write_recipe(tmp_path, records=None, balance_to=6)))
    provenance = json.loads((folder / "provenance.json").read_text())
    records = provenance["records"]
    assert records["balance_to"] == 6 and records["requested"] == sum(records["balancing"].values())
    assert records["unfilled"] == {}
    card = (folder / "README.md").read_text()
    listed = ", ".join(f"{label} {n}" for label, n in sorted(records["balancing"].items()))
    assert f"for its deficit to 6 mentions in the seed rows ({listed})" in card
    kept = Counter(e["label"] for row in load_dataset(str(folder), split="train") for e in row["entities"])
    assert kept == Counter(provenance["entities"]["kept"])


def _extraction_judge(conversation: list[dict]) -> str:
    """A judge that reads the document and the record the task shows it: a query with two or more
    values ("... with ...") is called inconsistent (score 1), one with a single value fine (5)."""
    prompt = conversation[-1]["content"]
    document = prompt.split("Document: ", 1)[1].split("\n", 1)[0]
    record = json.loads(prompt.split("Extracted values (JSON): ", 1)[1].split("\n", 1)[0])
    assert all(str(v).lower() in document for v in record.values()), (document, record)  # it sees both
    consistent = 1 if " with " in document else 5
    return json.dumps({"realistic_reason": "a query", "realistic": 4,
                       "consistent_reason": "ok" if consistent == 5 else "two values", "consistent": consistent})


@needs_data
def test_judge_with_the_extraction_criteria_sees_document_and_record_and_removes_low_scores(fake_engine, tmp_path,
                                                                                             monkeypatch):
    monkeypatch.setattr(fake_engine, "completer", staticmethod(query_completer))
    monkeypatch.setattr(fake_engine, "responder", staticmethod(_extraction_judge))
    path = write_recipe(tmp_path, noise=None)
    data = yaml.safe_load(path.read_text())
    data["checks"].append({"judge": {"criteria": ["realistic", "consistent"], "control_rows": 0, "min_score": 3}})
    path.write_text(yaml.safe_dump(data))
    folder, report = run_recipe(load_recipe(path))
    judged = [r for r in report.results if r.check["name"] == "judge"][0]
    kept = load_dataset(str(folder), split="train")
    assert judged.removed > 0 and len(kept) > 0
    assert all(" with " not in text for text in kept["text"])
    assert all(score == 5 for score in kept["judge_consistent"]) and set(kept["judge_realistic"]) == {4}


@needs_data
def test_generation_asks_the_engine_to_stop_at_the_markers(fake_engine, tmp_path, monkeypatch):
    from synth_datasets.pipeline import Runner
    from synth_datasets.tasks.extraction import STOPS

    monkeypatch.setattr(fake_engine, "completer", staticmethod(query_completer))
    seen, original = [], Runner.generator

    def spy(self, *args, **kwargs):
        gen = original(self, *args, **kwargs)
        seen.append(tuple(gen.sampling.stop or ()))
        return gen

    monkeypatch.setattr(Runner, "generator", spy)
    run_recipe(load_recipe(write_recipe(tmp_path)))
    assert seen and seen[0] == tuple(STOPS)


def test_field_f1_of_json_answers_against_hand_counted_pairs():
    """Micro-F1 over (field path, value) pairs, counted by hand: values compared case-folded with
    whitespace collapsed, list items without their index, an answer that is not JSON predicts
    nothing (its gold pairs still count), a row without an answer is left out."""
    from datasets import Dataset

    from synth_datasets.tasks.extraction import ExtractionConfig, field_pairs

    rows = Dataset.from_dict({"record": [
        json.dumps({"Cuisine": "Thai", "Location": "boston"}),
        json.dumps({"lines": [{"q": 2}, {"q": 3}], "total": 10}),
        json.dumps({"Dish": "pizza"}),
        json.dumps({"Dish": "soup"})]})
    predictions = [
        {"answer": '{"Cuisine": "thai ", "Location": "Cambridge", "Price": "cheap"}', "nll": 1.0},  # 1 of 3 right, 2 gold
        {"answer": '{"lines": [{"q": 3}, {"q": 2}], "total": 11}', "nll": 2.0},                      # 2 of 3 right, 3 gold
        {"answer": "pizza, I think", "nll": 3.0},                                                       # not JSON: 0 of 0, 1 gold
        {"answer": None, "nll": None}]                                                                  # not answered: left out
    task = Extraction(ExtractionConfig(target="json"), seeds=ExtractionSeeds(path="x"))
    scores = task.score(predictions, rows)
    # tp = 1 + 2 + 0 = 3; predicted 3 + 3 + 0 = 6; gold 2 + 3 + 1 = 6: F1 = 2 * 3 / (6 + 6)
    assert scores["field_f1"] == pytest.approx(0.5) and scores["nll"] == pytest.approx(2.0)
    assert field_pairs({"a": {"b": [" X  y", None]}}) == Counter({("a.b", "x y"): 1})
    with pytest.raises(ValueError, match="3 predictions for 4 rows"):
        task.score(predictions[:3], rows)
