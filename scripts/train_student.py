"""Train one student on synthetic (and real) rows and score it on a real test split.

    python scripts/train_student.py --config recipes/student-classifier.yaml
    python scripts/train_student.py --config recipes/student-lm.yaml --max_steps 20
    accelerate launch --config_file scripts/accelerate/cpu.yaml scripts/train_student.py --config recipes/student-lm.yaml

Flags: this script's own (synth_datasets/students/script.py: StudentScriptArguments) plus TRL's
SFTConfig and ModelConfig; `--help` lists them all. The folder --output_dir receives the student
(safetensors, no pickle), README.md (model card) and results.json.
"""

from synth_datasets.students.script import main

if __name__ == "__main__":
    main()
