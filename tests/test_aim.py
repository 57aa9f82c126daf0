"""Generation aimed at a real-only student's confusions (compare.aimed_per_label)."""

from datasets import Dataset

from synth_datasets.aim import confusion_plan
from synth_datasets.compare import draw_real, run_compare
from synth_datasets.recipe import load_recipe
from synth_datasets.tasks.classification import classification_prompts
from test_compare import DATA, LABELS, own_datasets_cache, real_rows, write_recipe  # noqa: F401 (a fixture)


def seeds():
    return Dataset.from_dict({"text": ["card late", "where is my card", "card not here", "refund please", "money back?"],
                              "label": ["card", "card", "card", "refund", "refund"]})


def test_more_requests_continue_the_same_numbering():
    five = classification_prompts(seeds(), per_label=5, seed=3)
    first, more = classification_prompts(seeds(), per_label=3, seed=3), classification_prompts(seeds(), counts={"card": 2, "refund": 2}, start=3, seed=3)
    for label in ("card", "refund"):
        ids = [r for r, lab in zip(five["row_id"], five["label"]) if lab == label]
        assert [r for r, lab in zip(first["row_id"], first["label"]) if lab == label] == ids[:3]
        assert [r for r, lab in zip(more["row_id"], more["label"]) if lab == label] == ids[3:]
    assert classification_prompts(seeds(), counts={"refund": 2}, seed=3)["label"] == ["refund", "refund"]


def test_contrast_shows_the_other_labels_rows_before_the_answer_format():
    prompts = classification_prompts(seeds(), counts={"card": 1}, seed=0,
                                     contrast={"card": ("refund", ["refund please", "money back?"])})
    user = prompts["messages"][0][-1]["content"]
    block = user.index('Do not write a text with the label "refund"')
    assert block < user.index("Answer with a JSON object")
    assert "- refund please" in user[block:] and "- money back?" in user[block:]
    placed = classification_prompts(seeds(), counts={"card": 1}, seed=0, template="Label {{ label }}.\n{{ contrast }}END",
                                     contrast={"card": ("refund", ["refund please"])})
    assert placed["messages"][0][-1]["content"].startswith('Label card.\nDo not write') and placed["messages"][0][-1]["content"].endswith("END")
    plain = classification_prompts(seeds(), per_label=1, seed=0, template="Label {{ label }}.{{ contrast }}")
    assert plain["messages"][0][-1]["content"] == "Label card."  # no contrast given: the variable is empty


def test_confusion_plan_finds_a_split_label_and_aims_at_it():
    train = real_rows(DATA / "train.csv")
    real = draw_real(train, LABELS, [8], seed=0)[8]
    texts, labels = list(real["text"]), list(real["label"])
    # card_arrival's rows split in two labels that no classifier can tell apart
    labels = [("card_arrival_b" if i % 2 else label) if label == "card_arrival" else label for i, label in enumerate(labels)]
    names = LABELS + ["card_arrival_b"]
    plan = confusion_plan(texts, labels, names, total=70, folds=4)
    assert sum(plan.counts.values()) == 70 and all(n >= 1 for n in plan.counts.values())
    assert plan.neighbour["card_arrival"] == "card_arrival_b" and plan.neighbour["card_arrival_b"] == "card_arrival"
    assert plan.counts["card_arrival"] > 70 / len(names) and plan.counts["card_arrival_b"] > 70 / len(names)
    assert plan.errors["card_arrival"] >= 2 and 0 < plan.accuracy < 1
    assert set(plan.neighbour) == set(names) and all(plan.neighbour[n] != n for n in names)


def test_compare_asks_for_aimed_requests_beside_the_recipes_own(fake_engine, tmp_path):
    seen = []
    base = fake_engine.responder

    def responder(conversation):
        seen.append(conversation[-1]["content"])
        return base(conversation)

    fake_engine.responder = staticmethod(responder)
    recipe = load_recipe(write_recipe(tmp_path, draws=1, real_per_label=[4], aimed_per_label=3))
    result = run_compare(recipe, progress=False, echo=None)
    (record,) = result.generation
    assert sum(record["aimed"]["counts"].values()) == 3 * len(LABELS)
    assert record["requested"] == 4 * len(LABELS) + 3 * len(LABELS)
    aimed = [p for p in seen if "Do not write a text with the label" in p]
    assert len(aimed) == 3 * len(LABELS) and len(seen) == 7 * len(LABELS)
    assert record["aimed"]["neighbour"]["card_arrival"] in LABELS
