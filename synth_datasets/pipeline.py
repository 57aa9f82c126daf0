"""A recipe run end to end: seeds -> prompts -> generate -> checks -> local Hub-layout folder.

Each step is one of the package's plain functions over `Dataset`; this module only wires them in
order from a `Recipe` and collects the provenance record that the dataset card is written from.
"""

from __future__ import annotations

import json
import logging
import time
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
from .generate import Generate, generate
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
    """The requests for `seeds` and the `Generate` transform, from the recipe: the one place both are
    built (`generate` and every draw of `compare` use it). `per_label` overrides the task's amount."""
    prompt_tokens = recipe.engine.max_model_len - recipe.generator.max_tokens
    prompts = task.prompts(seeds, seed=seed, per_label=per_label, prompt_tokens=prompt_tokens)
    gen = Generate(model=recipe.generator.model, sampling=recipe.generator.sampling(), engine=recipe.engine,
                   json_schema=task.json_schema(), parser=task.parser or task.name)
    return prompts, gen


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
    prompts, gen = build_generation(recipe, task, seeds, recipe.seeds.seed)
    logger.info("%d seed rows -> %d requests", len(seeds), len(prompts))
    if len(prompts) == 0:
        raise RecipeError("task: nothing to generate: the task asked for no rows from these seeds "
                          "(with balance_to, every label already has that many rows: raise it)")
    prompts = file_backed(prompts)
    start = time.perf_counter()
    if recipe.output.run_dir:
        synthetic = generate_resumable(prompts, gen, recipe.resolve(recipe.output.run_dir),
                                       shard_size=recipe.generator.shard_size, overwrite=overwrite_run)
    else:
        synthetic = generate(prompts, gen, batch_size=recipe.generator.batch_size)
    seconds = time.perf_counter() - start
    kept, report = run_checks(synthetic, recipe.build_checks(), context=check_context(recipe, task, seeds),
                              diversity=want_diversity(recipe), text_column=task.text_column,
                              label_column=task.label_column)
    engine_work = gen.stats.as_dict()  # generation only: the judge's work is in its check's report
    provenance = build_provenance(recipe, task, seeds, prompts, synthetic, kept, report, gen, seconds, engine_work, dropped)
    kept_contribution(folder, provenance)
    folder = save_hub_layout(DatasetDict(train=kept), folder, provenance, template=task.card_template)
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


def build_provenance(recipe, task, seeds, prompts, synthetic, kept, report, gen, seconds, engine_work, dropped) -> dict:
    """Everything the card states, as plain data (saved as provenance.json beside the data)."""
    own = task.provenance(seeds, prompts, kept)
    return {
        "name": recipe.name,
        "task": recipe.task.kind,
        "recipe_fingerprint": recipe_fingerprint(recipe),
        "license": recipe.output.license,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "synth_datasets_version": __version__,
        "generator": gen.describe(),
        "prompt": own.get("prompt", {}),
        "seeds": {"source": recipe.seeds.path, "count": len(seeds), "license": recipe.seeds.license,
                  "seed": recipe.seeds.seed, "dropped": dropped, **own.get("seeds", {})},
        **{k: v for k, v in own.items() if k not in ("prompt", "seeds")},
        "requests": len(prompts),
        "rows": {"generated": len(synthetic), "kept": len(kept)},
        "tokens": {"prompt": sum(synthetic["prompt_tokens"]), "completion": sum(synthetic["completion_tokens"])},
        "generation_seconds": round(seconds, 2),
        # what the engine itself did in this invocation (0 requests when every row came from a cache)
        "engine_work": engine_work,
        "parse_errors": parse_error_counts(synthetic["parse_error"]),
        "checks": report.as_dict(),
    }
