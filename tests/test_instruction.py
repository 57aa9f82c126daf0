"""The instruction-following task (tasks/instruction.py) with the fake engine: seeds read from
Self-Instruct's nested format, the bootstrap in rounds with the novelty rule, the evaluation split
kept out of every request, answers in TRL's conversational format, and the card/provenance."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml
from datasets import Dataset, load_dataset

from synth_datasets.pipeline import Runner, load_seeds, run_recipe
from synth_datasets.recipe import load_recipe
from synth_datasets.tasks.instruction import Instruction, InstructionConfig, InstructionSeeds, list_items, to_messages

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "self_instruct"
SEEDS = SHARED / "seed_tasks.jsonl"
EVAL = SHARED / "user_oriented_instructions.jsonl"
needs_data = pytest.mark.skipif(not SEEDS.is_file(), reason=f"{SEEDS} is not here (../shared/data)")

WORDS = ("river violin ledger cactus orbit pepper canyon marble tundra quartz walnut harbor falcon lantern "
         "meadow saddle cobalt thistle glacier parsley compass ember willow mosaic summit basalt").split()


def fresh_task(i: int, salt: str) -> str:
    """An instruction made of words no seed uses, so it is novel unless repeated."""
    h = hashlib.sha1(f"{salt}:{i}".encode()).digest()
    return "Explain " + " ".join(WORDS[b % len(WORDS)] for b in h[:6]) + " briefly."


def list_completer(prompt: str) -> str:
    """Continues the numbered list: three new tasks, one of them a repeat of the first (not novel)
    and one with a word Self-Instruct drops."""
    last = int(re.findall(r"\n(\d+)\.$", prompt)[0])
    salt = hashlib.sha1(prompt.encode()).hexdigest()
    items = [fresh_task(0, salt), fresh_task(0, salt), "Draw a picture of a " + WORDS[len(prompt) % 20] + " now.",
             fresh_task(1, salt)]
    text = f" {items[0]}\n"
    for j, item in enumerate(items[1:], start=1):
        text += f"{last + j}. {item}\n"
    return text + "\n"


def answer_responder(conversation: list[dict]) -> str:
    prompt = conversation[-1]["content"]
    task = prompt.rsplit("Task: ", 1)[1].split("\n")[0]
    return json.dumps({"input": "" if len(task) % 2 else "some input", "output": f"An answer to: {task}"})


def write_recipe(tmp_path, **task) -> Path:
    data = {
        "name": "si-test",
        "seeds": {"path": str(SEEDS), "count": 30, "seed": 0},
        "task": {"kind": "instruction", "instructions": 12, "rounds": 4, **task},
        "generator": {"max_tokens": 64},
        "engine": {"backend": "fake"},
        "checks": ["parsed", "truncated", {"length": {"column": "output"}}, "refusal", "text_only", "exact_dedup",
                   "near_dedup", "real_copy", "decontaminate"],
        "diversity": False,
        "compare": {"test_path": str(EVAL)},
        "output": {"dir": str(tmp_path / "out")},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_list_items_reads_a_continued_numbered_list():
    assert list_items(" First task.\n10. Second task.\n11. Third.", 9) == ["First task.", "Second task.", "Third."]
    assert list_items(" Only one.\n\nSomething else", 9) == ["Only one. Something else"]
    assert list_items(" A.\n12. skipped numbers end it", 9) == ["A."]


def test_messages_are_trl_conversations():
    assert to_messages("Translate.", "Hallo", "Hello") == [
        {"role": "user", "content": "Translate.\n\nHallo"}, {"role": "assistant", "content": "Hello"}]
    assert to_messages("Name a prime.", "", "7")[0]["content"] == "Name a prime."


@needs_data
def test_seeds_read_from_nested_instances_and_flat_files(tmp_path):
    task = Instruction(InstructionConfig(), InstructionSeeds(path=str(SEEDS)))
    rows, dropped = task.standardize(load_dataset("json", data_files=str(SEEDS), split="train"), "seeds.path")
    assert len(rows) == 175 and dropped == {}
    assert rows.column_names == ["instruction", "input", "output"]
    assert sum(1 for t in rows["input"] if not t) == 50
    # a task made in Python without a recipe's seeds section reads the default columns
    assert Instruction().standardize(load_dataset("json", data_files=str(SEEDS), split="train"), "x")[0].to_list() == rows.to_list()
    flat = tmp_path / "flat.jsonl"
    flat.write_text("\n".join(json.dumps(r) for r in [
        {"instruction": "Say hi.", "input": "", "output": "Hi!"}, {"instruction": "", "input": "", "output": "x"},
        {"instruction": "Add.", "input": "2 2", "output": " "}]))
    rows, dropped = task.standardize(load_dataset("json", data_files=str(flat), split="train"), "seeds.path")
    assert rows["instruction"] == ["Say hi."] and dropped == {"empty instruction": 1, "empty output": 1}


@needs_data
def test_bootstrap_keeps_novel_instructions_in_rounds_and_answers_them(fake_engine, tmp_path, monkeypatch):
    monkeypatch.setattr(fake_engine, "completer", staticmethod(list_completer))
    monkeypatch.setattr(fake_engine, "responder", staticmethod(answer_responder))
    recipe = load_recipe(write_recipe(tmp_path))
    folder, report = run_recipe(recipe)
    provenance = json.loads((folder / "provenance.json").read_text())
    boot = provenance["bootstrap"]
    assert boot["kept"] == 12 and boot["wanted"] == 12
    # every request gives a repeat (not novel) and a "draw a picture" task (text model cannot)
    assert boot["dropped"]["not novel (ROUGE-L > 0.7)"] >= boot["requests"]
    assert boot["dropped"]["needs what a text model cannot do"] >= boot["requests"]
    assert len(boot["rounds"]) >= 2  # the first round's yield estimate was short: a second round filled it
    assert [s["stage"] for s in provenance["stages"]][-1] == "generate"
    assert provenance["requests"] == boot["requests"] + 12
    data = load_dataset(str(folder), split="train")
    assert len(data) == 12
    for row in data:
        assert row["messages"] == to_messages(row["instruction"], row["input"], row["output"])
        assert row["output"] == f"An answer to: {row['instruction']}"
    assert set(data["round"]) >= {1, 2}
    # a pool instruction shown to later rounds: machine shots appear in round-2 requests
    later = [s for s in provenance["stages"] if s["stage"] == "instructions-2"]
    assert later and later[0]["completion_mode"] is True
    card = (folder / "README.md").read_text()
    assert "### Bootstrap and novelty" in card and "| kept (of 12 wanted) | 12 |" in card
    assert f"| dropped: not novel (ROUGE-L > 0.7) | {boot['dropped']['not novel (ROUGE-L > 0.7)']} |" in card
    assert "Come up with a series of tasks:\n\n1. <a task from the pool>" in card and "TRL's\nconversational format" in card
    assert "| instructions-1 |" in card and "| generate | 12 | chat, JSON schema |" in card


@needs_data
def test_no_evaluation_instruction_reaches_a_request(fake_engine, tmp_path, monkeypatch):
    """A model that answers with the user-oriented (evaluation) instructions: none enters the pool,
    so none is shown in a later request, answered or kept."""
    evaluation = [json.loads(line)["instruction"] for line in EVAL.read_text().splitlines()]
    short = [" ".join(t.split()) for t in evaluation if len(t.split()) <= 40]

    def leaking(prompt: str) -> str:
        last = int(re.findall(r"\n(\d+)\.$", prompt)[0])
        salt = hashlib.sha1(prompt.encode()).hexdigest()
        i = int(salt[:6], 16)
        items = [short[i % len(short)], short[(i + 7) % len(short)] + " Please.", fresh_task(2, salt)]
        return f" {items[0]}\n" + "".join(f"{last + j}. {item}\n" for j, item in enumerate(items[1:], start=1)) + "\n"

    monkeypatch.setattr(fake_engine, "completer", staticmethod(leaking))
    monkeypatch.setattr(fake_engine, "responder", staticmethod(answer_responder))
    seen: list[str] = []
    real_call = Runner.__call__

    def spy(self, prompts, gen, stage="generate"):
        for column in ("prompt", "messages", "request_messages"):
            if column in prompts.column_names:
                seen.extend(json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v for v in prompts[column])
        return real_call(self, prompts, gen, stage)

    monkeypatch.setattr(Runner, "__call__", spy)
    recipe = load_recipe(write_recipe(tmp_path, instructions=6))
    folder, _ = run_recipe(recipe)
    boot = json.loads((folder / "provenance.json").read_text())["bootstrap"]
    assert boot["dropped"]["overlaps the evaluation split"] >= 2 * boot["requests"] - 1
    assert boot["holdout_instructions"] == 252
    requests = "\n".join(seen)
    assert seen and not [t for t in evaluation if " ".join(t.split())[:60] in requests]
    kept = load_dataset(str(folder), split="train")["instruction"]
    assert not set(kept) & {" ".join(t.split()) for t in evaluation}


@needs_data
def test_chat_form_parses_a_json_list(fake_engine, tmp_path, monkeypatch):
    def chat(conversation):
        content = conversation[-1]["content"]
        if "Answer with a JSON object: \"tasks\"" in content:
            salt = hashlib.sha1(content.encode()).hexdigest()
            return json.dumps({"tasks": [fresh_task(k, salt) for k in range(3)]})
        return answer_responder(conversation)

    monkeypatch.setattr(fake_engine, "responder", staticmethod(chat))
    recipe = load_recipe(write_recipe(tmp_path, prompt_form="chat", new_per_request=3, instructions=5))
    task, seeds, _ = load_seeds(recipe)
    runner = Runner(recipe)
    out = task.synthesize(seeds, runner, seed=0)
    assert len(out) == 5 and runner.notes["bootstrap"]["candidates"] >= 5
    assert all(not s["completion_mode"] for s in runner.describe_stages())


@needs_data
def test_a_rerun_is_served_from_the_cache(fake_engine, tmp_path, monkeypatch):
    monkeypatch.setattr(fake_engine, "completer", staticmethod(list_completer))
    monkeypatch.setattr(fake_engine, "responder", staticmethod(answer_responder))
    recipe = load_recipe(write_recipe(tmp_path, instructions=5))
    task, seeds, _ = load_seeds(recipe)
    first = task.synthesize(seeds, Runner(recipe), seed=0)
    calls = len(fake_engine.calls)
    runner = Runner(recipe)
    again = task.synthesize(seeds, runner, seed=0)
    assert len(fake_engine.calls) == calls  # no engine call: every stage from the datasets cache
    assert again["instruction"] == first["instruction"] and runner.engine_work()["requests"] == 0


def test_instruction_config_errors_name_the_field():
    with pytest.raises(ValueError, match="prompt_form: 'list' is not known"):
        InstructionConfig(prompt_form="list")
    with pytest.raises(ValueError, match="machine_shots must be between 0 and shots"):
        InstructionConfig(shots=2, machine_shots=3)


def test_score_is_rouge_l_and_mean_nll():
    task = Instruction()
    rows = Dataset.from_dict({"instruction": ["a", "b"], "input": ["", ""], "output": ["the cat sat", "red blue"]})
    scores = task.score([{"answer": "the cat sat", "nll": 1.0}, {"answer": "green", "nll": 3.0}], rows)
    assert scores == {"rouge_l": 0.5, "nll": 2.0}
    # rows without a greedy answer (beyond the student's answer_rows) count for the NLL only
    scores = task.score([{"answer": "the cat", "nll": 1.0}, {"answer": None, "nll": 2.0}], rows)
    assert scores["nll"] == 1.5 and scores["rouge_l"] == pytest.approx(0.8)


def test_instruction_checks_flag_what_they_name():
    from synth_datasets.checks import Refusal, TextOnly, Truncated, build_check

    batch = {"instruction": ["Draw a map of the town.", "Summarize the plot of Hamlet.", "Rename the files.",
                             "Explain photosynthesis."],
             "output": ["A map.", "I'm sorry, I cannot help with that request.", "As an AI language model, I can't access files.",
                        "Plants turn light into sugar."],
             "finish_reason": ["stop", "stop", "length", "stop"]}
    assert Truncated().flag_batch(batch)["truncated_flag"] == [False, False, True, False]
    refusal = Refusal().flag_batch(batch)
    assert refusal["refusal_flag"] == [False, True, True, False]
    assert refusal["refusal_score"][1] == "I'm sorry"
    # "plot" of a play is blocked by Self-Instruct's list too (whole words); "photosynthesis" is not "photo"
    text_only = TextOnly(column="instruction").flag_batch(batch)
    assert text_only["text_only_flag"] == [True, True, True, False]
    assert text_only["text_only_score"][:3] == ["draw", "plot", "files"]
    assert TextOnly(column="instruction", words=["map"]).flag_batch(batch)["text_only_flag"] == [True, False, False, False]
    with pytest.raises(ValueError, match="checks.text_only.words: expected a list, got 'map'"):
        build_check("text_only", {"words": "map"})


@needs_data
def test_judge_criteria_of_the_task_are_accepted_and_others_refused_when_the_recipe_loads(tmp_path):
    """A recipe may name the instruction task's own judge criteria (not the classification defaults)."""
    from synth_datasets.errors import RecipeError

    path = write_recipe(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["checks"].append({"judge": {"criteria": ["follows_instruction", "correctness"], "control_rows": 0}})
    path.write_text(yaml.safe_dump(data))
    judge = load_recipe(path).build_checks()[-1]
    context = __import__("synth_datasets.pipeline", fromlist=["x"]).check_context
    recipe = load_recipe(path)
    task, seeds, _ = load_seeds(recipe)
    bound = judge.bind(context(recipe, task, seeds, test_texts=[]))
    assert list(bound.questions()) == ["follows_instruction", "correctness"]
    prompt = bound.messages(bound._values({"instruction": "Add.", "input": "2 2", "output": "4"}))[-1]["content"]
    assert "Instruction: Add.\nInput: 2 2\nOutput: 4" in prompt
    # the real-row control is made of whole seed rows (instruction, input, output), not texts alone
    from dataclasses import replace

    control = replace(judge, control_rows=3).bind(context(recipe, task, seeds, test_texts=[])).control
    assert len(control) == 3 and all(len(row) == 3 for row in control)
    assert {row[0] for row in control} <= set(seeds["instruction"]) and all(row[2] for row in control)
    data["checks"][-1] = {"judge": {"criteria": ["label_fit"]}}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RecipeError, match="'label_fit' is not one of the task's"):
        load_recipe(path)
