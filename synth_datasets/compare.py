"""Did the synthetic data help? Real-only vs synthetic-only vs blended vs two-stage students.

    synth-datasets compare recipes/banking77-compare.yaml

For each draw d (seed = seeds.seed + d) and each k in `compare.real_per_label`:

1. k real rows per label are drawn from `seeds.path` (nested: the k=5 rows are the first five of
   the k=10 rows of the same draw);
2. synthetic rows are generated **from those k rows only** (the recipe's prompts, generator and
   checks; `compare.synthetic_per_label` requests per label), so no other draw's real rows, and never
   the test split, reach a prompt; generation is cached, so a rerun costs only the training. With
   `compare.generate_from: smallest_k` each draw generates once, from its smallest-k rows, and every
   k of the draw uses those synthetic rows: still no real row outside the student's own training
   rows reaches a prompt (the draws are nested), for len(k) times less generation. The checks
   still run once per k, against that k's real rows (a label check fitted on 20 real rows per
   label judges better than one fitted on 5), on the same generated rows;
3. the same student is trained on: real-only; synthetic-only, blended (real + synthetic) and
   two-stage (synthetic first, then the real rows starting from that model) at each ratio of
   synthetic rows per real row and with all kept synthetic rows; and scored on the real test split.
   Every draw is generated first; then the engine is released and the students are trained.

Results are aggregated over draws (mean ± sd, and the paired difference to real-only of the same
draw), written as `compare.json`, `compare.md` and `compare.png`, and the verdict is stated for the
blend fixed in advance (`compare.primary_ratio`).
"""

from __future__ import annotations

import inspect
import json
import logging
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from datasets import Dataset
from tqdm.auto import tqdm

from . import engine as engine_mod
from .data import sample_per_group, take_per_group
from .diagnosis import diagnosis_lines, label_figures, per_label_accuracy
from .errors import RecipeError
from .mix import mix, rows_for, with_source
from .realism import two_sample
from .recipe import Recipe

logger = logging.getLogger(__name__)

# (real rows, labels (None for a task without labels), seed[, check_real]) -> synthetic rows in the task's columns
Synthesizer = Callable[..., Dataset]

ARMS = ("real-only", "synthetic-only", "blended", "two-stage")
METRICS = ("accuracy", "macro_f1")  # classification's; a run uses its task's (CompareResult.setup["metrics"])


@dataclass
class CompareResult:
    runs: list[dict] = field(default_factory=list)        # one per trained student
    summary: list[dict] = field(default_factory=list)     # mean ± sd per (k, arm, amount)
    verdicts: list[dict] = field(default_factory=list)    # one per k, for the primary blend
    setup: dict = field(default_factory=dict)
    generation: list[dict] = field(default_factory=list)  # rows requested / kept per (draw, k)
    skipped: list[dict] = field(default_factory=list)     # ratio arms without enough kept synthetic rows
    tuning: list[dict] = field(default_factory=list)      # compare.tune's choice per (draw, k)

    def as_dict(self) -> dict:
        out = {"setup": self.setup, "verdicts": self.verdicts, "summary": self.summary,
               "generation": self.generation, "skipped": self.skipped, "runs": self.runs}
        if self.tuning:
            out["tuning"] = self.tuning
        return out

    @property
    def verdict(self) -> str:
        return " ".join(v["text"] for v in self.verdicts)

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self.setup.get("metrics", METRICS))

    def table(self) -> str:
        return markdown_table(self.summary, self.metrics, self.setup.get("metric_names"), self.setup.get("percent_metrics"),
                              self.setup.get("lower_is_better", ()),
                              per=" per label" if self.setup.get("labels") is not None else "")


def draw_real(train: Dataset, labels: Sequence[str] | None, ks: Sequence[int], seed: int,
              column: str | None = "label") -> dict[int, Dataset]:
    """For one draw: {k: k random rows per label}, nested (smaller k = prefix of the larger k's rows).
    With `column=None` (a task without labels) k rows in all."""
    groups = train[column] if column is not None else ["all"] * len(train)
    names = list(labels) if column is not None else ["all"]
    order = sample_per_group(groups, dict.fromkeys(names), seed)
    for name in names:
        if len(order[name]) < max(ks):
            what = f"label {name!r} has only" if column is not None else "there are only"
            raise RecipeError(f"compare.real_per_label: {what} {len(order[name])} real rows, fewer than k={max(ks)}")
    return {k: train.select(sorted(i for name in names for i in order[name][:k])) for k in ks}


def arm_amounts(synthetic: Dataset, labels: Sequence[str] | None, k: int, ratios: Sequence[float], seed: int,
                max_shortfall: float = 0.05, column: str | None = "label"):
    """(ratio, rows) for each ratio of synthetic rows per real row, then (None, every kept row).

    A ratio takes `ratio x k` rows of every label (of all rows, for a task without labels). When the
    checks left some labels a few rows short, those labels give what they have, as long as the rows
    missing are at most `max_shortfall` of the rows the ratio needs (the table shows the real
    count); beyond that the ratio is not run (rows is None), so a row called "2x" is never really
    "whatever was left". The "all" arm is left out when it would add less than a quarter to the rows
    of the largest ratio that ran (a near-repeat of that arm, which costs a student and says nothing new).
    """
    groups = synthetic[column] if column is not None else ["all"] * len(synthetic)
    names = sorted(labels) if column is not None else ["all"]
    kept = Counter(groups)
    out, largest = [], 0
    for ratio in ratios:
        need = rows_for(ratio, k)
        missing = sum(max(0, need - kept[name]) for name in names)
        if need < 1 or missing > max_shortfall * need * len(names):
            out.append((ratio, None))
            continue
        picked = take_per_group(synthetic, groups, {name: min(need, kept[name]) for name in names}, seed)
        largest = len(picked)
        out.append((ratio, picked))
    if len(synthetic) > ALL_ARM_MIN_GAIN * largest:
        out.append((None, synthetic))
    return out


ALL_ARM_MIN_GAIN = 1.25  # see arm_amounts


def recipe_synthesizer(recipe: Recipe, per_label: int, test_texts: Sequence[str] | None = None, task=None) -> Synthesizer:
    """Generate `per_label` rows per label from the given real rows with the recipe's prompts,
    generator and checks (cached by the datasets cache, so a rerun does not generate again).
    Checks that compare against real rows (copies, label agreement) use the draw's rows, and
    decontamination uses `test_texts`. `task` is the recipe's task bound to its data (labels)."""
    from .checks import run_checks
    from .pipeline import Runner, check_context, want_diversity, want_realism

    diversity = want_diversity(recipe)  # once: it warns when the encoder is missing
    realism = want_realism(recipe)
    aimed = recipe.compare.aimed_per_label
    tune = recipe.compare.tune
    generated: dict = {}  # the last generation, so checking it again for another k does not regenerate

    def synthesize(real: Dataset, labels, seed: int, check_real: Dataset | None = None) -> Dataset:
        """Generate from `real`; check against `check_real` (default `real`): the real rows the
        checks compare with (copies, label agreement), which may be more than the generator saw."""
        bound = task if task is not None else recipe.make_task().with_data(real)
        if labels is not None and bound.labels != list(labels):
            bound = type(bound)(bound.config, bound.seeds, labels)
        key = (seed, tuple(bound.columns), tuple(tuple(real[c]) for c in bound.columns))
        if generated.get("key") != key:  # smallest_k calls again per k with the same rows: generate once
            runner = Runner(recipe)
            if bound.guards_holdout and test_texts is not None:
                runner.holdout = list(test_texts)
            rows = bound.synthesize(real, runner, seed=seed, per_label=per_label)
            plan = None
            if aimed and bound.label_column is not None:
                rows, plan = _aimed(bound, real, runner, rows, seed, per_label, aimed)
            generated.update(key=key, rows=rows, requests=runner.requests, plan=plan)
        synthetic = generated["rows"]
        context = check_context(recipe, bound, real if check_real is None else check_real, test_texts=test_texts)
        kept, report = run_checks(synthetic, recipe.build_checks(), context=context, diversity=diversity, realism=realism,
                                  text_column=bound.text_column, label_column=bound.label_column)
        logger.info("draw seed %d: %d requests, %d kept after checks", seed, generated["requests"], len(kept))
        synthesize.last_report = report  # read by run_compare: what each check removed in this draw
        synthesize.last_plan = generated["plan"]  # the aimed requests of this draw, for compare.json
        if tune and "messages" in kept.column_names:  # which of the real rows each row's prompt showed
            return kept.select_columns(list(bound.columns)).add_column("shown", shown_texts(kept["messages"], real[bound.text_column]))
        return kept.select_columns(list(bound.columns))

    synthesize.last_report = synthesize.last_plan = None
    return synthesize


def shown_texts(messages: Sequence[list[dict]], real_texts: Sequence[str], head: int = 60) -> list[list[str]]:
    """Per request, the real texts its prompt shows (found by their first `head` characters, which
    a long seed keeps when it is cut to fit the context).

    >>> shown_texts([[{"role": "user", "content": "Examples: - card late - refund?"}]], ["card late", "refund?", "hi"])
    [['card late', 'refund?']]
    """
    return [[t for t in real_texts if t[:head] in m[-1]["content"]] for m in messages]


def _aimed(task, real: Dataset, runner, rows: Dataset, seed: int, per_label: int, aimed: int, contrast: bool = True):
    """The recipe's rows plus `aimed` x labels requests aimed at the real rows' confusions
    (synth_datasets.aim), numbered after the recipe's own so their ids, examples and variations are
    new; each shows the label it is confused with as what not to write (with `contrast`; without,
    the same requests without that block, the control benchmarks/aimed_generation.py measures)."""
    from datasets import concatenate_datasets

    from .aim import confusion_plan

    text, label = task.text_column, task.label_column
    names = [str(x) for x in real[label]]
    plan = confusion_plan(real[text], names, task.labels, aimed * len(task.labels))
    by_label: dict[str, list[str]] = defaultdict(list)
    for t, name in zip(real[text], names):
        by_label[name].append(t)
    shown = {name: (plan.neighbour[name], by_label[plan.neighbour[name]]) for name in task.labels} if contrast else None
    prompts = task.prompts(real, seed=seed, counts=plan.counts, start=per_label, contrast=shown,
                           prompt_tokens=runner.prompt_tokens())
    extra = runner(prompts, runner.generator(json_schema=task.json_schema(), parser=task.parser or task.name), stage="aimed")
    return concatenate_datasets([rows, extra.cast(rows.features)]), plan


def make_student(recipe: Recipe, task, check_installed: bool = True):
    """The student kind `compare` trains (students.STUDENTS), with the recipe's settings for it; with
    `check_installed`, an error when what it needs (an extra) is missing."""
    from .students import STUDENTS

    name = recipe.student
    try:
        kind = STUDENTS.lookup(name, "compare.student")
    except ValueError as e:
        raise RecipeError(str(e)) from None
    fits = getattr(kind, "tasks", None)
    if fits is not None and task.name not in fits:
        raise RecipeError(f"compare.student: the {name!r} student does not fit the task {task.name!r} (it fits {list(fits)})")
    import importlib.util

    missing = [m for m in getattr(kind, "requires", ()) if importlib.util.find_spec(m) is None]
    if missing and check_installed:
        raise RecipeError(f"compare.student: the {name!r} student needs {', '.join(missing)}, which is not installed: "
                          "pip install 'synth-datasets[train]'")
    cfg = recipe.compare
    options = {option: getattr(cfg, field_name) for field_name, option in getattr(kind, "recipe_fields", {}).items()}
    chosen = dict(cfg.student_options)
    settings = getattr(kind, "settings_class", None)
    if settings is not None:  # typed, unknown options named with the allowed ones
        from .config import convert_fields

        chosen = {k: v for k, v in convert_fields(settings, chosen, "compare.student_options").items() if k in chosen}
    if check_installed:  # a named embedded base model (gemma-3-270m) needs its package
        from .models import require_installed

        require_installed(chosen.get("model"), "compare.student_options.model")
        require_installed(options.get("model"), "compare.lm_model")
    try:
        return kind(**{**options, **chosen})
    except (TypeError, ValueError) as e:
        raise RecipeError(f"compare.student_options: {e}") from None


@dataclass
class _Prepared:
    task: Any
    train: Dataset
    test: Dataset


def prepare(recipe: Recipe) -> _Prepared:
    """Step 1: the task bound to its labels, the real rows draws are made from, the real test split."""
    from .pipeline import read_real

    cfg = recipe.compare
    if not cfg.test_path:
        raise RecipeError("compare.test_path: required; name the real test split (it is never shown to the generator)")
    task = recipe.make_task()
    train, _ = read_real(recipe, task, recipe.seeds.path, recipe.seeds.split, "seeds.path")
    test, _ = read_real(recipe, task, cfg.test_path, cfg.test_split, "compare.test_path")
    task = task.with_data(train)
    test = task.restrict(test)
    if len(test) == 0:
        raise RecipeError("compare.test_path: no test row has one of the recipe's labels")
    column = task.text_column
    overlap = set(test[column]) & set(train[column])
    if overlap:  # never let a test row be drawn as a real row (and so shown to the generator)
        logger.warning("%d texts are in both seeds.path and compare.test_path: removed from the rows draws are made from",
                       len(overlap))
        train = train.filter(lambda text: text not in overlap, input_columns=column)
    return _Prepared(task, train, test)


def synthesize_draws(recipe: Recipe, prep: _Prepared, synthesize: Synthesizer, result: CompareResult) -> list[tuple]:
    """Step 2: every draw's real rows and, for each k, the synthetic rows the student gets (each
    draw's rows generated from its own real rows; see the module docstring). Returns
    [(draw, k, real rows, synthetic rows)] and records what was requested and kept in `result`,
    with the realism and per-label figures of the rows each k's students get."""
    from .pipeline import want_realism

    cfg, task = recipe.compare, prep.task
    ks = sorted(set(cfg.real_per_label))
    per_k_checks = cfg.generate_from == "smallest_k" and "check_real" in inspect.signature(synthesize).parameters
    diagnose = wants_label_diagnosis(task)
    realism = want_realism(recipe)
    out = []
    for d in range(cfg.draws):
        draw_seed = recipe.seeds.seed + d
        drawn = draw_real(prep.train, task.labels, ks, draw_seed, column=task.label_column)
        shared = None
        if cfg.generate_from == "smallest_k" and not per_k_checks:  # a synthesizer that cannot re-check
            shared = synthesize(drawn[ks[0]], task.labels, draw_seed)
        for k, real in drawn.items():
            if shared is not None:
                synthetic = shared
            elif per_k_checks:  # generated once from the smallest k, checked against this k's rows
                synthetic = synthesize(drawn[ks[0]], task.labels, draw_seed, check_real=real)
            else:
                synthetic = synthesize(real, task.labels, draw_seed)
            record = _generation_record(synthesize, d, k, ks[0] if cfg.generate_from == "smallest_k" else k,
                                        cfg.synthetic_per_label * len(task.group_names()), len(synthetic))
            if realism and "realism" not in record:  # a synthesizer that ran no checks: the rows it gave, against this k's
                record["realism"] = _realism_record(two_sample(real[task.text_column], synthetic[task.text_column],
                                                               *_labels_of(task, real, synthetic)))
            if diagnose and len(synthetic):  # per label: off-label, spread, near-duplicates (why it did not help)
                record["labels"] = label_figures(real[task.text_column], real[task.label_column], synthetic[task.text_column],
                                                 synthetic[task.label_column], task.labels)
            result.generation.append(record)
            if len(synthetic) == 0:
                raise RecipeError(f"draw {d}, k={k}: no synthetic row survived generation and the checks; "
                                  "nothing to compare (see the recipe's checks)")
            out.append((d, k, real, synthetic))
    return out


def wants_label_diagnosis(task) -> bool:
    """Per-label diagnosis figures need labels and the classifier student's encoder."""
    from .checks.semantic import encoder_available

    return task.label_column is not None and task.labels is not None and encoder_available()


def _generation_record(synthesize, d: int, k: int, source_k: int, requested: int, kept: int) -> dict:
    record = {"draw": d, "k": k, "generated_from_k": source_k, "requested": requested, "kept": kept}
    plan = getattr(synthesize, "last_plan", None)
    if plan is not None:  # the aimed requests (compare.aimed_per_label), beside the recipe's own
        record["aimed"] = plan.as_dict()
        record["requested"] = requested + sum(plan.counts.values())
    report = getattr(synthesize, "last_report", None)
    if report is not None:
        record["checks"] = [{"name": r.check["name"], "rows_in": r.rows_in, "removed": r.removed,
                             "relabelled": r.relabelled} for r in report.results]
        if report.diversity:
            record["diversity"] = {when: report.diversity[when]["overall"] for when in ("before", "after")}
        if report.realism:  # the kept rows against this k's real rows; before the checks, the overall figure only
            record["realism"] = _realism_record(report.realism["after"], report.realism["before"]["auc"])
    return record


def _realism_record(after: dict, before_auc: float | None = None) -> dict:
    return {"auc": after["auc"], "auc_before_checks": before_auc,
            "per_label": {label: f["auc"] for label, f in after["per_label"].items()},
            "most_synthetic": after["most_synthetic"][:REALISM_ROWS_KEPT]}


def _labels_of(task, real: Dataset, synthetic: Dataset) -> tuple:
    if task.label_column is None:
        return None, None
    return [str(x) for x in real[task.label_column]], [str(x) for x in synthetic[task.label_column]]


REALISM_ROWS_KEPT = 5  # most synthetic-looking rows kept per (draw, k) in compare.json


def train_students(recipe: Recipe, prep: _Prepared, draws: list[tuple], student, result: CompareResult,
                   progress: bool = True, echo: Callable[[str], None] | None = print) -> None:
    """Step 3: for every (draw, k), real-only, then synthetic-only, blended and two-stage at each
    ratio and with every kept row; each student scored on the real test split."""
    cfg, task, test = recipe.compare, prep.task, prep.test
    ratios = sorted(cfg.ratios)
    # at most: real-only + 3 arms x (each ratio + all kept rows); fewer where a ratio already takes every row
    bar = tqdm(total=len(draws) * (1 + 3 * (len(ratios) + 1)), desc="compare", unit="student", disable=not progress)
    for d, k, real, synthetic in draws:
        draw_seed = recipe.seeds.seed + d

        def run(arm: str, ratio, rows: Dataset, prior=None, stage_rows: int | None = None):
            t0 = time.perf_counter()
            model = student.fit(rows, task, prior=prior)
            predictions = student.predict(model, test, task)
            metrics = task.score(predictions, test)
            syn = stage_rows if stage_rows is not None else sum(1 for s in rows["source"] if s == "synthetic")
            record = {"draw": d, "k": k, "arm": arm, "ratio": ratio, "real_rows": sum(1 for s in rows["source"] if s == "real"),
                      "synthetic_rows": syn, **metrics, "seconds": round(time.perf_counter() - t0, 2)}
            if arm == "two-stage":
                record["real_rows"] = len(rows)
            if arm in ("real-only", "blended") and task.label_column is not None and task.labels is not None:
                record["per_label"] = per_label_accuracy(predictions, test[task.label_column], task.labels)
            result.runs.append(record)
            bar.update()
            if echo:
                shown = " ".join(f"{task.metric_names.get(m, m)} {shown_metric(metrics[m], m, task.percent_metrics)}"
                                 for m in task.metrics)
                echo(f"draw {d} k={k} {arm:<14} {_amount(ratio):>4}: {shown} ({record['real_rows']} real + {syn} synthetic rows)")
            return model

        real_rows = with_source(real, "real", task.columns)
        run("real-only", 0.0, real_rows)
        weight = None
        if cfg.tune:  # which synthetic rows the blends keep, and their weight: chosen on the real rows only
            synthetic, weight = _tuned(real, synthetic, task, student, result, d, k)
        arms = arm_amounts(synthetic, task.labels, k, ratios, draw_seed, cfg.max_shortfall, column=task.label_column)
        bar.update(3 * (len(ratios) + 1 - len(arms)))  # an "all" arm that would nearly repeat the largest ratio
        for ratio, picked in arms:
            if ratio is not None and picked is None:  # not enough kept rows for this ratio: not run
                result.skipped.append({"draw": d, "k": k, "ratio": ratio, "kept": len(synthetic)})
                bar.update(3)
                continue
            stage_one = run("synthetic-only", ratio, with_source(picked, "synthetic", task.columns))
            blend = mix(real, picked, ratio=None, seed=draw_seed, columns=task.columns, by=task.label_column)
            if weight is not None:
                blend = blend.add_column("weight", [1.0 if s == "real" else weight for s in blend["source"]])
            run("blended", ratio, blend)
            run("two-stage", ratio, real_rows, prior=stage_one, stage_rows=len(picked))
    bar.close()


def _tuned(real: Dataset, synthetic: Dataset, task, student, result: CompareResult, d: int, k: int) -> tuple[Dataset, float]:
    """compare.tune: the (margin, weight) cross-validation on the draw's k real rows chooses
    (synth_datasets.tune); the synthetic rows the margin keeps, and the weight. Recorded in `result.tuning`."""
    from .tune import choose, keep_by_margin

    text, label = task.text_column, task.label_column
    shown = synthetic["shown"] if "shown" in synthetic.column_names else None
    config = getattr(student, "config", None)
    options = {"encoder": getattr(config, "encoder", None), "c": getattr(config, "c", 30.0)}
    choice = choose(real[text], real[label], synthetic[text], synthetic[label], shown, task.labels, **options)
    keep = keep_by_margin(real[text], real[label], synthetic[text], synthetic[label], task.labels, choice.margin, **options)
    kept = synthetic.select([i for i, x in enumerate(keep) if x])
    result.tuning.append({"draw": d, "k": k, **choice.as_dict(), "synthetic_rows": len(synthetic), "kept": len(kept),
                          "shown_known": shown is not None})
    return kept, choice.weight


def run_compare(recipe: Recipe, synthesize: Synthesizer | None = None, student=None, progress: bool = True,
                echo: Callable[[str], None] | None = print) -> CompareResult:
    """The whole experiment for `recipe` (see the module docstring); nothing is written here."""
    cfg = recipe.compare
    prep = prepare(recipe)
    task = prep.task
    synthesize = synthesize or recipe_synthesizer(recipe, cfg.synthetic_per_label, test_texts=prep.test[task.text_column],
                                                  task=task)
    student = student or make_student(recipe, task)
    if cfg.tune and getattr(student, "name", None) != "classifier":
        raise RecipeError("compare.tune: it chooses by cross-validating the classifier student (frozen encoder + logistic "
                          f"head) and weighs rows in its loss; set compare.student: classifier (this recipe's: {getattr(student, 'name', student)!r})")
    result = CompareResult(setup={
        "labels": task.labels, "test_rows": len(prep.test), "real_per_label": sorted(set(cfg.real_per_label)),
        "draws": cfg.draws, "synthetic_per_label": cfg.synthetic_per_label, "generate_from": cfg.generate_from,
        "ratios": sorted(cfg.ratios), "primary_ratio": cfg.primary_ratio, "student": student.describe(),
        "seed": recipe.seeds.seed, "test_path": cfg.test_path, "seeds_path": recipe.seeds.path,
    })
    started = time.perf_counter()
    draws = synthesize_draws(recipe, prep, synthesize, result)
    engine_mod.release_all()  # the students need the memory; generation is done
    train_students(recipe, prep, draws, student, result, progress, echo)
    if result.skipped:
        logger.warning("%d (draw, k, ratio) arms were not run: the checks left too few synthetic rows for the ratio "
                       "(see compare.json 'skipped'); the 'all' arm used every kept row instead", len(result.skipped))
    result.setup["seconds"] = round(time.perf_counter() - started, 1)
    result.setup["metrics"], result.setup["metric_names"] = list(task.metrics), dict(task.metric_names)
    if task.percent_metrics is not None:  # shown as they are, not in %, for the others (e.g. an NLL)
        result.setup["percent_metrics"] = list(task.percent_metrics)
    if task.lower_is_better:
        result.setup["lower_is_better"] = list(task.lower_is_better)
    result.summary = summarise(result.runs, task.metrics, task.lower_is_better)
    primary = task.metrics[0]
    in_percent = task.percent_metrics is None or primary in task.percent_metrics
    result.verdicts = verdicts(result.summary, cfg.primary_ratio, per=" per label" if task.labels is not None else "",
                               **({} if in_percent else {
        "scale": 1, "digits": 3, "unit": f"{task.metric_names.get(primary, primary)} gained "
        + ("(real-only minus the blend: positive is better)" if primary in task.lower_is_better else "over real-only")}))
    return result


def summarise(runs: list[dict], metrics: Sequence[str] = METRICS, lower_is_better: Sequence[str] = ()) -> list[dict]:
    """Mean ± sd of every metric per (k, arm, ratio) over draws, and the paired gain over real-only
    of the first (primary) metric: the arm minus real-only, or real-only minus the arm for a metric
    where lower is better (an NLL), so a positive `delta` always means better."""
    primary = metrics[0]
    sign = -1 if primary in lower_is_better else 1
    base = {(r["draw"], r["k"]): r for r in runs if r["arm"] == "real-only"}
    curves: dict[int, list] = defaultdict(list)  # draw -> its real-only scores over k (signed: higher is better)
    for (draw, k), r in sorted(base.items()):
        curves[draw].append((k, sign * r[primary]))
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in runs:
        groups[(r["k"], r["arm"], r["ratio"])].append(r)
    rows = []
    for (k, arm, ratio), members in groups.items():
        row = {"k": k, "arm": arm, "ratio": ratio, "draws": len(members),
               "synthetic_rows": statistics.mean(m["synthetic_rows"] for m in members)}
        for metric in metrics:
            values = [m[metric] for m in members]
            row.update({metric: statistics.mean(values), f"{metric}_sd": _sd(values)})
        delta = [sign * (m[primary] - base[(m["draw"], k)][primary]) for m in members]
        row.update({"delta": statistics.mean(delta), "delta_sd": _sd(delta)})
        if arm != "real-only" and all(len(curves[m["draw"]]) > 1 for m in members):  # a curve needs two k
            row.update(worth_in_real_rows(members, curves, sign, primary))
        rows.append(row)
    order = {arm: i for i, arm in enumerate(ARMS)}
    return sorted(rows, key=lambda r: (r["k"], order[r["arm"]], _ratio_key(r["ratio"])))


def worth_in_real_rows(members: list[dict], curves: dict, sign: int, metric: str) -> dict:
    """What an arm's students were worth in real rows: for each draw, the k at which that draw's
    real-only curve (its real-only scores over k, linear between the measured k, made
    non-decreasing) reaches the arm's score, minus the arm's own k. Mean ± sd over the draws whose
    curve spans the score; `worth_above` / `worth_below` count the draws where it lies above the
    curve's top (worth more than the largest k shows) or below real-only at the smallest k.

    >>> curves = {0: [(5, 0.50), (10, 0.60), (20, 0.70)]}
    >>> round(worth_in_real_rows([{"draw": 0, "k": 5, "acc": 0.55}], curves, 1, "acc")["worth"], 6)
    2.5
    """
    worth, above, below = [], 0, 0
    for m in members:
        k_equal = _k_reaching(curves[m["draw"]], sign * m[metric])
        if k_equal == "above":
            above += 1
        elif k_equal == "below":
            below += 1
        else:
            worth.append(k_equal - m["k"])
    return {"worth": statistics.mean(worth) if worth else None, "worth_sd": _sd(worth) if worth else None,
            "worth_draws": len(worth), "worth_above": above, "worth_below": below,
            "worth_span": [curves[members[0]["draw"]][0][0], curves[members[0]["draw"]][-1][0]]}


def _k_reaching(curve: list[tuple[int, float]], score: float):
    """The k (interpolated) at which a real-only curve [(k, score)] first reaches `score`, with the
    curve made non-decreasing (a dip between draws' k is noise, not fewer rows helping); "above" or
    "below" when it lies outside the curve."""
    best, points = float("-inf"), []
    for k, value in curve:
        best = max(best, value)
        points.append((k, best))
    if score < points[0][1]:
        return "below"
    if score > points[-1][1]:
        return "above"
    i = next(i for i, (_, value) in enumerate(points) if value >= score)  # exists: score <= the last point
    if i == 0:
        return points[0][0]
    (k0, v0), (k1, v1) = points[i - 1], points[i]  # v0 < score <= v1
    return k0 + (score - v0) * (k1 - k0) / (v1 - v0)


# one-sided 95% quantiles of Student's t by degrees of freedom (draws - 1); 1.645 beyond 30
_T95 = {1: 6.314, 2: 2.920, 3: 2.353, 4: 2.132, 5: 2.015, 6: 1.943, 7: 1.895, 8: 1.860, 9: 1.833, 10: 1.812,
        12: 1.782, 15: 1.753, 20: 1.725, 30: 1.697}


def t95(df: int) -> float:
    """One-sided 95% Student t quantile (the nearest tabulated df at or below `df`).

    >>> t95(2), t95(11), t95(100)
    (2.92, 1.812, 1.645)
    """
    if df > 30:
        return 1.645
    return _T95[max(d for d in _T95 if d <= df)]


def worth_phrase(row: dict, per: str = " per label") -> str:
    """What a summary row's students were worth in real rows, as the verdict says it."""
    n = row["worth_draws"] + row["worth_above"] + row["worth_below"]
    lo, hi, k = row["worth_span"][0], row["worth_span"][1], row["k"]
    if row["worth_draws"] == n:
        return f"worth {row['worth']:+.1f} ± {row['worth_sd']:.1f} real rows{per} (on each draw's real-only curve)"
    parts = []
    if row["worth_above"]:
        parts.append(f"above real-only at k={hi} in {row['worth_above']} of {n} draws (worth more than "
                     f"{hi - k:+d} real rows{per})")
    if row["worth_below"]:
        parts.append(f"below real-only at k={lo} in {row['worth_below']} of {n} draws (worth less than "
                     f"{lo - k:+d} real rows{per})")
    text = f"the real-only curve (k = {lo} to {hi}) does not span its score: " + "; ".join(parts)
    if row["worth_draws"]:
        text += (f"; in the other {row['worth_draws']} draw{'s' if row['worth_draws'] > 1 else ''} it was worth "
                 f"{row['worth']:+.1f} ± {row['worth_sd']:.1f} real rows{per}")
    return text


def worth_cell(row: dict) -> str:
    """The table's short form of the same: +2.5 ± 0.3, > +15 (2/3), < +0 (1/3), joined."""
    n = row["worth_draws"] + row["worth_above"] + row["worth_below"]
    lo, hi, k = row["worth_span"][0], row["worth_span"][1], row["k"]
    cells = []
    if row["worth_draws"]:
        cells.append(f"{row['worth']:+.1f} ± {row['worth_sd']:.1f}" + ("" if row["worth_draws"] == n else f" ({row['worth_draws']}/{n})"))
    if row["worth_above"]:
        cells.append(f"> {hi - k:+d} ({row['worth_above']}/{n})")
    if row["worth_below"]:
        cells.append(f"< {lo - k:+d} ({row['worth_below']}/{n})")
    return "; ".join(cells)


def verdicts(summary: list[dict], primary_ratio: float, draws: int | None = None, scale: float = 100,
             unit: str = "points", digits: int = 1, per: str = " per label") -> list[dict]:
    """Per k, a sentence on the primary blend, from the paired gains over real-only across draws.

    "helped" when the gain's one-sided 95% lower bound (paired t) is above zero; "hurt" when its upper
    bound is below zero; otherwise inconclusive. One draw never says "helped": it has no spread.
    Gains are shown times `scale` in `unit` with `digits` decimals (points of a % metric by default).
    Each sentence then says what the blend was worth in real rows (`worth_in_real_rows`), or that
    the real-only curve does not span it.
    """
    out = []
    for k in sorted({r["k"] for r in summary}):
        row = next((r for r in summary if r["k"] == k and r["arm"] == "blended" and r["ratio"] == primary_ratio), None)
        if row is None:
            out.append({"k": k, "outcome": "not run", "helped": False, "delta": None, "delta_sd": None,
                        "text": f"k={k}: the blend {_amount(primary_ratio)} was not run (too few synthetic rows survived the checks)."})
            continue
        n = row["draws"]
        gain, sd = scale * row["delta"], scale * row["delta_sd"]
        what = f"blended {_amount(primary_ratio)}, {n} draw{'s' if n > 1 else ''}"
        if n < 2:
            outcome = "inconclusive"
            text = f"k={k}: one draw only: {gain:+.{digits}f} {unit} over real-only ({what}); run 3 or more draws for a verdict."
        else:
            margin = t95(n - 1) * sd / n ** 0.5
            outcome = "helped" if gain - margin > 0 else "hurt" if gain + margin < 0 else "inconclusive"
            spread = f"{gain:+.{digits}f} ± {sd:.{digits}f} {unit}"
            if outcome == "helped":
                text = f"k={k}: synthetic data added {spread} over real-only ({what})."
            elif outcome == "hurt":
                text = f"k={k}: synthetic data did not beat real-only: it adds noise ({spread}, {what})."
            else:
                text = f"k={k}: synthetic data did not beat real-only clearly: {spread} is within the spread ({what})."
        worth = None
        if "worth_draws" in row:
            text = f"{text[:-1]}; {worth_phrase(row, per)}."
            worth = {key: row[key] for key in ("worth", "worth_sd", "worth_draws", "worth_above", "worth_below", "worth_span")}
        best = max((r for r in summary if r["k"] == k and r["arm"] != "real-only"), key=lambda r: r["delta"])
        out.append({"k": k, "outcome": outcome, "helped": outcome == "helped", "delta": row["delta"],
                    "delta_sd": row["delta_sd"], "draws": n, "text": text, "worth": worth,
                    "best": {"arm": best["arm"], "ratio": best["ratio"], "delta": best["delta"], "delta_sd": best["delta_sd"]}})
    return out


def shown_metric(value: float, metric: str, percent: Sequence[str] | None = None, sd: float | None = None) -> str:
    """A metric as the tables show it: in % (the default), or as it is (3 decimals) when `percent`
    names the metrics in % and not this one.

    >>> shown_metric(0.5, "rouge_l", ["rouge_l"]), shown_metric(2.25, "nll", ["rouge_l"], sd=0.1)
    ('50.0%', '2.250 ± 0.100')
    """
    if percent is None or metric in percent:
        return f"{100 * value:.1f}%" if sd is None else f"{100 * value:.1f} ± {100 * sd:.1f}"
    return f"{value:.3f}" if sd is None else f"{value:.3f} ± {sd:.3f}"


def markdown_table(summary: list[dict], metrics: Sequence[str] = METRICS, names: dict | None = None,
                   percent: Sequence[str] | None = None, lower_is_better: Sequence[str] = (), per: str = " per label") -> str:
    """The summary as a Markdown table: every metric in % (or as it is, for metrics that `percent`
    leaves out), the paired gain Δ of the first one (positive = better), and what each arm was
    worth in real rows (`worth_cell`)."""
    names = {"accuracy": "accuracy", "macro_f1": "macro-F1", **(names or {})}
    heads = " | ".join(f"{names.get(m, m)}{' %' if percent is None or m in percent else ''}" for m in metrics)
    in_percent = percent is None or metrics[0] in percent
    gain = "points" if in_percent else "gain, lower is better" if metrics[0] in lower_is_better else "gain"
    lines = [f"| k | student trained on | synthetic per real | synthetic rows | draws | {heads} | Δ {names.get(metrics[0], metrics[0])} vs real-only ({gain}) | worth, real rows{per} |",
             "|---:|---|---:|---:|---:|" + "---:|" * len(metrics) + "---:|---:|"]
    for r in summary:
        delta = "" if r["arm"] == "real-only" else (f"{100 * r['delta']:+.1f} ± {100 * r['delta_sd']:.1f}" if in_percent
                                                     else f"{r['delta']:+.3f} ± {r['delta_sd']:.3f}")
        cells = " | ".join(shown_metric(r[m], m, percent, sd=r[f"{m}_sd"]) for m in metrics)
        worth = worth_cell(r) if "worth_draws" in r else ""
        lines.append(f"| {r['k']} | {r['arm']} | {_amount(r['ratio']) if r['arm'] != 'real-only' else '-'} | "
                     f"{r['synthetic_rows']:.0f} | {r['draws']} | {cells} | {delta} | {worth} |")
    return "\n".join(lines)


def plot(summary: list[dict], path: Path, metric: str = "accuracy", name: str | None = None, scale: float = 100,
         per: str = " per label", notes: dict | None = None) -> Path:
    """`metric` (times `scale`: 100 for %) vs synthetic rows, one line per arm, one panel per k;
    real-only as a dashed line; `notes[k]` (what the blend was worth) under the panel's title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = sorted({r["k"] for r in summary})
    fig, axes = plt.subplots(1, len(ks), figsize=(5 * len(ks), 4), squeeze=False, sharey=True)
    for ax, k in zip(axes[0], ks):
        rows = [r for r in summary if r["k"] == k]
        base = next(r for r in rows if r["arm"] == "real-only")
        ax.axhline(scale * base[metric], linestyle="--", color="black", label="real-only")
        for arm in ARMS[1:]:
            line = sorted((r for r in rows if r["arm"] == arm), key=lambda r: r["synthetic_rows"])
            ax.errorbar([r["synthetic_rows"] for r in line], [scale * r[metric] for r in line],
                        yerr=[scale * r[f"{metric}_sd"] for r in line], marker="o", capsize=3, label=arm)
        ax.set_title(f"k = {k} real rows{per}" + (f"\n{notes[k]}" if notes and notes.get(k) else ""), fontsize=10)
        ax.set_xlabel("synthetic rows in training")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{name or metric} on the real test split{' (%)' if scale == 100 else ''}")
    axes[0][-1].legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_results(result: CompareResult, folder: str | Path) -> Path:
    """compare.json (everything), compare.md (verdict + table) and compare.png in `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "compare.json").write_text(json.dumps(result.as_dict(), indent=2) + "\n")
    (folder / "compare.md").write_text(report_markdown(result) + "\n")
    metric = result.metrics[0]
    percent = result.setup.get("percent_metrics")
    notes = {}
    for v in result.verdicts:
        row = next((r for r in result.summary if r["k"] == v["k"] and r["arm"] == "blended"
                    and r["ratio"] == result.setup.get("primary_ratio")), None)
        if row is not None and "worth_draws" in row:
            notes[v["k"]] = f"blended {_amount(row['ratio'])}: worth {worth_cell(row)} real rows"
    plot(result.summary, folder / "compare.png", metric, (result.setup.get("metric_names") or {}).get(metric),
         scale=100 if percent is None or metric in percent else 1,
         per=" per label" if result.setup.get("labels") is not None else "", notes=notes)
    return folder


def report_markdown(result: CompareResult) -> str:
    s = result.setup
    labelled = s.get("labels") is not None
    per = " per label" if labelled else ""
    return "\n".join([
        f"Student: {s['student']['kind']} ({', '.join(f'{k}={v}' for k, v in s['student'].items() if k != 'kind')}). "
        + (f"{len(s['labels'])} labels, " if labelled else "")
        + f"{s['test_rows']} real test rows, {s['draws']} draws of k real rows{per}; "
        + (f"each draw's synthetic rows were generated once, from its k={s['real_per_label'][0]} real rows, and used for every k of the draw "
           if s.get("generate_from") == "smallest_k" else "each draw's synthetic rows were generated from its own k real rows ")
        + f"({s['synthetic_per_label']} requested{per}). "
        "Mean ± sd over draws; Δ is the paired difference to real-only of the same draw. The verdict says "
        "\"added\" only when the paired gain's one-sided 95% lower bound (Student t) is above zero, "
        "\"adds noise\" when its upper bound is below zero, and otherwise that the difference is within the spread. "
        f"\"Worth\" is how many real rows{per} the same draw's real-only student would need, beyond k, to score as "
        "well (read off its real-only scores over k, linear between them), mean ± sd over the draws whose real-only "
        "curve spans the score; outside it, the table says > or < the curve's ends, with the number of draws.",
        "",
        "**Verdict**: " + " ".join(v["text"] for v in result.verdicts),
        "",
        result.table(),
    ] + _skipped_lines(result.skipped) + ([] if any("worth_draws" in r for r in result.summary) else [
        "", f"Worth in real rows{per}: not stated, it needs real-only students at two or more k "
            "(compare.real_per_label) to read it off."]) + tuning_lines(result.tuning) + realism_lines(result.generation)
        + diagnosis_lines(result.runs, result.generation, result.verdicts, s.get("primary_ratio", 1.0)))


def tuning_lines(tuning: list[dict]) -> list[str]:
    """What compare.tune chose per k and draw: the label margin the blends kept rows at (none: every
    row; 0: top-1) and the weight of a synthetic row (0: the blend is the real rows alone)."""
    if not tuning:
        return []
    parts = []
    for k in sorted({t["k"] for t in tuning}):
        picks = [t for t in tuning if t["k"] == k]
        parts.append(f"k={k}: " + ", ".join(f"draw {t['draw']} margin {_margin(t['margin'])} weight {t['weight']:g} "
                                            f"({t['kept']} rows)" for t in picks))
    return ["", "**Tuned on the real rows** (compare.tune: per draw and k, stratified cross-validation on the k real rows "
            "chose which synthetic rows the blends keep, by how far a classifier fitted on those real rows puts the "
            "requested label ahead of the next (none: every row; 0: top-1), and the weight of a synthetic row next to a "
            "real one (0: the blend is the real rows alone)): " + "; ".join(parts) + "."]


def _margin(margin: float | None) -> str:
    return "none" if margin is None else f"{margin:g}"


def realism_lines(generation: list[dict], rows: int = 3) -> list[str]:
    """The realism paragraph of the report: per k, the two-sample ROC AUC of the kept synthetic rows
    against the draw's real rows (mean ± sd over draws), the labels told apart most easily, and the
    rows that looked most synthetic in the first draw."""
    measured = [g for g in generation if g.get("realism", {}).get("auc") is not None]
    if not measured:
        return []
    parts = []
    for k in sorted({g["k"] for g in measured}):
        values = [g["realism"]["auc"] for g in measured if g["k"] == k]
        before = [g["realism"]["auc_before_checks"] for g in measured if g["k"] == k and g["realism"]["auc_before_checks"] is not None]
        parts.append(f"{statistics.mean(values):.2f} ± {_sd(values):.2f} at k={k}"
                     + (f" ({statistics.mean(before):.2f} before the checks)" if before else ""))
    per_label = defaultdict(list)
    for g in measured:
        for label, value in g["realism"]["per_label"].items():
            if value is not None:
                per_label[label].append(value)
    worst = sorted(((statistics.mean(v), label) for label, v in per_label.items()), key=lambda item: (-item[0], item[1]))[:5]
    lines = ["", "**Realism** (can a classifier tell the kept synthetic rows from the draw's real rows? "
             "Cross-validated ROC AUC on sentence embeddings and character n-grams; 0.5: indistinguishable, 1.0: always "
             f"told apart): {'; '.join(parts)}."]
    if worst:
        lines[-1] += " Told apart most easily: " + ", ".join(f"{label} ({value:.2f})" for value, label in worst) + "."
    first = measured[0]
    if first["realism"]["most_synthetic"]:
        lines += ["", f"The rows that looked most synthetic (draw {first['draw']}, k={first['k']}; P(synthetic) out of fold):", ""]
        lines += [f"- {row['score']:.2f}{' ' + str(row['label']) if row.get('label') else ''}: "
                  f"`{str(row['text']).replace('`', chr(39)).replace(chr(10), ' ')[:160]}`"
                  for row in first["realism"]["most_synthetic"][:rows]]
    return lines


def _skipped_lines(skipped: list[dict]) -> list[str]:
    """One line per (k, ratio) arm that was not run, with the draws it was missing from."""
    missing = defaultdict(list)
    for s in skipped:
        missing[(s["k"], s["ratio"])].append(s["draw"])
    return ["", *(f"Not run: k={k} at {_amount(ratio)} (draws {', '.join(map(str, draws))}): the checks left fewer than "
                  f"{rows_for(ratio, k)} synthetic rows for some labels, more than compare.max_shortfall allows." for (k, ratio), draws in sorted(missing.items()))
            ] if missing else []


def _sd(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _ratio_key(ratio) -> float:
    return float("inf") if ratio is None else ratio


def _amount(ratio) -> str:
    return "all" if ratio is None else f"{ratio:g}x"
