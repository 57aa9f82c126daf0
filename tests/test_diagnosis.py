"""Why it did not help: per-label losses and causes, on fixtures where the answer is known.

Synthetic rows are real banking77 rows the draw did not use, except for planted labels whose rows
are another label's texts under their name (off-label by construction). The diagnosis must name
the planted labels, say their rows read as the label they were taken from, and not call the clean
labels off-label.
"""

import json
import random

import pytest
from datasets import Dataset

from synth_datasets.compare import draw_real, report_markdown, run_compare, write_results
from synth_datasets.diagnosis import causes, diagnosis_lines, label_figures
from synth_datasets.recipe import load_recipe
from test_compare import DATA, LABELS, real_rows, write_recipe

# label -> the label whose texts its synthetic rows really carry
PLANTED = {"card_linking": "activate_my_card", "card_not_working": "declined_card_payment"}


def planted_synthesizer(train: Dataset, per_label: int):
    def synthesize(real: Dataset, labels, seed: int) -> Dataset:
        used = set(real["text"])
        rng = random.Random(seed)
        rows = []
        for label in labels:
            source = PLANTED.get(label, label)
            pool = [t for t, lab in zip(train["text"], train["label"]) if lab == source and t not in used]
            rows += [(t, label) for t in rng.sample(pool, per_label)]
        return Dataset.from_dict({"text": [t for t, _ in rows], "label": [label for _, label in rows]})
    return synthesize


def test_label_figures_find_planted_off_label_rows():
    train = real_rows(DATA / "train.csv")
    real = draw_real(train, LABELS, [10], seed=0)[10]
    synthetic = planted_synthesizer(train, 10)(real, LABELS, 0)
    figures = label_figures(real["text"], real["label"], synthetic["text"], synthetic["label"], LABELS)
    for label, source in PLANTED.items():
        assert figures[label]["off_label"] >= 0.6 and figures[label]["read_as"] == source, (label, figures[label])
    clean = [figures[label]["off_label"] for label in LABELS if label not in PLANTED]
    assert max(clean) < 0.5, figures
    assert all(figures[label]["rows"] == 10 for label in LABELS)
    assert all(0.5 < figures[label]["spread"] < 1.6 for label in LABELS)  # real rows: about the real rows' spread


def test_causes_name_what_the_figures_show_and_nothing_else():
    clean = {"rows": 12, "off_label": 0.05, "read_as": None, "spread": 1.0, "near_duplicates": 0.0}
    assert causes(clean, 0.55, 0.6, 10) == []
    assert causes(clean, 0.95, 0.97, 10) == []  # no more distinguishable than the set as a whole
    collapsed = causes({**clean, "near_duplicates": 0.5}, None, None, 10)
    assert collapsed == ["collapsed (50% near-duplicates)"]
    assert causes({**clean, "rows": 4}, None, None, 10) == ["too few (4 rows kept of 10 the blend asks for)"]


@pytest.mark.slow  # 3 draws x 7 students, about a minute
def test_compare_report_names_the_planted_labels_as_off_label(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, real_per_label=[4], draws=3, ratios=[2.0], primary_ratio=2.0,
                                      synthetic_per_label=8))
    result = run_compare(recipe, synthesize=planted_synthesizer(real_rows(DATA / "train.csv"), 8), progress=False, echo=None)
    (verdict,) = result.verdicts
    assert not verdict["helped"], verdict
    lines = diagnosis_lines(result.runs, result.generation, result.verdicts, 2.0)
    text = "\n".join(lines)
    assert "Why it did not help at k=4" in text
    items = [line for line in lines if line.startswith("- ")]
    named = {line[2:].split(" ")[0]: line for line in items}
    for label, source in PLANTED.items():
        assert label in named, text
        assert "off-label" in named[label] and f"most often {source}" in named[label], named[label]
    for label, line in named.items():
        if label not in PLANTED:
            assert "off-label" not in line, line
    # the labels whose texts were planted elsewhere lose too: named as crowded by the planted label
    for label, source in PLANTED.items():
        if source in named:
            assert f"crowded (rows of {label} read" in named[source], named[source]
    assert any(source in named for source in PLANTED.values()), text
    # the runs carry per-label accuracy for real-only and blended students only
    assert all(("per_label" in r) == (r["arm"] in ("real-only", "blended")) for r in result.runs)
    # realism of rows that are real: about 0.5 in every draw
    aucs = [g["realism"]["auc"] for g in result.generation]
    assert all(0.25 <= a <= 0.75 for a in aucs), aucs
    report = report_markdown(result)
    assert "Why it did not help at k=4" in report and "**Realism**" in report
    write_results(result, tmp_path / "res")
    saved = json.loads((tmp_path / "res" / "compare.json").read_text())
    assert saved["generation"][0]["labels"]["card_linking"]["read_as"] == "activate_my_card"
