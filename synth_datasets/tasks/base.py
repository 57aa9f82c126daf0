"""The Task contract: what one kind of data owns, so the stages above ask it instead of branching.

A task kind is one class (in one module) registered in `synth_datasets.tasks.TASKS` under the name
recipes use as `task.kind`. It owns:

    config_class, seeds_class   the recipe's `task:` and `seeds:` sections (dataclasses)
    validate(recipe)            settings that only make sense together, checked when the recipe loads
    standardize(ds)             real rows -> the task's columns (`columns`), bad rows dropped and counted
    with_data(real)             the task bound to its data (e.g. the label set)
    draw_seeds(real)            the real rows shown to the generator
    prompts(seeds, seed=...)    seeds -> requests: `row_id`, `messages` and the target fields
    synthesize(seeds, runner)   the generation stages; by default one: prompts -> `Generate` -> rows
                                (a task with several stages or rounds overrides it)
    json_schema()               the structured-output schema generation is constrained to
    parse, fields, features     completion -> columns, never raising (classmethods: `Generate` calls them)
    label_column                rows are balanced, drawn and mixed per value of this column (None: by count)
    judge_prompt()              what the LLM judge asks about a row (system prompt, template, criteria)
    metrics, score(preds, rows) how a student's predictions on real rows are scored
    default_student             the student `compare` trains unless the recipe names another
    card_template, provenance   the dataset card sections only this task has

Everything else (generation, checks, mixing, `compare`, cards, the CLI) is shared. Writing a task:
docs/writing-a-task.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

from datasets import Dataset


@dataclass
class SeedsConfig:
    """The recipe's `seeds:` section: where the real rows are. Tasks add their column names."""

    path: str = field(metadata={"help": "CSV/JSON/Parquet file (or a folder load_dataset reads) of real rows."})
    split: str = field(default="train", metadata={"help": "Split to read when path is a folder."})
    seed: int = field(default=0, metadata={"help": "Seeds the draw of seed rows and the prompts."})
    license: str | None = field(default=None, metadata={"help": "License/attribution of the real data, for the card."})
    source_dataset: str | None = field(default=None, metadata={"help": "Hub id of the real dataset the rows come from (the card's source_datasets), e.g. PolyAI/banking77."})


@dataclass
class TaskConfig:
    """The recipe's `task:` section: the fields every task has. Tasks subclass it."""

    kind: str = field(default="classification", metadata={"help": "The task: a name in synth_datasets.tasks.TASKS."})


def draw_count(real: Dataset, seeds) -> Dataset:
    """`seeds.count` random rows of `real` (all when it has no count), in file order, seeded by `seeds.seed`."""
    import random

    count = getattr(seeds, "count", None)
    if seeds is None or count is None or count >= len(real):
        return real
    return real.select(sorted(random.Random(seeds.seed).sample(range(len(real)), count)))


class Task:
    """Base of task kinds; see the module docstring for the contract."""

    name: ClassVar[str] = ""
    config_class: ClassVar[type] = TaskConfig
    seeds_class: ClassVar[type] = SeedsConfig
    columns: ClassVar[tuple[str, ...]] = ("text",)
    text_column: ClassVar[str] = "text"            # what checks, overlap tests and diversity read
    label_column: ClassVar[str | None] = None      # balance, draw and mix per value of this column
    metrics: ClassVar[tuple[str, ...]] = ()        # shipped `evaluate` modules; the first decides the verdict
    metric_names: ClassVar[dict[str, str]] = {}    # how tables name each metric
    percent_metrics: ClassVar[tuple[str, ...] | None] = None  # metrics shown in %; None: all of them
    lower_is_better: ClassVar[tuple[str, ...]] = ()  # metrics where lower is better (an NLL); the others: higher
    default_student: ClassVar[str | None] = None
    card_template: ClassVar[str] = "dataset_card.md"
    # True for a task that shows its own generated rows in later requests (a bootstrap): it gets the
    # evaluation split's texts as `runner.holdout` and must keep them out of every request
    guards_holdout: ClassVar[bool] = False
    hub_task_categories: ClassVar[list[str] | None] = None

    def __init__(self, config: Any = None, seeds: Any = None, labels: Sequence[str] | None = None):
        self.config = config if config is not None else self.config_class(kind=self.name)
        self.seeds = seeds
        self.labels = list(labels) if labels is not None else None

    def validate(self, recipe) -> None:
        """Raise a RecipeError for settings that only make sense together (called when a recipe loads)."""

    # -- real rows ------------------------------------------------------------------------------
    def standardize(self, ds: Dataset, where: str) -> tuple[Dataset, dict[str, int]]:
        """The rows in the task's `columns`, and how many rows were dropped for which reason."""
        raise NotImplementedError

    def with_data(self, real: Dataset) -> "Task":
        """This task bound to its real rows (labelled tasks fix their label set here)."""
        return self

    def draw_seeds(self, real: Dataset) -> Dataset:
        """The real rows the generator is shown; all of them by default."""
        return real

    def restrict(self, rows: Dataset) -> Dataset:
        """Real rows this task's students can be scored on (e.g. only rows of the recipe's labels)."""
        return rows

    # -- generation -----------------------------------------------------------------------------
    def prompts(self, seeds: Dataset, *, seed: int, per_label: int | None = None, prompt_tokens: int | None = None) -> Dataset:
        """Chat requests for the generator: `row_id`, `messages` and the fields known in advance.
        `per_label`: how many `compare` asks for (per label, or in all for a task without labels);
        `prompt_tokens`: the tokens a request's prompt may use (the context minus max_tokens), so
        the builder can keep long seed rows within it."""
        raise NotImplementedError

    def synthesize(self, seeds: Dataset, runner, *, seed: int, per_label: int | None = None) -> Dataset:
        """The generated rows for `seeds`: the task's stages run through `runner` (pipeline.Runner,
        which caches, resumes and counts each stage). One stage by default: `prompts`, then the
        recipe's generator constrained to `json_schema` and parsed by `parse`. A task that generates
        in rounds or in several steps (instructions first, then their answers) overrides this and
        calls `runner(prompts, runner.generator(...), stage=name)` once per step."""
        from ..errors import RecipeError

        prompts = self.prompts(seeds, seed=seed, per_label=per_label, prompt_tokens=runner.prompt_tokens())
        if len(prompts) == 0:
            raise RecipeError("task: nothing to generate: the task asked for no rows from these seeds "
                              "(with balance_to, every label already has that many rows: raise it)")
        return runner(prompts, runner.generator(json_schema=self.json_schema(), parser=self.parser or self.name))

    def json_schema(self) -> dict | None:
        return None

    parser: ClassVar[str] = ""  # the name `Generate(parser=...)` looks up; the task's own name by default
    parser_needs_schema: ClassVar[bool] = True  # False: `parse` reads free text (no JSON schema constrains it)

    @classmethod
    def parse(cls, row: dict, completion, json_schema: dict | None) -> tuple[dict, str | None]:
        raise NotImplementedError

    @classmethod
    def fields(cls, json_schema: dict | None) -> list[str]:
        return list(cls.features(json_schema))

    @classmethod
    def features(cls, json_schema: dict | None) -> dict:
        raise NotImplementedError

    def judge_prompt(self) -> dict | None:
        """What the LLM judge asks about a row: {"system", "template" (with {criteria} and the fields
        named in "fields"), "criteria": {name: question}, "fields"}; None: the judge's neutral defaults."""
        return None

    # -- students ---------------------------------------------------------------------------------
    def groups(self, rows: Dataset) -> list[str]:
        """The group of every row: its label, or one group for a task without labels."""
        if self.label_column is None:
            return ["all"] * len(rows)
        return [str(v) for v in rows[self.label_column]]

    def group_names(self) -> list[str]:
        return list(self.labels) if self.label_column is not None else ["all"]

    def score(self, predictions: Sequence, rows: Dataset) -> dict[str, float]:
        """Every metric of the task for `predictions` on the real rows `rows`."""
        raise NotImplementedError

    # -- provenance and card ----------------------------------------------------------------------
    def provenance(self, seeds: Dataset, prompts: Dataset, kept: Dataset) -> dict:
        """What only this task records (and its card shows), as plain data."""
        return {}
