"""Ground-truth records: sampled from a schema, consistent by construction, checked one by one."""

import json
import random
from decimal import Decimal
from pathlib import Path

import pytest

from synth_datasets.records import Leaf, RecordSchema, SchemaError, evaluate, money_forms, surface_forms

INVOICE = json.loads((Path(__file__).resolve().parents[1] / "recipes" / "schemas" / "invoice.json").read_text())


def test_every_sampled_invoice_is_consistent_to_the_cent_and_seeded():
    schema = RecordSchema(INVOICE)
    records = [schema.sample(random.Random(seed)) for seed in range(200)]
    for r in records:
        assert schema.problems(r) == []
        lines = r["line_items"]
        assert 1 <= len(lines) <= 3
        for line in lines:  # recomputed here in exact decimals, independently of the sampler
            assert Decimal(str(line["line_total"])) == Decimal(line["quantity"]) * Decimal(str(line["unit_price"]))
        assert Decimal(str(r["total"])) == sum(Decimal(str(line["line_total"])) for line in lines)
        assert r["invoice_date"] <= r["due_date"]
    assert len({json.dumps(r, sort_keys=True) for r in records}) == 200
    assert schema.sample(random.Random(5)) == RecordSchema(INVOICE).sample(random.Random(5))


def test_a_broken_record_is_named_field_by_field():
    schema = RecordSchema(INVOICE)
    r = schema.sample(random.Random(0))
    r["line_items"][0]["line_total"] += 1
    r["due_date"] = "2000-01-01"
    del r["seller"]
    problems = "\n".join(schema.problems(r))
    assert "'seller' is a required property" in problems
    assert "line_items[0].line_total" in problems and "quantity * unit_price" in problems
    assert "due_date" in problems and "rule 'total == sum(line_items.line_total)' does not hold" in problems


def test_a_pydantic_model_is_a_schema_too():
    pydantic = pytest.importorskip("pydantic")
    from typing import Optional

    class Query(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(json_schema_extra={"x-choose": [1, 2]})
        Cuisine: Optional[str] = pydantic.Field(None, json_schema_extra={"x-pool": "Cuisine"})
        Location: Optional[str] = pydantic.Field(None, json_schema_extra={"x-pool": "Location", "x-faker": "city"})
        Price: Optional[str] = pydantic.Field(None, json_schema_extra={"x-values": ["cheap", "expensive"]})

    schema = RecordSchema.from_pydantic(Query, pools={"Cuisine": ["thai", "italian"], "Location": ["near me"]})
    rng = random.Random(3)
    records = [schema.sample(rng) for _ in range(300)]
    assert all(1 <= len(r) <= 2 and schema.problems(r) == [] for r in records)
    cuisines = {r["Cuisine"] for r in records if "Cuisine" in r}
    assert cuisines == {"thai", "italian"}
    locations = {r["Location"] for r in records if "Location" in r}
    assert "near me" in locations and len(locations) > 5  # both sources: the pool and Faker's cities
    assert all(Query(**r) for r in records)


def test_schema_mistakes_name_the_field_and_the_fix():
    with pytest.raises(SchemaError, match="x-pool 'Dish' is not a known pool"):
        RecordSchema({"type": "object", "properties": {"dish": {"type": "string", "x-pool": "Dish"}}})
    with pytest.raises(SchemaError, match="name: a string needs a value source"):
        RecordSchema({"type": "object", "properties": {"name": {"type": "string"}}})
    with pytest.raises(SchemaError, match="top level must be an object"):
        RecordSchema({"type": "string"})
    bad = RecordSchema({"type": "object", "required": ["a"], "x-rules": ["a > 5"],
                        "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 3}}})
    with pytest.raises(SchemaError, match="rule 'a > 5' does not hold"):
        bad.sample(random.Random(0))


def test_expressions_are_a_safe_subset():
    scope = {"q": 3, "p": 2.5, "lines": [{"t": 1.1}, {"t": 2.2}], "d1": "2024-01-02", "d2": "2024-01-10"}
    assert evaluate("q * p", scope) == Decimal("7.5")
    assert evaluate("sum(lines.t)", scope) == Decimal("3.3")  # exact, not 3.3000000000000003
    assert evaluate("d2 >= d1 and not q < 1", scope) is True
    for bad in ("__import__('os')", "q.__class__", "[x for x in lines]", "open('f')"):
        with pytest.raises(SchemaError):
            evaluate(bad, scope)
    with pytest.raises(SchemaError, match="no field 'z'"):
        evaluate("z + 1", scope)
    for bad in ("len(d1) * 'aaaa'", "q / 0", "q.x.y", "d1 < 3"):  # no string blow-up; failures are SchemaErrors
        with pytest.raises(SchemaError):
            evaluate(bad, scope)
    # a rule that cannot be computed on a record fails the record, it does not crash the sampler
    broken = RecordSchema({"type": "object", "required": ["a"], "x-rules": ["a / 0 > 1"],
                           "properties": {"a": {"type": "integer", "minimum": 1, "maximum": 3}}})
    assert broken.problems({"a": 2}) == ["record: rule 'a / 0 > 1' does not hold"]


def test_surface_forms_of_dates_and_money():
    date = Leaf("d", "d", "2024-03-05", "date")
    assert surface_forms(date)[:3] == ["2024-03-05", "03/05/2024", "05/03/2024"]
    assert "March 5, 2024" in surface_forms(date) and "5 Mar 2024" in surface_forms(date)
    assert surface_forms(date, {"x-forms": ["long"]}) == ["March 5, 2024"]
    assert money_forms(1200) == {"plain": "1200.00", "thousands": "1,200.00", "symbol": "$1,200.00",
                                 "code": "1,200.00 USD", "code_plain": "1200.00 USD", "whole_code": "1200 USD",
                                 "eu": "1.200,00"}
    assert money_forms(1200, "EUR", "€")["eu"] == "1.200,00 €"
    total = Leaf("total", "total", 4517.69, "number")
    assert surface_forms(total, {"x-money": True})[:3] == ["4517.69", "4,517.69", "$4,517.69"]
    with pytest.raises(SchemaError, match="unknown forms"):
        surface_forms(date, {"x-forms": ["klingon"]})
