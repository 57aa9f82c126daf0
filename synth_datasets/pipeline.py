"""A recipe run end to end: seeds -> prompts -> generate -> checks -> local Hub-layout folder.

Each step is one of the package's plain functions over `Dataset`; this module only wires them in
order from a `Recipe` and collects the provenance record that the dataset card is written from.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import datasets
from datasets import Dataset, DatasetDict, load_dataset, load_from_disk
from datasets.fingerprint import Hasher

from . import __version__
from .card import parse_error_counts, save_hub_layout
from .checks import CheckContext, CheckReport, run_checks
from .generate import ENGINE_STATS, Generate, generate
from .recipe import Recipe, RecipeError
from .shards import generate_resumable
from .tasks import classification

logger = logging.getLogger(__name__)

_LOADERS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def load_seeds(recipe: Recipe) -> tuple[Dataset, list[str]]:
    """The real rows the recipe names, drawn per label (and made rare where asked), and the labels."""
    cfg = recipe.seeds
    ds = load_real(recipe, cfg.path, cfg.split, "seeds.path")
    labels = cfg.labels or sorted(set(classification.label_names(ds, cfg.label_column)))
    return draw_seeds(ds, cfg.label_column, cfg.per_label, cfg.rare, cfg.seed, labels), labels


def load_real(recipe: Recipe, path_str: str, split: str, field_name: str) -> Dataset:
    """Real rows from a file or folder the recipe names (`field_name` goes into errors)."""
    cfg = recipe.seeds
    path = recipe.resolve(path_str)
    if not path.exists():
        raise RecipeError(f"{field_name}: {str(path)!r} does not exist (relative paths start at the recipe's folder)")
    if path.is_dir():
        ds = load_dataset(str(path), split=split)
    elif path.suffix in _LOADERS:
        ds = load_dataset(_LOADERS[path.suffix], data_files=str(path), split="train")
    else:
        raise RecipeError(f"{field_name}: cannot read {path.suffix!r} files; use one of {sorted(_LOADERS)} or a folder")
    for column in (cfg.text_column, cfg.label_column):
        if column not in ds.column_names:
            raise RecipeError(f"{field_name}: the data has no column {column!r} (it has {ds.column_names}); set seeds.text_column / seeds.label_column")
    return ds


def draw_seeds(ds: Dataset, label_column: str, per_label: int | None, rare: dict[str, int],
               seed: int, labels: list[str] | None = None) -> Dataset:
    """Up to `per_label` random rows of each label (`rare[label]` rows for rare ones), in label order."""
    names = classification.label_names(ds, label_column)
    wanted = list(labels) if labels else sorted(set(names))
    missing = set(wanted) - set(names)
    if missing:
        raise RecipeError(f"seeds.labels: not in the data: {sorted(missing)}")
    unknown_rare = set(rare) - set(wanted)
    if unknown_rare:
        raise RecipeError(f"seeds.rare: labels not among the chosen labels: {sorted(unknown_rare)}")
    by_label: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        by_label.setdefault(name, []).append(i)
    rng = random.Random(seed)
    chosen = []
    for label in wanted:
        rows = by_label[label][:]
        rng.shuffle(rows)
        k = rare.get(label, per_label if per_label is not None else len(rows))
        chosen.extend(sorted(rows[:k]))
    return ds.select(chosen)


def run_recipe(recipe: Recipe, output_dir: str | None = None, overwrite_run: bool = False) -> tuple[Path, CheckReport]:
    """Run the whole recipe; return the output folder and the check report.

    With `output.run_dir` set, generation is resumable there (see shards.py); `overwrite_run`
    lets it replace the shards of a run made with another configuration.
    """
    seeds, labels = load_seeds(recipe)
    cfg, task = recipe.seeds, recipe.task
    extra = {k: v for k, v in (("template", task.prompt_template), ("system_prompt", task.system_prompt)) if v}
    prompts = classification.classification_prompts(
        seeds, labels, per_label=task.per_label, balance_to=task.balance_to,
        text_column=cfg.text_column, label_column=cfg.label_column, shots=task.shots, seed=cfg.seed, **extra,
    )
    logger.info("%d seed rows, %d labels -> %d requests", len(seeds), len(labels), len(prompts))
    if len(prompts) == 0:
        raise RecipeError(f"task.balance_to: nothing to generate, every label already has >= {task.balance_to} rows; raise it")
    prompts = file_backed(prompts)
    gen = Generate(
        model=recipe.generator.model, sampling=recipe.generator.sampling(), engine=recipe.engine,
        json_schema=classification.json_schema(labels, task.max_chars), parser="classification",
    )
    start, before = time.perf_counter(), replace(ENGINE_STATS)
    if recipe.output.run_dir:
        synthetic = generate_resumable(prompts, gen, recipe.resolve(recipe.output.run_dir),
                                       shard_size=recipe.generator.shard_size, overwrite=overwrite_run)
    else:
        synthetic = generate(prompts, gen, batch_size=recipe.generator.batch_size)
    seconds = time.perf_counter() - start
    kept, report = run_checks(synthetic, recipe.build_checks(), context=check_context(recipe, seeds, labels),
                              diversity=want_diversity(recipe))
    extra["engine_work"] = ENGINE_STATS.since(before)
    provenance = build_provenance(recipe, seeds, labels, prompts, synthetic, kept, report, gen, seconds, extra)
    folder = save_hub_layout(DatasetDict(train=kept), output_dir or recipe.resolve(recipe.output.dir), provenance)
    return folder, report


def check_context(recipe: Recipe, real: Dataset, labels: list[str], text_column: str | None = None,
                  label_column: str | None = None) -> CheckContext:
    """What the recipe's checks compare against: `real` (the rows shown to the generator), the label
    set, and the evaluation split (`compare.test_path`) when the checks need it."""
    text_column = text_column or recipe.seeds.text_column
    label_column = label_column or recipe.seeds.label_column
    test_texts = None
    if any("test_texts" in check.needs for check in recipe.build_checks()):
        if not recipe.compare.test_path:
            raise RecipeError("checks: decontaminate needs the evaluation split; set compare.test_path to it")
        test = load_real(recipe, recipe.compare.test_path, recipe.compare.test_split, "compare.test_path")
        test_texts = list(test[recipe.seeds.text_column])
    return CheckContext(real_texts=list(real[text_column]), real_labels=classification.label_names(real, label_column),
                        test_texts=test_texts, labels=list(labels), extra=check_extras(recipe, labels))


def want_diversity(recipe: Recipe) -> bool:
    """recipe.diversity, unless the encoder it needs is not installed (then a warning says so)."""
    from .checks.semantic import encoder_available

    if recipe.diversity and not encoder_available():
        logger.warning("diversity: figures skipped, sentence-transformers is not installed; "
                       "pip install 'synth-datasets[train]', or set diversity: false in the recipe")
        return False
    return recipe.diversity


def check_extras(recipe: Recipe, labels: list[str]) -> dict:
    """The task's JSON schema (schema check) and the generation engine (judge check)."""
    return {"schema": classification.json_schema(labels, recipe.task.max_chars),
            "generator": (recipe.engine, recipe.generator.model)}


def file_backed(prompts: Dataset) -> Dataset:
    """The prompts saved once under the datasets cache, keyed by their row ids, and loaded back.

    `datasets` caches `map` results only for file-backed datasets, and an in-memory dataset gets a
    random fingerprint; saving the prompts under a name derived from their content gives a rerun
    of the same recipe the same input fingerprint, so generation is served from the cache.
    """
    key = Hasher.hash(list(prompts["row_id"]))  # the ids themselves, not the dataset behind the column
    folder = Path(datasets.config.HF_DATASETS_CACHE) / "synth_datasets" / f"prompts-{key}"
    if not (folder / "state.json").exists():
        prompts.save_to_disk(str(folder))
    return load_from_disk(str(folder))


def build_provenance(recipe, seeds, labels, prompts, synthetic, kept, report, gen, seconds, extra) -> dict:
    """Everything the card states, as plain data (saved as provenance.json beside the data)."""
    seed_counts = Counter(classification.label_names(seeds, recipe.seeds.label_column))
    requested, kept_counts = Counter(prompts["label"]), Counter(kept["label"])
    completion_tokens = sum(synthetic["completion_tokens"])
    return {
        "name": recipe.name,
        "task": recipe.task.kind,
        "license": recipe.output.license,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "synth_datasets_version": __version__,
        "generator": gen.describe(),
        "prompt": {
            "system": extra.get("system_prompt", classification.SYSTEM_PROMPT),
            "template": extra.get("template", classification.PROMPT_TEMPLATE),
            "shots": recipe.task.shots,
        },
        "seeds": {
            "source": recipe.seeds.path, "count": len(seeds), "license": recipe.seeds.license,
            "per_label": recipe.seeds.per_label, "rare": recipe.seeds.rare, "seed": recipe.seeds.seed,
            "balance_to": recipe.task.balance_to, "per_label_generated": recipe.task.per_label,
        },
        "labels": [
            {"label": label, "seeds": seed_counts[label], "requested": requested[label], "kept": kept_counts[label]}
            for label in labels
        ],
        "requests": len(prompts),
        "rows": {"generated": len(synthetic), "kept": len(kept)},
        "tokens": {"prompt": sum(synthetic["prompt_tokens"]), "completion": completion_tokens},
        "generation_seconds": round(seconds, 2),
        # what the engine itself did in this invocation (0 requests when every row came from a cache)
        "engine_work": extra.get("engine_work"),
        "parse_errors": parse_error_counts(synthetic["parse_error"]),
        "checks": report.as_dict(),
    }
