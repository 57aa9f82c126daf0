"""The token-classification student: an encoder (the embedded all-MiniLM-L6-v2 by default) with a
token-classification head, fine-tuned with transformers' Trainer on words + BIO tags.

Words are the task's tokens (MIT Restaurant's are whitespace tokens); each word's tag is learned and
predicted on its first sub-word piece, the others are ignored in the loss (-100), as the transformers
token-classification examples do. Scoring is the task's (seqeval, strict IOB2 entity-level F1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .files import read_student_config, write_student_config

logger = logging.getLogger(__name__)
IGNORE = -100


@dataclass
class TaggerConfig:
    """Settings of the tagger student (each is also a `compare.student_options` key)."""

    encoder: str = field(default="all-MiniLM-L6-v2", metadata={"help": "Encoder id or folder; the default is the embedded copy."})
    learning_rate: float = field(default=1e-4, metadata={"help": "Peak learning rate (linear decay, 10% warm-up)."})
    epochs: float = field(default=20.0, metadata={"help": "Passes over the training rows (few rows: many passes)."})
    # chosen on 1,000 MIT Restaurant training sentences held out as validation (never the test split):
    # benchmarks/tagger_tuning.py, docs/extraction.md. At k = 50, 20 passes are 80 steps and the
    # tagger is far from trained (+12 to +15 F1 points with 300); at k >= 200 the floor hardly binds
    min_steps: int = field(default=300, metadata={"help": "At least this many optimizer steps: more passes when there are few rows."})
    batch_size: int = field(default=16, metadata={"help": "Rows per step."})
    max_length: int = field(default=128, metadata={"help": "Sub-word pieces per row (longer rows are cut)."})
    weight_decay: float = 0.01
    seed: int = 0
    eval_batch_size: int = 64

    def __post_init__(self):
        if self.batch_size < 1 or self.epochs <= 0 or self.max_length < 8 or self.min_steps < 0:
            raise ValueError("tagger: batch_size >= 1, epochs > 0, min_steps >= 0 and max_length >= 8")

    def passes(self, rows: int) -> float:
        """Epochs to train on `rows` rows: `epochs`, or more where that would be under `min_steps` steps."""
        per_epoch = -(-rows // self.batch_size)
        return max(self.epochs, -(-self.min_steps // per_epoch))


def tag_names(entity_labels: Sequence[str]) -> list[str]:
    """IOB2 tags of these entity labels: O, then B-/I- of each label in order."""
    return ["O"] + [f"{p}-{label}" for label in entity_labels for p in ("B", "I")]


class TaggerStudent:
    def __init__(self, model, tokenizer, tags: Sequence[str], config: TaggerConfig, history: dict | None = None):
        self.model, self.tokenizer, self.tags = model, tokenizer, list(tags)
        self.config, self.history = config, history or {}

    def _encode(self, words: Sequence[Sequence[str]], tags: Sequence[Sequence[str]] | None = None):
        enc = self.tokenizer([list(w) for w in words], is_split_into_words=True, truncation=True,
                             max_length=self.config.max_length)
        if tags is not None:
            index = {t: i for i, t in enumerate(self.tags)}
            labels = []
            for row, row_tags in enumerate(tags):
                previous, out = None, []
                for w in enc.word_ids(row):
                    out.append(IGNORE if w is None or w == previous else index[row_tags[w]])
                    previous = w
                labels.append(out)
            enc["labels"] = labels
        return enc

    def predict(self, words: Sequence[Sequence[str]]) -> list[list[str]]:
        """A tag per word (first sub-word piece's argmax; "O" for words cut off by max_length)."""
        import torch

        self.model.eval()
        device = next(self.model.parameters()).device
        out: list[list[str]] = []
        with torch.no_grad():
            for start in range(0, len(words), self.config.eval_batch_size):
                chunk = words[start:start + self.config.eval_batch_size]
                enc = self._encode(chunk)
                batch = self.tokenizer.pad({k: enc[k] for k in ("input_ids", "attention_mask")}, return_tensors="pt")
                logits = self.model(**{k: v.to(device) for k, v in batch.items()}).logits.argmax(-1).cpu()
                for row, row_words in enumerate(chunk):
                    tags = ["O"] * len(row_words)
                    previous = None
                    for position, w in enumerate(enc.word_ids(row)):
                        if w is not None and w != previous:
                            tags[w] = self.tags[int(logits[row, position])]
                        previous = w
                    out.append(tags)
        return out

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(folder))
        self.tokenizer.save_pretrained(str(folder))
        write_student_config(folder, "tagger", self.tags, self.config, self.history)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "TaggerStudent":
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        meta = read_student_config(folder, "tagger")
        return cls(AutoModelForTokenClassification.from_pretrained(str(folder)), AutoTokenizer.from_pretrained(str(folder)),
                   meta["labels"], TaggerConfig(**meta["config"]), meta.get("history"))


def train_tagger(words: Sequence[Sequence[str]], tags: Sequence[Sequence[str]], tag_set: Sequence[str],
                 config: TaggerConfig | None = None, prior: TaggerStudent | None = None) -> TaggerStudent:
    """Fine-tune (or, with `prior`, keep fine-tuning that student) on words + IOB2 tags."""
    import tempfile

    import torch
    from datasets import Dataset
    from transformers import (AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification,
                              Trainer, TrainingArguments)
    from transformers.trainer_callback import PrinterCallback

    from .encoder import resolve_encoder

    config = config or TaggerConfig()
    if not words:
        raise ValueError("cannot train a tagger on zero rows")
    unknown = sorted({t for row in tags for t in row} - set(tag_set))
    if unknown:
        raise ValueError(f"tags not in the tag set: {unknown[:5]}")
    if prior is not None:
        student = TaggerStudent(prior.model, prior.tokenizer, prior.tags, config)
    else:
        from transformers import set_seed

        set_seed(config.seed)  # the new head's initial weights follow the config, not what ran before in the process
        path = resolve_encoder(config.encoder)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForTokenClassification.from_pretrained(
            path, num_labels=len(tag_set), id2label=dict(enumerate(tag_set)), label2id={t: i for i, t in enumerate(tag_set)})
        student = TaggerStudent(model, tokenizer, tag_set, config)
    enc = student._encode(words, tags)
    data = Dataset.from_dict({k: enc[k] for k in ("input_ids", "attention_mask", "labels")})
    with tempfile.TemporaryDirectory(prefix="synth-tagger-") as scratch:  # nothing is saved there (save_strategy no)
        args = TrainingArguments(
            output_dir=scratch, learning_rate=config.learning_rate,
            num_train_epochs=config.passes(len(words)), per_device_train_batch_size=config.batch_size,
            weight_decay=config.weight_decay, warmup_steps=0.1, lr_scheduler_type="linear", seed=config.seed,
            save_strategy="no", report_to="none", logging_steps=10, disable_tqdm=True,
            use_cpu=not torch.cuda.is_available())
        trainer = Trainer(model=student.model, args=args, train_dataset=data,
                          data_collator=DataCollatorForTokenClassification(student.tokenizer))
        trainer.remove_callback(PrinterCallback)  # transformers would print every log dict; the losses go to the history
        result = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    student.history = {"steps": result.global_step, "train_loss": result.training_loss,
                       "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
                       "rows": len(words)}
    return student


__all__ = ["TaggerConfig", "TaggerStudent", "tag_names", "train_tagger"]
