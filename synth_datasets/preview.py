"""A quick look before a long run: a few generated rows per label, with every check's verdict, and
prompt variants side by side on cheap proxies.

    synth-datasets preview recipes/banking77.yaml                 # 3 rows for each of 8 labels
    synth-datasets preview recipes/banking77.yaml --rows 5 --labels card_arrival,exchange_rate
    synth-datasets preview recipes/banking77.yaml --student      # and each variant's compare verdict

A recipe may name prompt variants, each a set of overrides of its sections:

    variants:
      terse:
        task: {prompt_template: "Write one short message ... {{ label_name }} ..."}
      hotter:
        generator: {temperature: 1.1}

Every variant runs on the same labels, seeds and request seeds as the recipe itself, so the
differences are the variant's. The rows are generated like `generate` generates them (the same
prompts, engine and cache), then each check annotates every row, without the filtering in between
that `generate` does, so a row shows every check that would remove it.

The proxies, per variant:

    kept per request      rows that pass every check / requests
    label check           share of the parsed rows whose requested label is the top prediction of
                          a classifier fitted on the seeds (the label_agreement check's rule)
    realism AUC           synth_datasets.realism.two_sample of the kept rows against the seeds
                          (0.5: indistinguishable)
    mean distance         semantic spread of the kept rows (diversity's mean pairwise distance)
    distinct-2            lexical variety of the kept rows

They are cheap, noisy (a few dozen rows) and not the student: `--student` runs `compare` for each
variant, which is what decides.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field

from datasets import Dataset

from .errors import RecipeError
from .recipe import Recipe, recipe_as_yaml, recipe_from_dict

logger = logging.getLogger(__name__)

DEFAULT_LABELS = 8
DEFAULT_ROWS = 3


def with_variant(recipe: Recipe, name: str) -> Recipe:
    """The recipe with variant `name`'s overrides merged into its sections (a field absent from the
    variant keeps the recipe's value)."""
    if name not in recipe.variants:
        raise RecipeError(f"variants: no variant {name!r}; the recipe names {sorted(recipe.variants) or 'none'}")
    data = recipe_as_yaml(recipe)
    data.pop("variants", None)
    overrides = recipe.variants[name]
    if not isinstance(overrides, dict):
        raise RecipeError(f"variants.{name}: expected a mapping of sections to override, got {overrides!r}")
    for section, values in overrides.items():
        if section in ("name", "variants"):
            raise RecipeError(f"variants.{name}.{section}: a variant cannot change the recipe's {section}")
        if isinstance(values, dict) and isinstance(data.get(section), dict):
            data[section] = {**data[section], **copy.deepcopy(values)}
        else:
            data[section] = copy.deepcopy(values)
    try:
        return recipe_from_dict(data, base_dir=recipe.base_dir)
    except RecipeError as e:
        raise RecipeError(f"variants.{name}: {e}") from None


@dataclass
class Preview:
    """One variant's rows (every check's flag columns on them, `removed_by` naming the checks that
    flag each row) and its proxies."""

    name: str
    rows: Dataset
    proxies: dict
    labels: list | None
    seconds: float
    text_column: str = "text"
    label_column: str | None = "label"
    notes: list[str] = field(default_factory=list)


def preview(recipe: Recipe, labels: list[str] | None = None, rows: int = DEFAULT_ROWS, max_labels: int = DEFAULT_LABELS,
            name: str = "recipe") -> Preview:
    """Generate `rows` rows for each of `labels` (default: the first `max_labels` of the recipe's,
    spread over the label list) from the recipe's seeds; annotate them with every check; measure
    the proxies. For a task without labels, `rows` rows in all."""
    from .checks.semantic import encoder_available
    from .pipeline import Runner, check_context, load_seeds

    started = time.perf_counter()
    task, seeds, _ = load_seeds(recipe)
    chosen = None
    if task.label_column is not None:
        chosen = pick_labels(task.labels, labels, max_labels)
        task = type(task)(task.config, task.seeds, chosen)
        seeds = task.restrict(seeds)
    runner = Runner(recipe)
    generated = task.synthesize(seeds, runner, seed=recipe.seeds.seed, per_label=rows)
    context = check_context(recipe, task, seeds)
    annotated, flags = annotate_all(generated, recipe.build_checks(), context)
    removed_by = [[name for name, column in flags if row[column]] for row in annotated.select_columns([c for _, c in flags]).to_list()] \
        if flags else [[] for _ in range(len(annotated))]
    annotated = annotated.add_column("removed_by", removed_by)
    out = Preview(name, annotated, {}, chosen, 0.0, task.text_column, task.label_column)
    out.proxies = proxies(annotated, seeds, task, runner.requests, encoder_available())
    out.seconds = round(time.perf_counter() - started, 1)
    return out


def pick_labels(all_labels: list[str], wanted: list[str] | None, max_labels: int) -> list[str]:
    """`wanted` (checked against the recipe's labels), else `max_labels` labels spread evenly over
    the list (so a sorted label set is not previewed on its first letters only).

    >>> pick_labels(list("abcdefghij"), None, 3)
    ['a', 'd', 'g']
    """
    if wanted:
        unknown = [label for label in wanted if label not in all_labels]
        if unknown:
            raise RecipeError(f"preview --labels: {unknown} are not among the recipe's labels ({len(all_labels)}, "
                              f"e.g. {all_labels[:3]})")
        return list(dict.fromkeys(wanted))
    if len(all_labels) <= max_labels:
        return list(all_labels)
    step = len(all_labels) / max_labels
    return [all_labels[int(i * step)] for i in range(max_labels)]


def annotate_all(ds: Dataset, checks, context) -> tuple[Dataset, list[tuple[str, str]]]:
    """Every check's columns on every row (no filtering in between); [(check name, flag column)]."""
    flags = []
    if len(ds) == 0:
        return ds, flags
    for check in checks:
        bound = check.bind(context)
        ds = bound.annotate(ds)
        flags.append((bound.name, bound.flag_column))
    return ds, flags


def proxies(rows: Dataset, seeds: Dataset, task, requests: int, encoder: bool = True) -> dict:
    """The cheap figures (module docstring) of annotated preview rows."""
    kept = rows.filter(lambda r: not r, input_columns="removed_by") if len(rows) else rows
    out = {"requests": requests, "rows": len(rows), "kept": len(kept),
           "kept_per_request": round(len(kept) / requests, 3) if requests else None,
           "label_check": None, "realism_auc": None, "mean_distance": None, "distinct_2": None}
    if not encoder or len(rows) == 0:
        return out
    text, label = task.text_column, task.label_column
    parsed = rows.filter(lambda e: e is None, input_columns="parse_error") if "parse_error" in rows.column_names else rows
    if label is not None and len(parsed):
        from .students.classifier import ClassifierConfig, train_classifier

        reader = train_classifier(seeds[text], [str(x) for x in seeds[label]], ClassifierConfig(), label_names=list(task.labels))
        read = reader.predict([t or "" for t in parsed[text]])
        out["label_check"] = round(sum(p == str(x) for p, x in zip(read, parsed[label])) / len(parsed), 3)
    if len(kept):
        from .checks.semantic import diversity
        from .realism import two_sample

        figures = diversity(kept[text])["overall"]
        out["mean_distance"], out["distinct_2"] = figures["mean_pairwise_distance"], figures["distinct_2"]
        real = two_sample(seeds[text], kept[text])
        out["realism_auc"] = real["auc"]
        if real["auc"] is None:
            out["realism_note"] = real["reason"]
    return out


def format_rows(p: Preview, width: int = 110) -> str:
    """Each label's rows, kept or with the checks that would remove them."""
    lines = [f"== {p.name}: {p.proxies['rows']} rows from {p.proxies['requests']} requests, {p.proxies['kept']} kept ({p.seconds:.0f} s) =="]
    groups = p.labels if p.labels is not None else [None]
    for group in groups:
        if group is not None:
            lines.append(group)
        for row in p.rows:
            if group is not None and str(row[p.label_column]) != group:
                continue
            text = row.get(p.text_column)
            shown = repr(text) if text is not None else f"(no text: {row.get('parse_error')})"
            verdict = "kept" if not row["removed_by"] else "removed by " + ", ".join(row["removed_by"])
            extra = ""
            if "label_agreement_pred" in row and row.get("label_agreement_flag"):
                extra = f" [read as {row['label_agreement_pred']}]"
            lines.append(f"  {verdict}{extra}: {shown[:width]}")
    return "\n".join(lines)


PROXY_COLUMNS = (("kept_per_request", "kept/request"), ("label_check", "label check"), ("realism_auc", "realism AUC"),
                 ("mean_distance", "mean distance"), ("distinct_2", "distinct-2"))


def format_table(previews: list[Preview], student: dict | None = None) -> str:
    """The variants side by side on the proxies (and the student's Δ per k, with `student`)."""
    heads = ["variant", "rows"] + [title for _, title in PROXY_COLUMNS]
    ks = sorted({k for deltas in (student or {}).values() for k in deltas})
    heads += [f"student Δ k={k}" for k in ks]
    body = []
    for p in previews:
        cells = [p.name, f"{p.proxies['kept']}/{p.proxies['rows']}"]
        cells += ["-" if p.proxies.get(key) is None else f"{p.proxies[key]:.2f}" for key, _ in PROXY_COLUMNS]
        cells += [(student or {}).get(p.name, {}).get(k, "-") for k in ks]
        body.append(cells)
    widths = [max(len(str(row[i])) for row in [heads] + body) for i in range(len(heads))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in [heads] + body)


def student_deltas(recipe: Recipe, draws: int | None = None) -> dict[int, str]:
    """`compare` for the recipe (its compare section; `draws` overrides the number of draws): the
    primary blend's Δ over real-only per k, as "+1.2 ± 0.8" (student_cells)."""
    from dataclasses import replace

    from .compare import run_compare

    if draws is not None:
        recipe = replace(recipe, compare=replace(recipe.compare, draws=draws))
    result = run_compare(recipe, progress=True, echo=None)
    return student_cells(result.summary, [v["k"] for v in result.verdicts], recipe.compare.primary_ratio)


def student_cells(summary: list[dict], ks: list[int], primary_ratio: float) -> dict[int, str]:
    """Per k, the primary blend's Δ over real-only; where the checks left too few rows for it, the
    blend of every kept row, marked so; "not run" when neither ran.

    >>> rows = [{"k": 5, "arm": "blended", "ratio": 1.0, "delta": 0.012, "delta_sd": 0.005},
    ...         {"k": 10, "arm": "blended", "ratio": None, "delta": -0.004, "delta_sd": 0.0}]
    >>> student_cells(rows, [5, 10, 20], 1.0)
    {5: '+1.2 ± 0.5', 10: '-0.4 ± 0.0 (all kept)', 20: 'not run'}
    """
    def find(k, ratio):
        return next((r for r in summary if r["k"] == k and r["arm"] == "blended" and r["ratio"] == ratio), None)

    out = {}
    for k in ks:
        row, note = find(k, primary_ratio), ""
        if row is None:
            row, note = find(k, None), " (all kept)"
        out[k] = "not run" if row is None or row.get("delta") is None else \
            f"{100 * row['delta']:+.1f} ± {100 * (row.get('delta_sd') or 0):.1f}{note}"
    return out
