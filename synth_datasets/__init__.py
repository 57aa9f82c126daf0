"""synth-datasets: synthetic training data as Hugging Face `datasets` transforms, generated with vLLM.

The pipeline, in order (stages take and return `Dataset`; nothing else to learn):

    from datasets import Dataset, DatasetDict, load_dataset
    import synth_datasets as sd

    seeds = load_dataset("csv", data_files="seeds.csv", split="train")          # real rows: text,label
    labels = sorted(set(sd.classification.label_names(seeds, "label")))         # names, also for ClassLabel
    prompts = sd.classification_prompts(seeds, balance_to=50)                   # chat requests
    gen = sd.Generate(json_schema=sd.classification.json_schema(labels), parser="classification")
    synthetic = sd.generate(prompts, gen)   # = prompts.map(gen, batched=True, batch_size=1000,
                                            #               features=gen.features(prompts.features))
    kept, report = sd.run_checks(synthetic, [sd.Parsed(), sd.Length(min_chars=10), sd.ExactDuplicates()])
    sd.save_hub_layout(DatasetDict(train=kept), "out/", {"name": "mine", "checks": report.as_dict()})
    load_dataset("out/")                                                         # loads it back

Or all of it from a YAML recipe: `synth-datasets generate recipes/banking77.yaml`.

Kinds of data are tasks (`TASKS`, tasks/base.py); checks, students and backends are registries too,
open to other packages through entry points (docs/writing-a-task.md, -check.md, -backend.md).
"""

__version__ = "0.1.0"

from .checks import CHECKS, CheckReport, ExactDuplicates, Length, Parsed, run_checks, score_check  # noqa: E402
from .engine import Completion, EngineConfig, SamplingConfig  # noqa: E402
from .http_engine import OpenAIEngine  # noqa: E402  (importing it registers the `openai` backend)
from .generate import Generate, generate  # noqa: E402
from .tasks import TASKS, Task, classification  # noqa: E402
from .tasks.classification import classification_prompts  # noqa: E402

from .card import save_hub_layout  # noqa: E402  (imports __version__ from here)

__all__ = [
    "CHECKS", "CheckReport", "Completion", "EngineConfig", "OpenAIEngine", "ExactDuplicates", "Generate", "Length",
    "Parsed", "SamplingConfig", "TASKS", "Task", "classification", "generate", "classification_prompts", "run_checks",
    "save_hub_layout", "score_check", "__version__",
]
