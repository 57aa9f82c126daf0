"""YAML recipe -> dataclasses. A bad field gets an error that names it, what came, and the fix.

A recipe (see recipes/banking77.yaml):

    name: banking77-demo
    seeds:     {path: ..., text_column: text, label_column: category, per_label: 6, rare: {label: 2}}
    task:      {kind: classification, balance_to: 20, shots: 3}
    generator: {model: null, temperature: 0.9, top_p: 0.95, max_tokens: 96}
    engine:    {dtype: auto, seed: 0}
    checks:    [parsed, {length: {min_chars: 10}}, exact_dedup]
    output:    {dir: outputs/banking77-demo}

Relative paths are resolved against the recipe file's folder. The `seeds:` and `task:` sections
belong to the task that `task.kind` names (tasks/): each task brings its own dataclasses for them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .checks import build_check
from .engine import EngineConfig, SamplingConfig, options_class
from .config import build_config
from .errors import RecipeError
from .tasks import get_task


@dataclass
class GeneratorConfig:
    model: str | None = field(default=None, metadata={"help": "HF id or local folder; null = embedded SmolLM2-135M-Instruct."})
    temperature: float = 0.9
    top_p: float = 0.95
    max_tokens: int = 96
    batch_size: int = field(default=1000, metadata={"help": "Rows per map batch = requests per engine call (with output.run_dir, shard_size is)."})
    shard_size: int = field(default=1000, metadata={"help": "Rows per shard when output.run_dir makes the run resumable."})

    def __post_init__(self):
        for name in ("batch_size", "shard_size"):
            if getattr(self, name) < 1:
                raise RecipeError(f"generator.{name} must be >= 1, got {getattr(self, name)}")
        try:
            self.sampling()
        except ValueError as e:
            raise RecipeError(f"generator.{e}") from None

    def sampling(self) -> SamplingConfig:
        return SamplingConfig(temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_tokens)


@dataclass
class OutputConfig:
    dir: str = "outputs/synthetic"
    run_dir: str | None = field(default=None, metadata={"help": "Make generation resumable: finished shards are kept here; kill and rerun to continue."})
    license: str | None = field(default=None, metadata={"help": "License id of the generated data for the card (e.g. cc-by-4.0); mind the seeds' and the generator's terms."})


@dataclass
class CompareConfig:
    """`synth-datasets compare`: what the synthetic data adds to a student, on a real test split."""

    test_path: str | None = field(default=None, metadata={"help": "Real test split (CSV/JSON/Parquet file or a folder); never shown to the generator."})
    test_split: str = field(default="test", metadata={"help": "Split to read when test_path is a folder."})
    real_per_label: list[int] = field(default_factory=lambda: [10], metadata={"help": "k values: real training rows per label, drawn at random from seeds.path for each draw."})
    draws: int = field(default=3, metadata={"help": "Independent draws of the real rows (each generates its own synthetic rows); mean ± sd over them."})
    synthetic_per_label: int = field(default=20, metadata={"help": "Synthetic rows requested per label in each draw (before the checks)."})
    aimed_per_label: int = field(default=0, metadata={"help": "Extra requests per label (on average) aimed at what a real-only student confuses: shared by cross-validated errors on the draw's real rows, each showing the confused label's real rows as what not to write (synth_datasets.aim); 0: none."})
    tune: bool = field(default=False, metadata={"help": "Per draw and k, choose by cross-validation on the real rows only which synthetic rows the blended students keep (a label-agreement margin) and what each weighs next to a real row (0 included: real rows alone); classifier student only (synth_datasets.tune)."})
    generate_from: str = field(default="each_k", metadata={"help": "each_k: generate for every (draw, k) from those k rows; smallest_k: generate once per draw from its smallest-k rows, which every larger k of the draw contains (len(k) times less generation, but the generator sees fewer examples)."})
    ratios: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0], metadata={"help": "Synthetic rows per real row in the blended and two-stage arms (all kept rows are tried too)."})
    max_shortfall: float = field(default=0.05, metadata={"help": "A ratio arm still runs when the checks left some labels short of ratio x k rows, if the rows missing are at most this share of those needed (those labels give what they have)."})
    primary_ratio: float = field(default=1.0, metadata={"help": "The blend the verdict is stated for, fixed before looking at results."})
    student: str | None = field(default=None, metadata={"help": "The student kind: classifier (frozen encoder + logistic regression), lm (TRL SFT + LoRA) or a plugin's; null = the task's default."})
    student_options: dict[str, Any] = field(default_factory=dict, metadata={"help": "Settings of the student kind (its config's fields), e.g. {c: 10} or {learning_rate: 0.001}."})
    encoder: str = field(default="all-MiniLM-L6-v2", metadata={"help": "Classifier student's sentence encoder (id or folder)."})
    c: float = field(default=30.0, metadata={"help": "Classifier student's inverse L2 strength."})
    lm_model: str | None = field(default=None, metadata={"help": "LM student's base model; null = the embedded SmolLM2-135M-Instruct."})
    lm_epochs: float = field(default=3.0, metadata={"help": "LM student's passes over its training rows."})
    dir: str | None = field(default=None, metadata={"help": "Where the table, plot and JSON go; default: <output.dir>/compare."})

    def __post_init__(self):
        if not self.real_per_label or any(k < 1 for k in self.real_per_label):
            raise ValueError(f"real_per_label: give one or more k >= 1; got {self.real_per_label}")
        if self.draws < 1:
            raise ValueError(f"draws: at least 1 (3 or more for a spread); got {self.draws}")
        if self.synthetic_per_label < 1:
            raise ValueError(f"synthetic_per_label: at least 1; got {self.synthetic_per_label}")
        if self.aimed_per_label < 0:
            raise ValueError(f"aimed_per_label: 0 (none) or more extra requests per label; got {self.aimed_per_label}")
        if any(r <= 0 for r in self.ratios):
            raise ValueError(f"ratios: synthetic rows per real row, each > 0; got {self.ratios}")
        if self.primary_ratio not in self.ratios:
            raise ValueError(f"primary_ratio: {self.primary_ratio} is not among ratios {self.ratios}; add it there")
        need = math.floor(self.primary_ratio * max(self.real_per_label) + 0.5)  # as mix.rows_for rounds
        if self.synthetic_per_label < need:
            raise ValueError(f"synthetic_per_label: {self.synthetic_per_label} requested rows per label cannot give the "
                             f"primary blend {self.primary_ratio:g}x at k={max(self.real_per_label)}, which needs {need} kept "
                             f"rows per label; request about {math.ceil(need * 1.3)} (the checks remove some) or lower primary_ratio")
        if not 0 <= self.max_shortfall < 1:
            raise ValueError(f"max_shortfall: a share of the rows a ratio needs, in [0, 1); got {self.max_shortfall}")
        if self.generate_from not in ("each_k", "smallest_k"):
            raise ValueError(f"generate_from: {self.generate_from!r} is not known; choose each_k or smallest_k")


@dataclass
class Recipe:
    name: str
    seeds: Any  # the task's seeds_class (tasks/), built by recipe_from_dict
    task: Any  # the task's config_class
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    checks: list = field(default_factory=lambda: ["parsed", "exact_dedup"])
    # diversity figures (distinct-n, mean pairwise embedding distance, near-duplicate share) per label,
    # before and after the checks, in the report and the card; needs the [train] extra's encoder
    diversity: bool = True
    # realism figures (synth_datasets.realism: can a classifier tell the synthetic rows from the real
    # ones, overall and per label; the rows that look most synthetic) before and after the checks, in the
    # report and the card; needs the [train] extra
    realism: bool = True
    # prompt variants for `synth-datasets preview`: {name: {section: {field: value}}}, each merged over
    # the recipe's own sections (preview.with_variant); generate and compare use the recipe as it is
    variants: dict = field(default_factory=dict)
    output: OutputConfig = field(default_factory=OutputConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    base_dir: str = "."

    def __post_init__(self):
        if self.engine.model is not None:
            raise RecipeError("engine.model: name the model once, as generator.model")

    @property
    def task_class(self):
        return get_task(self.task.kind)

    def make_task(self):
        """The recipe's task (tasks/), configured by its `task:` and `seeds:` sections."""
        return self.task_class(config=self.task, seeds=self.seeds)

    @property
    def student(self) -> str:
        """The student `compare` trains: compare.student, else the task's default."""
        return self.compare.student or self.task_class.default_student

    def build_checks(self) -> list:
        """The check objects, in recipe order."""
        built = []
        for i, item in enumerate(self.checks):
            name, options = _check_entry(item, i)
            try:
                built.append(build_check(name, options))
            except (TypeError, ValueError) as e:
                raise RecipeError(f"checks[{i}]: {e}") from None
        return built

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p


def recipe_as_yaml(recipe) -> dict:
    """The recipe as a recipe file writes it: the engine's backend options flat in `engine:`, no base_dir."""
    data = dataclasses.asdict(recipe)
    data.pop("base_dir", None)
    engine = data["engine"]
    data["engine"] = {**{k: v for k, v in engine.items() if k not in ("options", "model")}, **engine["options"]}
    return data


def recipe_fingerprint(recipe: Recipe) -> str:
    """A digest of what decides the data a recipe makes and what `compare` measures on it: seeds,
    task, generator sampling and model, the engine settings that change outputs, checks, diversity,
    the compare section (its output folder left out) and the package version."""
    from datasets.fingerprint import Hasher

    from . import __version__

    compare = {k: v for k, v in dataclasses.asdict(recipe.compare).items() if k != "dir"}
    generator = {k: v for k, v in dataclasses.asdict(recipe.generator).items() if k not in ("batch_size", "shard_size")}
    data = [_data_digest(recipe.resolve(p)) for p in (recipe.seeds.path, recipe.compare.test_path) if p]
    seeds = {k: v for k, v in dataclasses.asdict(recipe.seeds).items() if k != "source_dataset"}  # a card field only
    return Hasher.hash([__version__, recipe.name, seeds, dataclasses.asdict(recipe.task),
                        generator, recipe.engine.cache_fields(), recipe.checks, recipe.diversity, compare, data])


def _data_digest(path: Path) -> str:
    """A digest of a data file's bytes (of every file under a folder): an edited seeds or test file
    makes another fingerprint. Files over 256 MiB count by size and modification time."""
    import hashlib

    digest = hashlib.sha1()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path] if path.is_file() else []
    for file in files:
        stat = file.stat()
        digest.update(f"{file.name}:{stat.st_size}".encode())
        digest.update(file.read_bytes() if stat.st_size <= 256 << 20 else str(stat.st_mtime_ns).encode())
    return digest.hexdigest()


def _check_generator_model(recipe: Recipe, model: str | None, field: str) -> None:
    """The backend's own check of a model name, where it has one (vLLM: a Hub id or an existing folder)."""
    from .engine import BACKENDS

    backend = BACKENDS.lookup(recipe.engine.backend, "engine.backend")
    if hasattr(backend, "check_model"):
        backend.check_model(model, field)


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a YAML recipe."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise RecipeError(f"{path}: not valid YAML: {e}") from None
    recipe = recipe_from_dict(data, base_dir=str(path.parent))
    check_recipe(recipe)
    return recipe


def check_recipe(recipe: Recipe) -> None:
    """What can be found wrong before any data is read or an engine starts, beyond each field's own
    validation: the checks' options, what they need (the evaluation split, labels, an installed
    extra), the models named (a folder that does not exist), the student kind `compare` would train."""
    from .checks import missing_requirements
    from .compare import make_student
    from .models import check_model

    task_class = recipe.task_class
    task = recipe.make_task()
    if recipe.engine.replicas != 1 and not recipe.output.run_dir:
        raise RecipeError("engine.replicas: replicas each take shards of a resumable run; set output.run_dir too")
    if recipe.engine.executor == "ray" and not recipe.output.run_dir:
        raise RecipeError("engine.executor: ray writes each shard into the run folder as it comes back; set output.run_dir too")
    for i, check in enumerate(recipe.build_checks()):  # fail now, not after generation
        where = f"checks[{i}] ({check.name})"
        try:
            check.check_task(task)
        except ValueError as e:
            raise RecipeError(f"{where}: {e}") from None
        if "test_texts" in check.needs and not recipe.compare.test_path:
            raise RecipeError(f"{where}: needs the evaluation split; set compare.test_path to it")
        if {"real_labels", "labels"} & set(check.needs) and task_class.label_column is None:
            raise RecipeError(f"{where}: needs labels, and the task {task_class.name!r} has none; remove it")
        missing = missing_requirements(check)
        if missing:
            raise RecipeError(f"{where}: needs {', '.join(missing)}, which is not installed: "
                              "pip install 'synth-datasets[train]' (or remove the check)")
        if getattr(check, "model", None):
            _check_generator_model(recipe, check.model, f"{where}.model")
    _check_generator_model(recipe, recipe.generator.model, "generator.model")
    if recipe.compare.lm_model and recipe.student == "lm":
        check_model(recipe.compare.lm_model, "compare.lm_model")
    make_student(recipe, task, check_installed=False)  # its extra: checked when compare runs


def recipe_from_dict(data, base_dir: str = ".") -> Recipe:
    if not isinstance(data, dict):
        raise RecipeError(f"a recipe is a YAML mapping of sections, got {type(data).__name__}")
    if "base_dir" in data:
        raise RecipeError("base_dir: unknown field; relative paths start at the recipe file's folder")
    data = dict(data)
    task_data = data.get("task") or {}
    if not isinstance(task_data, dict):
        raise RecipeError(f"task: expected a mapping of fields, got {task_data!r}")
    try:
        task_class = get_task(str(task_data.get("kind", "classification")))
    except ValueError as e:
        raise RecipeError(str(e)) from None
    if "seeds" not in data:
        raise RecipeError(f"seeds: required field is missing. {_help(task_class.seeds_class, 'path')}".strip())
    data["seeds"] = build_config(task_class.seeds_class, data["seeds"], "seeds")
    if "engine" in data:
        data["engine"] = EngineConfig.from_dict(data["engine"] if data["engine"] is not None else {})
    data["task"] = build_config(task_class.config_class, {"kind": task_class.name, **task_data}, "task")
    recipe = build_config(Recipe, {**data, "base_dir": base_dir}, "")
    recipe.make_task().validate(recipe)
    if recipe.variants:
        if not isinstance(recipe.variants, dict):
            raise RecipeError(f"variants: expected a mapping of names to section overrides, got {recipe.variants!r}")
        from .preview import with_variant

        for name in recipe.variants:  # a bad variant is named when the recipe loads, not halfway through a preview
            with_variant(recipe, name)
    return recipe


def _help(cls, name: str) -> str:
    return next((f.metadata.get("help", "") for f in dataclasses.fields(cls) if f.name == name), "")


def describe_fields(kind: str = "classification") -> str:
    """Every recipe section and field with its default and help, for `synth-datasets generate --help`
    (the seeds and task sections of the task `kind`)."""
    from .checks import CHECKS
    from .tasks import TASKS

    task_class = get_task(kind)
    sections = [("seeds", task_class.seeds_class), ("task", task_class.config_class), ("generator", GeneratorConfig),
                ("engine", EngineConfig), ("engine", options_class("vllm")), ("output", OutputConfig), ("compare", CompareConfig)]
    lines = [f"recipe fields (section.field = default: help; seeds and task of kind {kind!r}, task kinds: "
             f"{', '.join(sorted(TASKS))}):", "  name: the dataset's name (required)"]
    for section, cls in sections:
        for f in dataclasses.fields(cls):
            if cls is EngineConfig and f.name in ("model", "options"):
                continue  # a recipe names the model once, as generator.model; options are engine.<field>
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                default = "(required)"
            else:
                default = repr(f.default if f.default is not dataclasses.MISSING else f.default_factory())
            lines.append(f"  {section}.{f.name} = {default}: {f.metadata.get('help', '')}".rstrip(": "))
    lines.append(f"  checks: a list of names or {{name: {{option: value}}}}; names: {', '.join(sorted(CHECKS))}")
    lines.append("  diversity = True: per-label diversity figures before and after the checks, in the report and card")
    lines.append("  realism = True: can a classifier tell synthetic from real rows (ROC AUC, per label), in the report and card")
    lines.append("  variants: {name: {section: {field: value}}}: prompt variants that `synth-datasets preview` compares")
    return "\n".join(lines)


def _check_entry(item, i: int) -> tuple[str, dict]:
    if isinstance(item, str):
        return item, {}
    if isinstance(item, dict) and len(item) == 1:
        name, options = next(iter(item.items()))
        if options is None or isinstance(options, dict):
            return name, options or {}
    raise RecipeError(f"checks[{i}]: expected a check name or {{name: {{option: value}}}}, got {item!r}")
