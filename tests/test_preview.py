"""`synth-datasets preview`: a few rows per label with every check's verdict, variants side by side.

The fast tests use the fake engine; the slow one runs the embedded model through vLLM.
"""

from pathlib import Path

import pytest
import yaml

from synth_datasets import cli
from synth_datasets.preview import format_table, pick_labels, preview, with_variant
from synth_datasets.recipe import RecipeError, load_recipe
from test_compare import DATA

LABELS = ["card_arrival", "exchange_rate", "lost_or_stolen_card"]


@pytest.fixture(autouse=True)
def own_datasets_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def write_recipe(tmp_path, engine=None, **extra) -> Path:
    data = yaml.safe_load(Path("recipes/banking77.yaml").read_text())
    data["seeds"].update(path=str(DATA / "train.csv"), labels=LABELS, rare={}, per_label=10)
    data["engine"] = engine or {"backend": "fake"}
    data["output"] = {"dir": str(tmp_path / "out")}
    data["checks"] = ["parsed", {"length": {"min_chars": 30, "max_chars": 400}}, "exact_dedup", "label_agreement"]
    data.pop("compare", None)
    data.update(extra)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_preview_shows_every_checks_verdict_on_every_row(fake_engine, tmp_path):
    recipe = load_recipe(write_recipe(tmp_path))
    p = preview(recipe, labels=["card_arrival", "exchange_rate"], rows=4)
    assert len(p.rows) == 8 and sorted(set(p.rows["label"])) == ["card_arrival", "exchange_rate"]
    # every check annotated every row, with nothing filtered in between
    for name in ("parsed", "length", "exact_dedup", "label_agreement"):
        assert f"{name}_flag" in p.rows.column_names
    for row in p.rows:
        expected = [name for name in ("parsed", "length", "exact_dedup", "label_agreement") if row[f"{name}_flag"]]
        assert row["removed_by"] == expected
    assert p.proxies["requests"] == 8 and p.proxies["rows"] == 8
    assert p.proxies["kept"] == sum(1 for r in p.rows["removed_by"] if not r)
    assert p.proxies["kept_per_request"] == pytest.approx(p.proxies["kept"] / 8, abs=1e-3)
    assert 0.0 <= p.proxies["label_check"] <= 1.0


def test_variants_are_merged_over_the_recipe_and_checked_when_it_loads(fake_engine, tmp_path):
    path = write_recipe(tmp_path, variants={"hot": {"generator": {"temperature": 1.3}},
                                            "terse": {"task": {"prompt_template": "One message with intent {{ label_name }}. "
                                                                                  'JSON: "text", "label" is "{{ label }}".'}}})
    recipe = load_recipe(path)
    hot = with_variant(recipe, "hot")
    assert hot.generator.temperature == 1.3 and hot.generator.top_p == recipe.generator.top_p
    assert hot.task == recipe.task and hot.checks == recipe.checks
    assert with_variant(recipe, "terse").task.prompt_template.startswith("One message")
    with pytest.raises(RecipeError, match="no variant 'cold'"):
        with_variant(recipe, "cold")
    bad = write_recipe(tmp_path, variants={"hot": {"generator": {"temprature": 1.3}}})
    with pytest.raises(RecipeError, match=r"variants\.hot: generator.*temprature"):
        load_recipe(bad)


def test_cli_preview_prints_rows_and_the_variant_table(fake_engine, tmp_path, capsys):
    path = write_recipe(tmp_path, variants={"hot": {"generator": {"temperature": 1.3}}})
    assert cli.main(["preview", str(path), "--rows", "2", "--labels", "card_arrival,exchange_rate"]) == 0
    out = capsys.readouterr().out
    assert "== recipe:" in out and "== hot:" in out
    assert "kept: 'message " in out or "removed by" in out
    table = out[out.index("variant  "):].splitlines()
    assert [line.split()[0] for line in table[1:]] == ["recipe", "hot"]
    assert not (tmp_path / "out").exists()  # preview writes nothing
    assert cli.main(["preview", str(path), "--labels", "no_such_label"]) == 2
    assert "not among the recipe's labels" in capsys.readouterr().err


def test_pick_labels_spreads_over_the_label_list():
    assert pick_labels([f"l{i}" for i in range(77)], None, 8) == ["l0", "l9", "l19", "l28", "l38", "l48", "l57", "l67"]
    assert pick_labels(["a", "b"], None, 8) == ["a", "b"]


def test_format_table_lines_up_variants_and_student_gains():
    from synth_datasets.preview import Preview

    proxies = {"rows": 6, "kept": 3, "kept_per_request": 0.5, "label_check": 0.75, "realism_auc": None,
               "mean_distance": 0.61, "distinct_2": 0.8}
    table = format_table([Preview("recipe", None, proxies, None, 1.0)], {"recipe": {5: "+1.0 ± 0.5"}})
    head, row = table.splitlines()
    assert head.split("  ")[0].strip() == "variant" and "student Δ k=5" in head
    assert row.split() == ["recipe", "3/6", "0.50", "0.75", "-", "0.61", "0.80", "+1.0", "±", "0.5"]


@pytest.mark.slow
def test_preview_on_the_real_engine(real_engine_config, tmp_path):
    """The embedded model through vLLM: rows with text, every check's verdict, the proxies."""
    engine = {"max_model_len": real_engine_config.max_model_len, "seed": real_engine_config.seed}
    recipe = load_recipe(write_recipe(tmp_path, engine=engine))
    p = preview(recipe, labels=["card_arrival", "exchange_rate"], rows=3)
    assert len(p.rows) == 6
    assert sum(t is not None for t in p.rows["text"]) >= 3  # the 135M model, grammar-constrained: most parse
    assert all(isinstance(r, list) for r in p.rows["removed_by"])
    assert p.proxies["label_check"] is not None
    print(f"preview on the real engine: {p.seconds} s for 6 requests, proxies {p.proxies}")
