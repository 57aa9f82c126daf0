"""The seams, proven from outside the package: a plugin adds a task, a student, two checks and a
backend through entry points, and the whole loop (generate -> checks -> card -> compare) runs
through them, from the CLI.

The plugin is the one docs/writing-a-{task,check,backend}.md describe: this test assembles it from
those pages' code blocks (so the pages' examples are complete and run), installs it on the test's
path as a distribution with entry points, and reloads the registries.
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from synth_datasets import cli
from synth_datasets.checks import CHECKS
from synth_datasets.engine import BACKENDS
from synth_datasets.students import STUDENTS
from synth_datasets.tasks import TASKS

DOCS = [Path("docs") / f"writing-a-{page}.md" for page in ("task", "check", "backend")]
REGISTRIES = (TASKS, CHECKS, STUDENTS, BACKENDS)
SECRET = "sk-test-9f8e7d6c5b4a-SECRET"
CAPITALS = {"France": "Paris", "Spain": "Madrid", "Italy": "Rome", "Germany": "Berlin", "Portugal": "Lisbon",
            "Austria": "Vienna", "Poland": "Warsaw", "Greece": "Athens", "Norway": "Oslo", "Sweden": "Stockholm",
            "Finland": "Helsinki", "Denmark": "Copenhagen", "Ireland": "Dublin", "Hungary": "Budapest",
            "Egypt": "Cairo", "Japan": "Tokyo", "Peru": "Lima", "Chile": "Santiago", "Kenya": "Nairobi",
            "Canada": "Ottawa"}


def build_plugin(root: Path) -> str:
    """Write the package and its dist-info (entry points) from the docs' code blocks; return the recipe."""
    entry_points: dict[str, dict[str, str]] = {}
    recipe = None
    for doc in DOCS:
        for body in re.findall(r"```\w+\n(.*?)```", doc.read_text(), re.S):
            first = body.splitlines()[0].strip()
            target = re.match(r"(?:#|\{#)\s*(synth_qa_plugin/[\w./]+)", first)
            if target:
                path = root / target.group(1)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(body)
            elif first == "# pyproject.toml":
                for group, entries in tomllib.loads(body).get("project", {}).get("entry-points", {}).items():
                    entry_points.setdefault(group, {}).update(entries)
            elif first == "# qa.yaml":
                recipe = body
    (root / "synth_qa_plugin" / "__init__.py").write_text('"""The plugin of docs/writing-a-*.md."""\n')
    info = root / "synth_qa_plugin-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: synth-qa-plugin\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in entries.items()) + "\n"
        for group, entries in entry_points.items()))
    assert recipe is not None and {"synth_datasets.tasks", "synth_datasets.checks", "synth_datasets.students",
                                   "synth_datasets.backends"} <= set(entry_points)
    return recipe


def write_data(root: Path) -> None:
    """Real-looking pairs: train asks 'What is the capital of X?', test asks it in other words."""
    with open(root / "qa_train.jsonl", "w") as f:
        for country, city in CAPITALS.items():
            f.write(json.dumps({"question": f"What is the capital of {country}?", "answer": city}) + "\n")
        f.write(json.dumps({"question": "   ", "answer": "nothing"}) + "\n")  # an unusable row: dropped and counted
    with open(root / "qa_test.jsonl", "w") as f:
        for country, city in CAPITALS.items():
            f.write(json.dumps({"question": f"Which city is the capital of {country}?", "answer": city}) + "\n")


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The plugin installed on sys.path (as pip would: a package and a dist-info with entry points)."""
    import datasets

    root = tmp_path / "site"
    root.mkdir()
    recipe = build_plugin(root)
    write_data(root)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    for registry in REGISTRIES:
        registry.reload()
    try:
        yield root, recipe
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.startswith("synth_qa_plugin")]:
            del sys.modules[name]
        for registry in REGISTRIES:
            registry.reload()


def test_registries_see_the_plugin_and_say_where_it_came_from(plugin):
    assert "qa_pairs" in TASKS and "lookup" in STUDENTS and "echo" in BACKENDS
    assert {"too_short_question", "answer_in_question"} <= set(CHECKS)
    assert TASKS.origin("qa_pairs") == "plugin synth-qa-plugin (synth_qa_plugin.task:QATask)"
    assert CHECKS.origin("parsed") == "built-in"
    assert "sanity" in __import__("synth_datasets.checks", fromlist=["x"]).check_families()


def test_the_whole_loop_runs_through_the_plugin_from_the_cli(plugin, monkeypatch, capsys, caplog):
    root, recipe_text = plugin
    recipe = yaml.safe_load(recipe_text)
    recipe["engine"]["api_key_env"] = "SYNTH_QA_KEY"
    (root / "qa.yaml").write_text(yaml.safe_dump(recipe))
    monkeypatch.setenv("SYNTH_QA_KEY", SECRET)
    monkeypatch.setenv("SYNTH_DATASETS_LOG_LEVEL", "DEBUG")  # every record, to search them for the key
    caplog.set_level("DEBUG")

    assert cli.main(["generate", str(root / "qa.yaml")]) == 0
    out = root / "out" / "qa-demo"
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["task"] == "qa_pairs" and provenance["requests"] == 2 * len(CAPITALS)
    assert provenance["seeds"]["dropped"] == {"empty question or answer": 1}
    checks = [c["check"]["name"] for c in provenance["checks"]["checks"]]
    assert checks == ["parsed", "too_short_question", "answer_in_question", "exact_dedup", "real_copy", "decontaminate"]
    card = (out / "README.md").read_text()
    assert "Question-answer pairs written by a language model from 20 real pairs" in card  # the task's card block
    assert "| too_short_question | min_score=3, max_score=None, column=question |" in card
    assert "1 with an empty question or answer" in card
    from datasets import load_dataset

    rows = load_dataset(str(out))["train"]
    assert set(rows.column_names) >= {"question", "answer", "too_short_question_score", "answer_in_question_flag"}
    assert len(rows) == provenance["rows"]["kept"] > 0

    assert cli.main(["compare", str(root / "qa.yaml")]) == 0
    result = json.loads((out / "compare" / "compare.json").read_text())
    assert result["setup"]["metrics"] == ["exact_match"] and result["setup"]["student"] == {"kind": "lookup"}
    assert result["setup"]["labels"] is None
    arms = {(r["arm"], r["ratio"]) for r in result["runs"]}
    assert ("real-only", 0.0) in arms and ("blended", 1.0) in arms and ("two-stage", 1.0) in arms
    real_only = [r for r in result["runs"] if r["arm"] == "real-only"]
    assert all(r["real_rows"] == 6 for r in real_only)  # k=6 real rows in all: no labels, drawn by count
    # the lookup student answers every test question whose country it saw: at least the 6 real ones
    assert all(r["exact_match"] >= 6 / len(CAPITALS) for r in real_only)
    card = (out / "README.md").read_text()
    assert "## Measured contribution" in card and "exact match %" in card

    # the key was read by the backend and reached nothing that was written or logged
    everything = capsys.readouterr()
    assert SECRET not in everything.out + everything.err + caplog.text
    leaked = [str(p) for p in (root.parent).rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert not leaked, leaked


def test_the_cli_of_another_process_lists_the_plugin(plugin):
    root, _ = plugin
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "synth_datasets.cli", "plugins"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for name in ("qa_pairs", "lookup", "echo", "too_short_question", "answer_in_question"):
        assert re.search(rf"{name}\s+plugin synth-qa-plugin", proc.stdout), (name, proc.stdout)


def test_a_broken_plugin_is_reported_and_the_rest_still_works(tmp_path, caplog):
    root = tmp_path / "broken"
    (root / "broken_plugin").mkdir(parents=True)
    (root / "broken_plugin" / "__init__.py").write_text("raise ImportError('this plugin needs a package that is missing')\n")
    info = root / "broken_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[synth_datasets.checks]\nbroken = broken_plugin:Broken\n"
                                           "[synth_datasets.tasks]\nclassification = broken_plugin:Shadow\n")
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    CHECKS.reload()
    TASKS.reload()
    try:
        with caplog.at_level("WARNING"):
            assert "broken" not in CHECKS and "parsed" in CHECKS
            assert TASKS.origin("classification") == "built-in"  # a plugin cannot replace a built-in
        assert "could not load check plugin 'broken' from broken-plugin" in caplog.text
        assert "this plugin needs a package that is missing" in caplog.text
        assert "task plugin 'classification' from broken-plugin is ignored" in caplog.text
    finally:
        sys.path.remove(str(root))
        CHECKS.reload()
        TASKS.reload()


def test_the_pickled_generator_holds_the_variable_name_not_the_key(plugin, monkeypatch):
    from datasets.fingerprint import Hasher

    from synth_datasets import Generate
    from synth_datasets.engine import get_engine

    monkeypatch.setenv("SYNTH_QA_KEY", SECRET)
    gen = Generate(engine={"backend": "echo", "api_key_env": "SYNTH_QA_KEY"})
    engine = get_engine(gen.engine)
    assert engine._key == SECRET  # the backend has it
    assert SECRET.encode() not in pickle.dumps(gen) and "SYNTH_QA_KEY" in json.dumps(gen.describe(), default=str)
    assert Hasher.hash(gen) == Hasher.hash(Generate(engine={"backend": "echo", "api_key_env": "SYNTH_QA_KEY"}))
    with pytest.raises(ValueError, match="a secret never goes into a recipe"):
        from dataclasses import dataclass

        from synth_datasets.engine import BackendOptions

        @dataclass(frozen=True)
        class Leaky(BackendOptions):
            api_key: str | None = None

        Leaky(api_key=SECRET)
