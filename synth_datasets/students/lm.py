"""The LM student: a causal LM fine-tuned with TRL's `SFTTrainer` and a PEFT LoRA adapter.

It learns from conversational prompt-completion rows (what the generators write) and works for any
task; for classification each row is "user: the message -> assistant: the label", and evaluation is
**constrained to the label set**: every label is scored by the model's log-likelihood of answering
exactly that label (then end of turn), and the best one wins, so the student always answers a label.

The default base model is the embedded SmolLM2-135M-Instruct (converted once, see models.py); any
model id or folder works. A saved student is the LoRA adapter (safetensors), the tokenizer, a JSON
config and a model card; no pickled training arguments (transformers' `training_args.bin`) go in.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

from .files import read_student_config, write_student_config

logger = logging.getLogger(__name__)

# The most memory reference_nll's answer logits may take per batch (fp32): 32 rows of 257 answer
# positions over SmolLM2's 49k vocabulary fit; over a 262k vocabulary (Gemma) 7 such rows do.
LOGITS_BUDGET_BYTES = 2 << 30
# Neutral; a recipe's task gives a better one (`task.student_prompt`, or from `task.description`).
PROMPT = "Which label fits this text? Answer with the label only.\n\nText: {text}"


@dataclass
class LMStudentConfig:
    """Settings of the LM student (each is also a `train_student.py` flag)."""

    model: str | None = field(default=None, metadata={"help": "Base causal LM id or folder; null = the embedded SmolLM2-135M-Instruct."})
    prompt: str | None = field(default=None, metadata={"help": "User turn for a row; {text} is the row's text. None: the task's (compare) or a neutral one."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    learning_rate: float = field(default=5e-4, metadata={"help": "Peak learning rate (LoRA tolerates far more than a full fine-tune)."})
    epochs: float = field(default=3.0, metadata={"help": "Passes over the training rows."})
    max_steps: int = field(default=-1, metadata={"help": "Stop after this many optimizer steps (-1: use epochs)."})
    batch_size: int = field(default=8, metadata={"help": "Rows per device per step."})
    max_length: int = field(default=128, metadata={"help": "Tokens per row after the chat template (longer rows are cut)."})
    target_modules: str | list[str] = field(default="all-linear", metadata={"help": "Modules that get LoRA adapters."})
    seed: int = field(default=0, metadata={"help": "Seed for LoRA init and data order."})
    eval_batch_size: int = field(default=32, metadata={"help": "Texts per forward pass when scoring labels."})
    max_new_tokens: int = field(default=64, metadata={"help": "Tokens a greedy answer may take (tasks without labels)."})
    answer_rows: int | None = field(default=32, metadata={"help": "Test rows the student answers greedily (tasks without labels; the first ones, a fixed set); null: all. Greedy answers are the slow part of scoring on a CPU; the reference NLL is computed on every row."})

    def __post_init__(self):
        if self.prompt is not None and "{text}" not in self.prompt:
            raise ValueError("lm prompt must contain {text}, where the row's text goes")
        if self.lora_r < 1 or self.batch_size < 1 or self.max_length < 16:
            raise ValueError("lm lora_r and batch_size must be >= 1 and max_length >= 16")


def rows_to_conversations(texts: Sequence[str], labels: Sequence[str], prompt: str | None = PROMPT) -> dict[str, list]:
    """Prompt-completion columns in TRL's conversational shape."""
    prompt = prompt or PROMPT
    return {
        "prompt": [[{"role": "user", "content": prompt.format(text=t)}] for t in texts],
        "completion": [[{"role": "assistant", "content": label}] for label in labels],
    }


def answer_suffix(tokenizer) -> str:
    """What the chat template writes after an assistant message (e.g. "<|im_end|>\\n" for SmolLM2),
    so a label is scored as a complete answer; the EOS token where the template says nothing."""
    marker = "LABEL_PLACEHOLDER_7f3a"
    try:
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": "x"}, {"role": "assistant", "content": marker}], tokenize=False)
    except Exception:  # no chat template: plain EOS
        rendered = ""
    suffix = rendered[rendered.rfind(marker) + len(marker):] if marker in rendered else ""
    return suffix or tokenizer.eos_token or ""


class LMStudent:
    """A base LM with a trained LoRA adapter; predicts one label of `labels` per text."""

    def __init__(self, model, tokenizer, labels: Sequence[str], config: LMStudentConfig, history: dict | None = None):
        self.model, self.tokenizer = model, tokenizer
        self.labels = list(labels)
        self.config = config
        self.history = history or {}

    def label_scores(self, texts: Sequence[str]):
        """log P(label, end of turn | prompt) for every (text, label): a len(texts) x len(labels) tensor.

        Each prompt is run once and its KV cache reused for every label's few answer tokens, so the
        cost is one prompt pass per text, not one per (text, label).
        """
        import copy

        import torch

        tok, model = self.tokenizer, self.model
        model.eval()
        question = self.config.prompt or PROMPT
        prompts = [tok.apply_chat_template([{"role": "user", "content": question.format(text=t)}],
                                           tokenize=False, add_generation_prompt=True) for t in texts]
        suffix = answer_suffix(tok)
        answers = [tok(label + suffix, add_special_tokens=False)["input_ids"] for label in self.labels]
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        out = torch.empty(len(texts), len(self.labels))
        device = next(model.parameters()).device
        with torch.no_grad():
            for start in range(0, len(prompts), self.config.eval_batch_size):
                encoded = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts[start:start + self.config.eval_batch_size]]
                n, longest = len(encoded), max(len(e) for e in encoded)
                ids = torch.full((n, longest), pad, dtype=torch.long)
                mask = torch.zeros_like(ids)
                for i, e in enumerate(encoded):  # left padding: every prompt ends at the last column
                    ids[i, longest - len(e):] = torch.tensor(e)
                    mask[i, longest - len(e):] = 1
                ids, mask = ids.to(device), mask.to(device)
                lengths = mask.sum(-1)
                first = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                              use_cache=True, logits_to_keep=1)
                first_logp = torch.log_softmax(first.logits[:, -1].float(), dim=-1)
                for j, answer in enumerate(answers):
                    score = first_logp[:, answer[0]].clone()
                    if len(answer) > 1:
                        rest = torch.tensor(answer[:-1], device=device).repeat(n, 1)
                        step = model(input_ids=rest, attention_mask=torch.cat([mask, torch.ones_like(rest)], dim=1),
                                     position_ids=lengths[:, None] + torch.arange(len(answer) - 1, device=device),
                                     past_key_values=copy.deepcopy(first.past_key_values), use_cache=True)
                        logp = torch.log_softmax(step.logits.float(), dim=-1)
                        score += logp[:, torch.arange(len(answer) - 1), torch.tensor(answer[1:], device=device)].sum(-1)
                    out[start:start + n, j] = score.cpu()
        return out

    def _encode(self, prompts: Sequence[list[dict]]) -> list[str]:
        return [self.tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]

    def respond(self, prompts: Sequence[list[dict]], max_new_tokens: int | None = None) -> list[str]:
        """The greedy answer to each conversation (a list of messages ending with the user's turn)."""
        import torch

        tok, model = self.tokenizer, self.model
        model.eval()
        texts = self._encode(prompts)
        device = next(model.parameters()).device
        side, tok.padding_side = tok.padding_side, "left"
        out: list[str] = []
        try:
            with torch.no_grad():
                for start in range(0, len(texts), self.config.eval_batch_size):
                    batch = tok(texts[start:start + self.config.eval_batch_size], return_tensors="pt", padding=True,
                                add_special_tokens=False).to(device)
                    ids = model.generate(**batch, max_new_tokens=max_new_tokens or self.config.max_new_tokens,
                                         do_sample=False, pad_token_id=tok.pad_token_id)
                    out += tok.batch_decode(ids[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
        finally:
            tok.padding_side = side
        return [o.strip() for o in out]

    def reference_nll(self, prompts: Sequence[list[dict]], references: Sequence[str], max_tokens: int = 256) -> list[float]:
        """Mean negative log-likelihood per token of each reference answer (and the end of the turn)
        given its conversation: how well the student predicts the answer it should give, a score that
        needs no judge and moves smoothly. References are cut to `max_tokens` tokens.

        Rows are batched by length (little padding), left-padded, and the vocabulary projection is
        computed only for the answer positions (`logits_to_keep`): on a CPU, full-sequence logits
        over a 49k vocabulary cost more than the model itself. A batch holds fewer rows where their
        answer logits would pass LOGITS_BUDGET_BYTES (large vocabularies)."""
        import torch

        tok, model = self.tokenizer, self.model
        model.eval()
        suffix = answer_suffix(tok)
        device = next(model.parameters()).device
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        pairs = [(tok(p, add_special_tokens=False)["input_ids"], tok(r + suffix, add_special_tokens=False)["input_ids"][:max_tokens])
                 for p, r in zip(self._encode(prompts), references)]
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        vocab = model.get_output_embeddings().weight.shape[0]
        out: list[float] = [0.0] * len(pairs)
        with torch.no_grad():
            for chunk in logit_batches([len(pairs[i][1]) for i in order], vocab, self.config.eval_batch_size):
                chunk = [order[j] for j in chunk]
                longest = max(len(pairs[i][0]) + len(pairs[i][1]) for i in chunk)
                keep = max(len(pairs[i][1]) for i in chunk) + 1  # the answers' positions and the one before them
                ids = torch.full((len(chunk), longest), pad, dtype=torch.long)
                mask = torch.zeros_like(ids)
                for row, i in enumerate(chunk):  # left padding: every answer ends at the last column
                    p, a = pairs[i]
                    ids[row, longest - len(p) - len(a):] = torch.tensor(p + a)
                    mask[row, longest - len(p) - len(a):] = 1
                ids, mask = ids.to(device), mask.to(device)
                logits = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                               logits_to_keep=keep).logits
                for row, i in enumerate(chunk):
                    a = pairs[i][1]
                    # kept column c holds the logits after sequence position longest - keep + c
                    positions = torch.arange(keep - 1 - len(a), keep - 1, device=logits.device)
                    picked = logits[row, positions].float()
                    target = torch.tensor(a, device=logits.device)
                    nll = torch.logsumexp(picked, dim=-1) - picked.gather(1, target[:, None])[:, 0]
                    out[i] = float(nll.mean())
                del logits
        return out

    def predict(self, texts: Sequence[str]) -> list[str]:
        if not texts:
            return []
        return [self.labels[i] for i in self.label_scores(texts).argmax(dim=1).tolist()]

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(folder))  # adapter_model.safetensors + adapter_config.json
        self.tokenizer.save_pretrained(str(folder))
        write_student_config(folder, "lm", self.labels, self.config, self.history)
        (folder / "training_args.bin").unlink(missing_ok=True)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "LMStudent":
        import torch
        from peft import AutoPeftModelForCausalLM
        from transformers import AutoTokenizer

        meta = read_student_config(folder, "lm")
        config = LMStudentConfig(**meta["config"])
        # in float32, as it was trained and scored: the base folder says bfloat16 (the embedded model
        # is stored so), and a bf16 reload answered 1 of 120 test rows differently (test_train_script)
        model = AutoPeftModelForCausalLM.from_pretrained(str(folder), is_trainable=False, dtype=torch.float32)
        return cls(model, AutoTokenizer.from_pretrained(str(folder)), meta["labels"], config, meta.get("history"))


def logit_batches(answer_lengths: Sequence[int], vocab: int, batch_size: int,
                  budget: int | None = None) -> list[list[int]]:
    """Consecutive batches of row indices, at most `batch_size` rows, and fewer where the fp32 logits
    of their answer positions (rows x (longest answer + 1) x vocab x 4 bytes) would pass `budget`
    (LOGITS_BUDGET_BYTES): a 262k vocabulary x 32 rows x 257 positions is 8.6 GB. A row alone is
    always a batch."""
    budget = LOGITS_BUDGET_BYTES if budget is None else budget
    out: list[list[int]] = []
    for i, length in enumerate(answer_lengths):
        if out:
            batch = out[-1]
            widest = max(length, max(answer_lengths[j] for j in batch))
            if len(batch) < batch_size and (len(batch) + 1) * (widest + 1) * vocab * 4 <= budget:
                batch.append(i)
                continue
        out.append([i])
    return out


def base_model_path(name: str | None) -> str:
    from .. import models

    return models.resolve_model(name)


def train_lm(texts: Sequence[str], labels: Sequence[str], config: LMStudentConfig | None = None,
             label_names: Sequence[str] | None = None, prior: LMStudent | None = None,
             output_dir: str | Path | None = None, training_overrides: dict | None = None,
             training_args=None) -> LMStudent:
    """Fine-tune (or, with `prior`, keep fine-tuning that student's adapter) on (text, label) rows.

    `training_args`, a TRL `SFTConfig` (as train_student.py parses it), is used as given, every
    field of it, with only `output_dir` set to the trainer's work folder; without it the config's
    settings build one (`training_overrides` adds fields).
    """
    from datasets import Dataset

    config = config or LMStudentConfig()
    if config.prompt is None:  # the neutral question, written into the saved student's config
        config = replace(config, prompt=PROMPT)
    names = list(label_names) if label_names is not None else sorted(set(labels))
    unknown = sorted(set(labels) - set(names))
    if unknown:
        raise ValueError(f"labels not in label_names: {unknown[:5]}")
    if not texts:
        raise ValueError("cannot train an LM student on zero rows")
    data = Dataset.from_dict(rows_to_conversations(texts, labels, config.prompt))
    return train_lm_on(data, config, names, prior, output_dir, training_overrides, training_args)


def train_lm_on(data, config: LMStudentConfig, label_names: Sequence[str] = (), prior: LMStudent | None = None,
                output_dir: str | Path | None = None, training_overrides: dict | None = None,
                training_args=None) -> LMStudent:
    """Fine-tune on conversational prompt-completion rows (`prompt`: the messages up to the user's
    turn, `completion`: the assistant's turn); the loss is on the completion only."""
    import copy
    import tempfile

    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    if len(data) == 0:
        raise ValueError("cannot train an LM student on zero rows")
    names = list(label_names)
    work = Path(output_dir) if output_dir else Path(tempfile.mkdtemp(prefix="synth-lm-"))
    cpu = not torch.cuda.is_available()
    settings = dict(
        output_dir=str(work), learning_rate=config.learning_rate, num_train_epochs=config.epochs,
        max_steps=config.max_steps, per_device_train_batch_size=config.batch_size, max_length=config.max_length,
        seed=config.seed, save_strategy="no", report_to="none", logging_steps=1, lr_scheduler_type="cosine",
        warmup_steps=0.1, use_cpu=cpu, bf16=False, completion_only_loss=True, disable_tqdm=True,
        # TRL turns it on by default; a LoRA on a small model does not need the memory it saves, and
        # recomputing activations cost 17% or more of a step here (same loss: docs/students.md)
        gradient_checkpointing=False,
    )
    args = copy.copy(training_args) if training_args is not None else SFTConfig(**{**settings, **(training_overrides or {})})
    args.output_dir = str(work)
    if prior is not None:
        model, tokenizer, peft_config = prior.model, prior.tokenizer, None
        for name, param in model.named_parameters():
            param.requires_grad = "lora_" in name
    else:
        path = base_model_path(config.model)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        peft_config = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                                 target_modules=config.target_modules, task_type="CAUSAL_LM")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=peft_config)
    if training_args is None:  # our quiet config: transformers would print every log dict; the losses go to the history
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    out = trainer.train()
    changed = sum(int(not torch.equal(before[n], p.detach())) for n, p in trainer.model.named_parameters() if n in before)
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    history = {"rows": len(data), "steps": out.global_step, "train_loss": out.training_loss,
               "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
               "trainable_tensors_changed": changed, "trainable_tensors": len(before), "two_stage": prior is not None,
               "finite": all(math.isfinite(x) for x in losses)}
    logger.info("LM student: %d rows, %d steps, loss %.3f -> %.3f", len(data), out.global_step,
                history["first_loss"] or float("nan"), history["last_loss"] or float("nan"))
    return LMStudent(trainer.model, tokenizer, names, config, history)
