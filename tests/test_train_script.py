"""scripts/train_student.py: TrlParser + --config, both students, card and no pickle in the output."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from datasets import Dataset, DatasetDict

from loopback import free_port
from synth_datasets.card import save_hub_layout
from synth_datasets.students import load_student
from synth_datasets.students.script import main

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"
LABELS = ["card_arrival", "exchange_rate", "pin_blocked"]


@pytest.fixture
def synthetic_folder(tmp_path):
    """A dataset folder in the layout `generate` writes; its rows are real rows standing in for synthetic ones."""
    real = Dataset.from_csv(str(DATA / "train.csv"))
    rows = [(t, c) for t, c in zip(real["text"], real["category"]) if c in LABELS]
    picked = [r for label in LABELS for r in [x for x in rows if x[1] == label][50:58]]
    ds = Dataset.from_dict({"text": [t for t, _ in picked], "label": [c for _, c in picked]})
    return save_hub_layout(DatasetDict(train=ds), tmp_path / "synthetic", {"name": "fixture", "task": "classification"})


def write_config(tmp_path, **values) -> Path:
    config = {"synthetic_data": str(tmp_path / "synthetic"), "real_data": str(DATA / "train.csv"), "real_per_label": 3,
              "test_data": str(DATA / "test.csv"), "real_label_column": "category", "labels": LABELS,
              "output_dir": str(tmp_path / "student"), "seed": 0, **values}
    path = tmp_path / "student.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def check_output(folder: Path, kind: str) -> dict:
    """The saved student, reloaded, gives the accuracy results.json reports on the same 120 test rows."""
    results = json.loads((folder / "results.json").read_text())
    assert results["student"] == kind and results["metrics"]["test_rows"] == 120  # 40 test rows for each of the 3 labels
    test = Dataset.from_csv(str(DATA / "test.csv")).filter(lambda r: r["category"] in LABELS)
    predictions = load_student(folder).predict(test["text"])
    recomputed = sum(p == t for p, t in zip(predictions, test["category"])) / len(test)
    assert results["metrics"]["accuracy"] == pytest.approx(recomputed)  # what was saved is what was scored
    card = (folder / "README.md").read_text()
    assert f"| accuracy | {results['metrics']['accuracy']:.4f} |" in card and results["mix"] in card
    assert not [p.name for p in folder.rglob("*") if p.suffix in (".bin", ".pkl", ".pt", ".pickle")]
    return results


def test_classifier_student_from_a_config_file_with_a_flag_override(synthetic_folder, tmp_path):
    summary = main(["--config", str(write_config(tmp_path)), "--synthetic_ratio", "2.0"])
    assert summary["mix"] == "blended: 9 real + 18 synthetic rows"
    results = check_output(tmp_path / "student", "classifier")
    assert results["metrics"]["accuracy"] > 0.8  # three distinct intents with 27 rows: easy


def test_two_stage_and_bad_arguments(synthetic_folder, tmp_path):
    summary = main(["--config", str(write_config(tmp_path, two_stage=True))])
    assert summary["mix"].startswith("two-stage: 24 synthetic rows, then 9 real rows")
    with pytest.raises(SystemExit):
        main(["--config", str(write_config(tmp_path, student="svm"))])


@pytest.mark.slow
def test_lm_student_under_accelerate_launch(synthetic_folder, tmp_path):
    config = write_config(tmp_path, student="lm", max_steps=3, per_device_train_batch_size=8, max_length=96,
                          learning_rate=1e-3, logging_steps=1)
    env = {**os.environ, "ACCELERATE_DISABLE_RICH": "1"}
    launcher = Path(sys.executable).parent / "accelerate"
    proc = subprocess.run([str(launcher), "launch", "--config_file", "scripts/accelerate/cpu.yaml",
                           "scripts/train_student.py", "--config", str(config)],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = check_output(tmp_path / "student", "lm")
    assert results["hyperparameters"]["max_steps"] == 3
    assert (tmp_path / "student" / "adapter_model.safetensors").is_file()
    # the Trainer's own folder (where transformers would pickle training_args.bin) is not the student's
    assert (tmp_path / "student-trainer").is_dir()



@pytest.mark.slow
def test_lm_student_data_parallel_on_two_cpu_processes(synthetic_folder, tmp_path):
    """The shipped scripts/accelerate/multi_gpu.yaml (data parallel through torchrun), run here on two
    CPU processes (no GPU: accelerate's processes fall back to gloo on 127.0.0.1): the student trains
    on both, is saved once, and says it was trained by 2 processes."""
    config = write_config(tmp_path, student="lm", max_steps=2, per_device_train_batch_size=4, max_length=64,
                          learning_rate=1e-3, logging_steps=1)
    env = {**os.environ, "ACCELERATE_DISABLE_RICH": "1", "OMP_NUM_THREADS": "1"}
    launcher = Path(sys.executable).parent / "accelerate"
    proc = subprocess.run([str(launcher), "launch", "--config_file", "scripts/accelerate/multi_gpu.yaml",
                           "--num_processes", "2", "--mixed_precision", "no", "--main_process_ip", "127.0.0.1",
                           "--main_process_port", str(free_port()), "scripts/train_student.py", "--config", str(config)],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = check_output(tmp_path / "student", "lm")
    assert results["processes"] == 2
