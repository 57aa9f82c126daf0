"""The quality, duplicate, leakage and label checks on hand-made fixtures whose right answer is known.

Each fixture plants the failure a check exists for (near-copies, seed copies, test-set overlap,
meta-text, wrong labels) beside clean rows, and the test asserts both sides: the planted rows are
flagged and the clean ones are kept.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
from datasets import ClassLabel, Dataset, Features, Value

from synth_datasets.checks import (CheckContext, Decontaminate, ExactDuplicates, LabelAgreement, MetaText,
                                   NearDuplicates, Parsed, RealCopies, build_check, run_checks)
from synth_datasets.checks.minhash import near_duplicates, nearest_in, shingles, signatures

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"


def banking(split: str) -> list[dict]:
    with open(DATA / f"{split}.csv", newline="") as f:
        return list(csv.DictReader(f))


def jaccard(a: str, b: str) -> float:
    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y)


# --- near duplicates -------------------------------------------------------------------------------

def test_minhash_estimates_follow_exact_jaccard():
    texts = [r["text"] for r in banking("train")[:400]]
    sigs = signatures(texts)
    rng = random.Random(0)
    pairs = [(rng.randrange(400), rng.randrange(400)) for _ in range(300)]
    pairs += [(0, 0), (1, 1)]
    errors = [abs(float((sigs[i] == sigs[j]).mean()) - jaccard(texts[i], texts[j])) for i, j in pairs]
    assert max(errors[-2:]) == 0  # a text is its own exact duplicate
    assert sum(errors) / len(errors) < 0.03


def test_near_duplicates_match_exact_greedy_dedup_on_real_messages():
    """Against brute force (every pair, exact Jaccard) on 1,000 real banking77 messages, which hold
    natural near-duplicates: nothing flagged that exact Jaccard would keep, and almost nothing missed."""
    texts = [r["text"] for r in banking("train")[:1000]]
    threshold = 0.8
    sets = [shingles(t) for t in texts]
    kept, truth = [], []
    for j, s in enumerate(sets):
        dup = any(len(s & sets[i]) / len(s | sets[i]) >= threshold for i in kept)
        truth.append(dup)
        if not dup:
            kept.append(j)
    flags, best, of = near_duplicates(texts, threshold)
    assert sum(truth) >= 10  # the fixture really has near-duplicates
    false_pos = [j for j in range(len(texts)) if flags[j] and not truth[j]]
    missed = [j for j in range(len(texts)) if truth[j] and not flags[j]]
    assert not false_pos
    assert len(missed) <= 0.1 * sum(truth)
    for j in range(len(texts)):
        if flags[j]:
            assert of[j] < j and not flags[of[j]] and jaccard(texts[of[j]], texts[j]) >= threshold


def test_near_dedup_check_keeps_first_is_deterministic_and_works_with_map_and_filter():
    base = "I am still waiting for my new card to arrive, can you check where it is?"
    ds = Dataset.from_dict({"body": [
        base,
        "How do I top up my account with Apple Pay?",
        base.replace("waiting", "waitin"),            # a typo: near-duplicate of row 0
        base.upper() + "!!",                          # case and punctuation: identical after normalising
        "Why was I charged a fee for my transfer?",
        None,
        "",
    ]})
    near = NearDuplicates(threshold=0.8, column="body")
    annotated = ds.map(near, batched=True, batch_size=None)
    assert annotated["near_dedup_flag"] == [False, False, True, True, False, False, False]
    assert annotated["near_dedup_score"][2] >= 0.8 and annotated["near_dedup_score"][1] == 0.0
    assert ds.map(near, batched=True, batch_size=None)["near_dedup_flag"] == annotated["near_dedup_flag"]
    assert annotated.filter(near.keep)["body"] == [ds["body"][i] for i in (0, 1, 4, 5, 6)]
    # a stricter threshold keeps the typo version (Jaccard below 1) but not the normalised copy
    strict = NearDuplicates(threshold=0.99, column="body").annotate(ds)
    assert strict["near_dedup_flag"][2:4] == [False, True]


def test_near_dedup_options_are_checked():
    with pytest.raises(ValueError, match="threshold"):
        NearDuplicates(threshold=0)
    with pytest.raises(ValueError, match="ngram"):
        NearDuplicates(ngram=12)
    with pytest.raises(ValueError, match="allowed: .*threshold"):
        build_check("near_dedup", {"jaccard": 0.8})


# --- meta-text, refusals, placeholders, echoed labels ----------------------------------------------

PLANTED_META = {
    "Sure! Here is a new message: where is my card?": "meta",
    "Here's a rewritten version of the message: my card has not arrived": "meta",
    "I'm sorry, but I can't help with that request.": "refusal",
    "I am unable to assist with this query.": "refusal",
    "Dear [Customer_Name], your card is on its way.": "placeholder",
    "Please send {amount} to my account": "placeholder",
    "card_arrival": "label_echo",
    "Text with intended intent: card_arrival-label": "meta",
}


def test_meta_text_flags_planted_rows_and_says_which_kind():
    clean = ["Where is my card? It has been two weeks.", "Can I get a refund for this purchase?"]
    ds = Dataset.from_dict({"text": list(PLANTED_META) + clean})
    out = MetaText(labels=("card_arrival", "card_linking")).annotate(ds)
    assert out["meta_text_score"] == list(PLANTED_META.values()) + ["", ""]
    assert out["meta_text_flag"] == [True] * len(PLANTED_META) + [False, False]
    only = MetaText(kinds=("placeholder",)).annotate(ds)
    assert sum(only["meta_text_flag"]) == 2


CUSTOMER_LOOKALIKES = [  # real-sounding customer messages that share words with meta-text and refusals
    "I'm afraid I can't log in to the app", "I'm not able to complete the transfer",
    "I'm sorry, but I can't find where to top up", "Here's the message the app shows: card declined",
    "I got a JSON error in the app", "Sure, can you tell me how to order a card?",
    "The text will not arrive on my phone", "What does {} mean on my statement?",
]


def test_meta_text_keeps_customer_messages_that_only_look_like_meta_text():
    out = MetaText().annotate(Dataset.from_dict({"text": CUSTOMER_LOOKALIKES}))
    assert not any(out["meta_text_flag"]), [t for t, f in zip(CUSTOMER_LOOKALIKES, out["meta_text_flag"]) if f]


def test_meta_text_gets_the_label_set_from_the_context():
    ds = Dataset.from_dict({"text": ["card_arrival", "Where is my card?"], "label": ["card_arrival"] * 2})
    kept, report = run_checks(ds, [MetaText()], context=CheckContext(labels=["card_arrival", "card_linking"]))
    assert kept["text"] == ["Where is my card?"] and report.results[0].removed == 1


def test_meta_text_leaves_real_messages_alone():
    """On every real banking77 message (13,083), only one is flagged: a test message that itself
    holds a placeholder ("Where is my transfer from [country]?")."""
    rows = banking("train") + banking("test")
    labels = sorted({r["category"] for r in rows})
    out = MetaText(labels=tuple(labels)).annotate(Dataset.from_dict({"text": [r["text"] for r in rows]}))
    flagged = [t for t, f in zip(out["text"], out["meta_text_flag"]) if f]
    assert flagged == ["Where is my transfer from [country]?"]


# --- copies of real rows, test-set overlap ---------------------------------------------------------

SEEDS = ["I still have not received my new card, what should I do?",
         "How long does it take for a transfer to go through?",
         "My card payment was declined at the shop today."]


def test_real_copies_flags_copies_and_near_copies_of_seeds_only():
    synthetic = [SEEDS[0],                                              # verbatim copy
                 "I still have not recieved my new card, what should i do??",  # typo + case
                 "Is there a fee when I exchange dollars into euros?",     # new text
                 "How long does a transfer take?"]                        # related, but not a copy
    check = RealCopies(threshold=0.7)
    with pytest.raises(ValueError, match="needs the real rows"):
        check.annotate(Dataset.from_dict({"text": synthetic}))
    kept, report = run_checks(Dataset.from_dict({"text": synthetic}), [check], context=CheckContext(real_texts=SEEDS))
    assert kept["text"] == synthetic[2:]
    (result,) = report.results
    assert result.removed == 2 and result.examples_removed[0] == SEEDS[0]
    scores = RealCopies(reference=tuple(SEEDS)).annotate(Dataset.from_dict({"text": synthetic}))["real_copy_score"]
    assert scores[0] == 1.0 and 0.7 <= scores[1] < 1.0 and scores[2] < 0.3


def test_real_copies_catch_lightly_edited_copies_near_the_threshold():
    """Real messages with one or two words changed, exact Jaccard 0.7-0.85 to their source: at
    threshold 0.7 (almost) all are caught, and thousands of copies of one seed are all caught."""
    rng = random.Random(0)
    sources = [r["text"] for r in banking("train")[:3000] if len(r["text"].split()) >= 8]
    edited, seeds = [], []
    for text in sources:
        words = text.split()
        i = rng.randrange(len(words))
        candidate = " ".join(words[:i] + ["please"] + words[i + 1:])
        if 0.7 <= jaccard(text, candidate) < 0.85:
            edited.append(candidate)
            seeds.append(text)
        if len(edited) == 300:
            break
    best, of = nearest_in(edited, seeds, 0.7)
    caught = sum(b >= 0.7 for b in best)
    assert len(edited) == 300 and caught >= 297
    copies = [SEEDS[0]] * 1500
    best, _ = nearest_in(copies, SEEDS, 0.7)
    assert all(b == 1.0 for b in best)


def test_nearest_in_returns_the_reference_row():
    best, of = nearest_in(["my card payment was declined at the shop today!", "unrelated words here entirely"], SEEDS, 0.5)
    assert of == [2, None] and best[0] == 1.0 and best[1] == 0.0


def test_decontaminate_flags_test_overlap_including_short_test_rows():
    test = ["What are the steps to verify my identity for the new account?",   # 12 words
            "Card not working",                                                # 3 words: too short to match
            "Why did my top up fail?"]                                         # 6 words: one n-gram of its own
    synthetic = ["Hello, what are the steps to verify my identity for a loan?",  # shares an 8-gram
                 "why did my top up fail? I tried twice",                        # holds the whole short test row
                 "My card is not working at all",                                # shares only 'card not working'-ish words
                 "How can I change my PIN at an ATM?"]
    ds = Dataset.from_dict({"text": synthetic})
    out = Decontaminate(n=8).bind(CheckContext(test_texts=test)).annotate(ds)
    assert out["decontaminate_flag"] == [True, True, False, False]
    assert out["decontaminate_score"][0] >= 1
    with pytest.raises(ValueError, match="needs the evaluation split"):
        run_checks(ds, [Decontaminate()], context=CheckContext(real_texts=SEEDS))


# --- label agreement -------------------------------------------------------------------------------

def _real_and_planted():
    rows = banking("train")
    labels = ["card_arrival", "exchange_rate", "top_up_failed"]
    real = [r for r in rows if r["category"] in labels]
    rng = random.Random(0)
    rng.shuffle(real)
    train = {label: [r["text"] for r in real if r["category"] == label][:10] for label in labels}
    held = {label: [r["text"] for r in real if r["category"] == label][10:16] for label in labels}
    texts, requested, wrong = [], [], []
    for i, label in enumerate(labels):
        for j, text in enumerate(held[label]):
            planted = j < 2  # two rows per label carry another label
            texts.append(text)
            requested.append(labels[(i + 1) % 3] if planted else label)
            wrong.append(planted)
    context = CheckContext(real_texts=[t for lab in labels for t in train[lab]],
                           real_labels=[lab for lab in labels for _ in train[lab]], labels=labels)
    return Dataset.from_dict({"text": texts, "label": requested}), wrong, context, labels


def test_label_agreement_drops_rows_whose_label_the_real_classifier_rejects():
    ds, wrong, context, labels = _real_and_planted()
    kept, report = run_checks(ds, [LabelAgreement(top_k=1)], context=context)
    annotated = LabelAgreement().bind(context).annotate(ds)
    flags = annotated["label_agreement_flag"]
    assert all(flags[i] for i, w in enumerate(wrong) if w)        # every planted wrong label caught
    assert sum(f for f, w in zip(flags, wrong) if not w) <= 1      # at most one true row lost (held-out real text)
    assert report.results[0].removed == sum(flags)
    assert sum(report.results[0].removed_by_label.values()) == sum(flags)
    assert report.labels_before == {label: 6 for label in labels}
    removed = report.results[0].removed_by_label
    assert report.labels_after == {label: 6 - removed.get(label, 0) for label in labels}


def test_label_agreement_relabel_keeps_rows_and_records_the_change():
    ds, wrong, context, labels = _real_and_planted()
    kept, report = run_checks(ds, [LabelAgreement(action="relabel")], context=context)
    assert len(kept) == len(ds) and report.results[0].removed == 0
    assert report.results[0].relabelled >= sum(wrong)
    for row, planted, true_label in zip(kept, wrong, [lab for lab in labels for _ in range(6)]):
        if planted:
            assert row["label_original"] != row["label"] == true_label and row["label_agreement_relabelled"]
    assert "relabelled" in report.table()


def test_label_agreement_reads_class_label_columns():
    ds, wrong, context, labels = _real_and_planted()
    typed = ds.cast(Features({"text": Value("string"), "label": ClassLabel(names=labels)}))
    check = LabelAgreement().bind(context)
    flags = check.annotate(ds)["label_agreement_flag"]
    assert check.annotate(typed)["label_agreement_flag"] == flags
    assert typed.map(check, batched=True)["label_agreement_flag"] == flags  # plain map: names from the context
    relabelled = LabelAgreement(action="relabel").bind(context).annotate(typed)
    assert relabelled.features["label_original"] == typed.features["label"]
    assert relabelled.features["label"] == typed.features["label"]


# --- the report ------------------------------------------------------------------------------------

def test_report_counts_per_check_and_per_label_and_is_json():
    ds = Dataset.from_dict({
        "text": ["Where is my card?", "where is my card", "Sure! Here is a message: hi", "Top up failed again",
                 "Top up failed again!", "Exchange rate for euros?"],
        "label": ["card_arrival", "card_arrival", "card_arrival", "top_up_failed", "top_up_failed", "exchange_rate"],
        "parse_error": [None] * 6,
    })
    kept, report = run_checks(ds, [Parsed(), MetaText(), ExactDuplicates(), NearDuplicates()])
    got = [(r.check["name"], r.rows_in, r.removed, r.kept) for r in report.results]
    assert got == [("parsed", 6, 0, 6), ("meta_text", 6, 1, 5), ("exact_dedup", 5, 2, 3), ("near_dedup", 3, 0, 3)]
    assert report.results[2].removed_by_label == {"card_arrival": 1, "top_up_failed": 1}
    assert report.labels_before == {"card_arrival": 3, "top_up_failed": 2, "exchange_rate": 1}
    assert report.labels_after == {"card_arrival": 1, "top_up_failed": 1, "exchange_rate": 1}
    data = json.loads(report.to_json())
    assert data["labels"]["after"]["card_arrival"] == 1 and data["checks"][1]["examples_removed"]
    assert report.label_table().splitlines()[1].startswith("card_arrival")


# --- structure: JSON schema, language ---------------------------------------------------------------

def test_schema_check_validates_rows_against_the_task_schema():
    from synth_datasets.checks import Schema
    from synth_datasets.tasks.classification import json_schema

    schema = json_schema(["card_arrival", "exchange_rate"], max_chars=40)
    ds = Dataset.from_dict({"text": ["Where is my card?", "x" * 41, "Rate for euros?", None],
                            "label": ["card_arrival", "card_arrival", "top_up_failed", "exchange_rate"]})
    out = Schema(schema=schema).annotate(ds)
    assert out["schema_flag"] == [False, True, True, True]
    assert "too long" in out["schema_score"][1] and "label" in out["schema_score"][2]
    assert "required" in out["schema_score"][3]
    bound = Schema().bind(CheckContext(extra={"schema": schema}))
    assert bound.annotate(ds)["schema_flag"] == out["schema_flag"]
    with pytest.raises(ValueError, match="needs a JSON schema"):
        Schema().annotate(ds)


def test_language_check_keeps_english_and_flags_other_languages():
    from synth_datasets.checks import Language

    rows = [json.loads(line) for line in (Path(__file__).parent / "fixtures" / "languages.jsonl").read_text().splitlines()]
    ds = Dataset.from_dict({"text": [r["text"] for r in rows] + ["ok thanks"]})
    out = Language(languages=("en",)).annotate(ds)
    truth = [r["language"] != "en" for r in rows] + [False]  # the last is too short to judge: kept
    wrong = [t for t, f, want in zip(ds["text"], out["language_flag"], truth) if f != want]
    assert len(wrong) <= 2, wrong
    assert out["language_score"][-1] == "" and not out["language_flag"][-1]
    both = Language(languages=("en", "fr")).annotate(ds)
    assert sum(both["language_flag"]) < sum(out["language_flag"]) - 6


# --- LLM judge -------------------------------------------------------------------------------------

def _judge_responder(conversation):
    """A fake judge with known answers: label fit 5 when the message mentions the intent's first word."""
    prompt = conversation[-1]["content"]
    label = prompt.split("Label: ", 1)[1].split("\n", 1)[0]
    message = prompt.split("Text: ", 1)[1].split("\n", 1)[0]
    fit = 5 if label.split("_")[0] in message.lower() else 1
    return json.dumps({"label_fit_reason": "mentions it" if fit == 5 else "other intent", "label_fit": fit,
                       "plausibility_reason": "fine", "plausibility": 4})


def test_judge_scores_are_columns_and_low_scores_are_filtered(fake_engine, monkeypatch):
    from synth_datasets.checks import Judge
    from synth_datasets.engine import EngineConfig

    monkeypatch.setattr(fake_engine, "responder", staticmethod(_judge_responder))
    ds = Dataset.from_dict({"text": ["my card has not arrived", "what is the exchange rate today", "my card is late"],
                            "label": ["card_arrival", "card_arrival", "exchange_rate"]})
    context = CheckContext(extra={"generator": (EngineConfig(backend="fake"), None)})
    kept, report = run_checks(ds, [Judge()], context=context)
    assert kept["text"] == ["my card has not arrived"]
    annotated = Judge().bind(context).annotate(ds)
    assert annotated["judge_label_fit"] == [5, 1, 1] and annotated["judge_plausibility"] == [4, 4, 4]
    assert annotated["judge_label_fit_reason"][1] == "other intent"
    assert fake_engine.calls and max(fake_engine.calls) == 3  # one batched engine call per map batch
    lenient = Judge(min_score=1).bind(context).annotate(ds)
    assert not any(lenient["judge_flag"])


def test_judge_column_types_hold_across_batches(fake_engine, monkeypatch):
    """A first batch without parse errors, a later one with one: the columns keep their types."""
    fake_engine.constrained = False  # plays an engine whose output no grammar constrains
    from synth_datasets.checks import Judge
    from synth_datasets.engine import EngineConfig

    def responder(conversation):
        return "not json" if "message 9" in conversation[-1]["content"] else _judge_responder(conversation)

    monkeypatch.setattr(fake_engine, "responder", staticmethod(responder))
    ds = Dataset.from_dict({"text": [f"card message {i}" for i in range(10)], "label": ["card_arrival"] * 10})
    out = Judge(engine=EngineConfig(backend="fake"), batch_size=4).annotate(ds)
    assert out["judge_label_fit"] == [5] * 9 + [None] and out["judge_parse_error"][9]
    assert fake_engine.calls == [4, 4, 2]


def test_judge_keeps_rows_whose_judgement_did_not_parse(fake_engine, monkeypatch):
    fake_engine.constrained = False  # plays an engine whose output no grammar constrains
    from synth_datasets.checks import Judge
    from synth_datasets.engine import EngineConfig

    monkeypatch.setattr(fake_engine, "responder", staticmethod(lambda conv: "not json"))
    ds = Dataset.from_dict({"text": ["my card has not arrived"], "label": ["card_arrival"]})
    out = Judge(engine=EngineConfig(backend="fake")).annotate(ds)
    assert out["judge_flag"] == [False] and out["judge_label_fit"] == [None] and "invalid JSON" in out["judge_parse_error"][0]


def test_judge_control_stops_a_judge_that_rejects_real_rows(fake_engine, monkeypatch):
    """Real rows bound as a control: a judge that would remove most of them stops with an error that
    says what to do; a judge that accepts them goes on and filters the synthetic rows."""
    fake_engine.constrained = False  # plays an engine whose output no grammar constrains
    from synth_datasets.checks import Judge
    from synth_datasets.engine import EngineConfig

    real = CheckContext(real_texts=["my card has still not arrived", "what exchange rate do you use?"] * 5,
                        real_labels=["card_arrival", "exchange_rate"] * 5,
                        extra={"generator": (EngineConfig(backend="fake"), None)})
    ds = Dataset.from_dict({"text": ["my card is late", "hello there"], "label": ["card_arrival", "card_arrival"]})
    monkeypatch.setattr(fake_engine, "responder", staticmethod(_judge_responder))
    kept, _ = run_checks(ds, [Judge()], context=real)  # real rows mention their intent: fit 5, control passes
    assert kept["text"] == ["my card is late"]
    assert fake_engine.calls[-2:] == [10, 2]  # the 10 control rows, then the 2 synthetic ones

    harsh = json.dumps({"label_fit_reason": "no", "label_fit": 1, "plausibility_reason": "no", "plausibility": 1})
    monkeypatch.setattr(fake_engine, "responder", staticmethod(lambda conversation: harsh))
    with pytest.raises(ValueError, match="would remove \\(or could not judge\\) 10 of 10 real rows.*control_rows: 0"):
        run_checks(ds, [Judge()], context=real)
    kept, _ = run_checks(ds, [Judge(control_rows=0)], context=real)  # told to filter anyway
    assert len(kept) == 0
    with pytest.raises(ValueError, match="control_rows"):
        Judge(control_rows=-1)
    # a judge that cannot produce a judgement for real rows has not shown it can judge either
    monkeypatch.setattr(fake_engine, "responder", staticmethod(lambda conversation: "not json"))
    with pytest.raises(ValueError, match="could not judge"):
        run_checks(ds, [Judge()], context=real)
    # the control is spread over the labels even with few real rows
    few = CheckContext(real_texts=[f"t{i}" for i in range(32)], real_labels=[f"L{i % 8}" for i in range(32)])
    assert {label for _, label in Judge().bind(few).control} == {f"L{i}" for i in range(8)}
    assert len(Judge(control_rows=5).bind(few).control) == 5


@pytest.mark.slow
def test_judge_on_the_real_engine_writes_valid_scores(real_engine_config):
    """The embedded 135M model as judge: the grammar constrains every answer, but a small model can
    still run out of tokens inside it; such a row must carry its reason in judge_parse_error, keep
    None scores and stay unflagged, and every parsed row must hold scores on the 1-5 scale."""
    from synth_datasets.checks import Judge

    texts = ["I ordered a new card last week and it still has not arrived.", "Here's a rewritten version of the message:",
             "What exchange rate do you use for dollars?", "card_arrival"]
    ds = Dataset.from_dict({"text": texts, "label": ["card_arrival"] * 4})
    out = Judge(engine=real_engine_config).annotate(ds)
    parsed = [i for i, e in enumerate(out["judge_parse_error"]) if e is None]
    assert parsed, out["judge_parse_error"]
    for i in range(4):
        scores = [out[n][i] for n in ("judge_label_fit", "judge_plausibility")]
        if i in parsed:
            assert all(s in (1, 2, 3, 4, 5) for s in scores) and out["judge_label_fit_reason"][i]
            assert out["judge_flag"][i] == any(s < 3 for s in scores)
        else:
            assert scores == [None, None] and not out["judge_flag"][i] and out["judge_parse_error"][i]
    # measured: the 135M model scores real customer messages 1 as well, so its control stops it
    real = [r for r in banking("train") if r["category"] in ("card_arrival", "exchange_rate")][:8]
    control = CheckContext(real_texts=[r["text"] for r in real], real_labels=[r["category"] for r in real])
    with pytest.raises(ValueError, match="real rows judged as a control"):
        Judge(engine=real_engine_config).bind(control).annotate(ds)


def test_the_judge_of_a_task_without_labels_asks_about_the_text_only():
    from synth_datasets.checks import Judge

    judge = Judge(control_rows=0).bind(CheckContext(label_column=None, text_column="question"))
    messages = judge.messages(judge._values({"question": "What is the capital of France?"}))
    assert "Label" not in messages[-1]["content"] and "What is the capital of France?" in messages[-1]["content"]
    assert list(judge.questions()) == ["plausibility"]
    with pytest.raises(ValueError, match="'label_fit' is not one of the task's"):
        Judge(criteria=("label_fit",)).bind(CheckContext(label_column=None)).questions()
