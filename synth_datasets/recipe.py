"""YAML recipe -> dataclasses. A bad field gets an error that names it, what came, and the fix.

A recipe (see recipes/banking77.yaml):

    name: banking77-demo
    seeds:     {path: ..., text_column: text, label_column: category, per_label: 6, rare: {label: 2}}
    task:      {kind: classification, balance_to: 20, shots: 3}
    generator: {model: null, temperature: 0.9, top_p: 0.95, max_tokens: 96}
    engine:    {dtype: auto, seed: 0}
    checks:    [parsed, {length: {min_chars: 10}}, exact_dedup]
    output:    {dir: outputs/banking77-demo}

Relative paths are resolved against the recipe file's folder.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .checks import build_check
from .engine import BACKENDS, EngineConfig, SamplingConfig


class RecipeError(ValueError):
    """A recipe field is missing, unknown or of the wrong kind; the message says how to fix it."""


@dataclass
class SeedsConfig:
    path: str = field(metadata={"help": "CSV/JSON/Parquet file (or a folder load_dataset reads) of real rows."})
    text_column: str = "text"
    label_column: str = "label"
    labels: list[str] | None = field(default=None, metadata={"help": "Labels to use; default: all."})
    per_label: int | None = field(default=None, metadata={"help": "Real rows drawn per label as seeds; default: all rows."})
    rare: dict[str, int] = field(default_factory=dict, metadata={"help": "label -> rows drawn, to make classes rare."})
    split: str = "train"
    seed: int = 0
    license: str | None = field(default=None, metadata={"help": "License/attribution of the real data, for the card."})

    def __post_init__(self):
        if self.per_label is not None and self.per_label < 1:
            raise RecipeError(f"seeds.per_label must be >= 1, got {self.per_label}")
        bad = {k: v for k, v in self.rare.items() if v < 0}
        if bad:
            raise RecipeError(f"seeds.rare: row counts must be >= 0, got {bad}")


@dataclass
class TaskConfig:
    kind: str = "classification"
    per_label: int | None = field(default=None, metadata={"help": "Generate this many rows per label."})
    balance_to: int | None = field(default=None, metadata={"help": "Generate each label's deficit up to this count."})
    shots: int = 3
    max_chars: int | None = field(default=None, metadata={"help": "Cap on the generated text's length, enforced by the JSON grammar."})
    prompt_template: str | None = None
    system_prompt: str | None = None

    def __post_init__(self):
        if self.kind != "classification":
            raise RecipeError(f"task.kind: {self.kind!r} is not supported yet; use 'classification'")
        if (self.per_label is None) == (self.balance_to is None):
            raise RecipeError("task: set exactly one of per_label (rows per label) or balance_to (fill each label up to N)")
        for name in ("per_label", "balance_to", "max_chars"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise RecipeError(f"task.{name} must be >= 1, got {value}")
        if self.shots < 0:
            raise RecipeError(f"task.shots must be >= 0, got {self.shots}")


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
    generate_from: str = field(default="each_k", metadata={"help": "each_k: generate for every (draw, k) from those k rows; smallest_k: generate once per draw from its smallest-k rows, which every larger k of the draw contains (len(k) times less generation, but the generator sees fewer examples)."})
    ratios: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0], metadata={"help": "Synthetic rows per real row in the blended and two-stage arms (all kept rows are tried too)."})
    max_shortfall: float = field(default=0.05, metadata={"help": "A ratio arm still runs when the checks left some labels short of ratio x k rows, if the rows missing are at most this share of those needed (those labels give what they have)."})
    primary_ratio: float = field(default=1.0, metadata={"help": "The blend the verdict is stated for, fixed before looking at results."})
    student: str = field(default="classifier", metadata={"help": "classifier (frozen encoder + logistic regression) or lm (TRL SFT + LoRA)."})
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
        if self.student not in ("classifier", "lm"):
            raise ValueError(f"student: {self.student!r} is not known; choose classifier or lm")


@dataclass
class Recipe:
    name: str
    seeds: SeedsConfig
    task: TaskConfig = field(default_factory=TaskConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    checks: list = field(default_factory=lambda: ["parsed", "exact_dedup"])
    # diversity figures (distinct-n, mean pairwise embedding distance, near-duplicate share) per label,
    # before and after the checks, in the report and the card; needs the [train] extra's encoder
    diversity: bool = True
    output: OutputConfig = field(default_factory=OutputConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    base_dir: str = "."

    def __post_init__(self):
        if self.engine.model is not None:
            raise RecipeError("engine.model: name the model once, as generator.model")
        if self.engine.backend not in BACKENDS:
            raise RecipeError(f"engine.backend: {self.engine.backend!r} is not known; choose one of {sorted(BACKENDS)}")

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
    recipe.build_checks()  # fail now, not after generation
    return recipe


def recipe_from_dict(data, base_dir: str = ".") -> Recipe:
    if not isinstance(data, dict):
        raise RecipeError(f"a recipe is a YAML mapping of sections, got {type(data).__name__}")
    if "base_dir" in data:
        raise RecipeError("base_dir: unknown field; relative paths start at the recipe file's folder")
    return _build(Recipe, {**data, "base_dir": base_dir}, "")


def _build(cls, data, where: str):
    if not isinstance(data, dict):
        raise RecipeError(f"{where or 'recipe'}: expected a mapping of fields, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            fix = f"did you mean {close[0]!r}?" if close else f"allowed fields: {', '.join(names)}"
            raise RecipeError(f"{_at(where, key)}: unknown field; {fix}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name], _at(where, f.name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            help_ = f.metadata.get("help", "")
            raise RecipeError(f"{_at(where, f.name)}: required field is missing. {help_}".strip())
    try:
        return cls(**kwargs)
    except RecipeError:
        raise
    except (TypeError, ValueError) as e:
        raise RecipeError(f"{where}.{e}" if where else f"recipe: {e}") from None


def _convert(hint, value, where: str):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value if value is not None else {}, where)
    expected = origin or hint
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected in _KINDS and not _is(value, expected):
        raise RecipeError(f"{where}: expected {_KINDS[expected]}, got {value!r}")
    if expected is list and args:
        return [_convert(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
    if expected is dict and args:
        return {_convert(args[0], k, f"{where} key"): _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    return value


_KINDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list", dict: "a mapping"}


def _is(value, expected) -> bool:
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _at(where: str, key) -> str:
    return f"{where}.{key}" if where else str(key)


def describe_fields() -> str:
    """Every recipe section and field with its default and help, for `synth-datasets generate --help`."""
    from .checks import CHECKS

    lines = ["recipe fields (section.field = default: help):", "  name: the dataset's name (required)"]
    for section in ("seeds", "task", "generator", "engine", "output", "compare"):
        cls = typing.get_type_hints(Recipe)[section]
        for f in dataclasses.fields(cls):
            if cls is EngineConfig and f.name == "model":
                continue  # a recipe names the model once, as generator.model
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                default = "(required)"
            else:
                default = repr(f.default if f.default is not dataclasses.MISSING else f.default_factory())
            lines.append(f"  {section}.{f.name} = {default}: {f.metadata.get('help', '')}".rstrip(": "))
    lines.append(f"  checks: a list of names or {{name: {{option: value}}}}; names: {', '.join(sorted(CHECKS))}")
    lines.append("  diversity = True: per-label diversity figures before and after the checks, in the report and card")
    return "\n".join(lines)


def _check_entry(item, i: int) -> tuple[str, dict]:
    if isinstance(item, str):
        return item, {}
    if isinstance(item, dict) and len(item) == 1:
        name, options = next(iter(item.items()))
        if options is None or isinstance(options, dict):
            return name, options or {}
    raise RecipeError(f"checks[{i}]: expected a check name or {{name: {{option: value}}}}, got {item!r}")
