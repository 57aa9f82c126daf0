"""Text classification: prompts per label from real seed rows, a JSON schema, a parser, balancing.

    prompts = classification_prompts(seeds, per_label=20)           # or balance_to=50
    gen = Generate(json_schema=json_schema(labels), parser="classification")
    synthetic = prompts.map(gen, batched=True, batch_size=1000)

Prompts show a few real examples of the requested label, rotated so that consecutive requests see
different seeds, and ask for a new text under a varied persona, tone and length so the outputs are
not near-copies of each other. The model answers `{"text": ..., "label": ...}`; the row keeps the
*requested* label in `label` (it is known by construction) and records what the model said in
`model_label`, with `label_agrees` to filter or audit on.

Balancing: with `balance_to=N`, each label gets only its deficit, N minus the rows it already has
in the real data (`real`, or the seeds themselves), so rare classes get the most synthetic rows.

The default prompt, personas and student prompt are neutral; a recipe says what the data is
(`task.description`) and may give its own template and personas (recipes/banking77.yaml does).
`Classification` is the task (tasks/base.py) that recipes name as `kind: classification`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import jinja2
from datasets import ClassLabel, Dataset, Features, List, Value

from ..data import label_names, sample_per_group
from .base import SeedsConfig, Task, TaskConfig
from .jsonparse import parse_json

FIELDS = ("text", "model_label", "label_agrees")
FIELD_FEATURES = {"text": Value("string"), "model_label": Value("string"), "label_agrees": Value("bool")}
PROMPT_FEATURES = Features({
    "row_id": Value("string"),
    "messages": List({"role": Value("string"), "content": Value("string")}),
    "label": Value("string"),
    "variation": Value("string"),
})

SYSTEM_PROMPT = (
    "You write realistic, varied training data for a text classifier. "
    "Reply with one JSON object and nothing else."
)

# Neutral by default: a recipe says what the data is (`description`) and can bring its own wording.
PROMPT_TEMPLATE = """\
{% if description %}The data: {{ description }}.
{% endif %}Write one new text with the label "{{ label_name }}".

{% if examples %}Real texts with this label:
{% for example in examples %}- {{ example }}
{% endfor %}
{% endif %}Rules:
- Write it as {{ persona }}, in a {{ tone }} tone, {{ length }}.
- It must clearly have the label "{{ label_name }}" and no other.
- Do not copy an example. Write only the new text: no greeting to me, no explanation.

Answer with a JSON object: "text" is your new text, "label" is "{{ label }}"."""

LENGTHS = ("in a few words", "in one short sentence", "in one or two sentences", "in two or three sentences")
TONES = ("neutral", "polite", "frustrated", "hurried", "casual", "formal", "worried")
PERSONAS = (
    "a student", "a retiree", "a professional", "a newcomer to the subject",
    "a non-native English speaker", "a parent", "someone in a hurry", "an expert",
)
# Shown in an aimed request (`contrast=`): the label the generated text is most often confused with,
# and some of its real texts, as what not to write. A template may place it itself with
# `{{ contrast }}`; otherwise it goes before the template's last paragraph (its answer format).
CONTRAST_BLOCK = """\
Do not write a text with the label "{{ contrast_label_name }}". These real texts have that label, so yours must read clearly differently:
{% for example in contrast_examples %}- {{ example }}
{% endfor %}"""
STUDENT_PROMPT = "Which label fits this text? Answer with the label only.\n\nText: {text}"
STUDENT_PROMPT_DESCRIBED = "The texts are {description}. Which label fits this one? Answer with the label only.\n\nText: {text}"
# Tokens kept free for the template, the system prompt and the chat format when the seed examples
# shown in a request are fitted to the context (see `example_budget`).
PROMPT_OVERHEAD_TOKENS = 256


def json_schema(labels: Sequence[str], max_chars: int | None = None) -> dict:
    """The structured-output schema: a text and one of the labels.

    `max_chars` caps the text in the grammar itself, so a rambling model has to close the JSON
    instead of running into max_tokens (embedded model, 256 requests at max_tokens=80: 54 cut off
    without a cap, 20 with max_chars=200; benchmarks/grammar_length_cap.py).

    >>> json_schema(["a", "b"], max_chars=200)["properties"]["text"]
    {'type': 'string', 'maxLength': 200}
    """
    text = {"type": "string"} if max_chars is None else {"type": "string", "maxLength": max_chars}
    return {
        "type": "object",
        "properties": {
            "text": text,
            "label": {"type": "string", "enum": list(labels)},
        },
        "required": ["text", "label"],
        "additionalProperties": False,
    }


def deficits(counts: dict[str, int], labels: Sequence[str], target: int) -> dict[str, int]:
    """How many rows each label lacks to reach `target`.

    >>> deficits({"a": 10, "b": 2}, ["a", "b", "c"], 5)
    {'a': 0, 'b': 3, 'c': 5}
    """
    return {label: max(0, target - counts.get(label, 0)) for label in labels}


def classification_prompts(
    seeds: Dataset,
    labels: Sequence[str] | None = None,
    *,
    per_label: int | None = None,
    balance_to: int | None = None,
    counts: dict[str, int] | None = None,
    real: Dataset | None = None,
    text_column: str = "text",
    label_column: str = "label",
    shots: int = 3,
    seed: int = 0,
    template: str = PROMPT_TEMPLATE,
    system_prompt: str | None = SYSTEM_PROMPT,
    personas: Sequence[str] = PERSONAS,
    description: str | None = None,
    max_example_chars: int | None = None,
    start: int = 0,
    contrast: dict[str, tuple[str, Sequence[str]]] | None = None,
) -> Dataset:
    """Chat requests asking for new examples of each label.

    Args:
        seeds: real rows with `text_column` and `label_column`; examples shown in the prompts.
        labels: labels to generate for; default: the ClassLabel names, or every label in the seeds,
            sorted. A label without seeds gets prompts with no examples (its name only).
        per_label: generate this many rows for every label; or
        balance_to: generate for each label only its deficit to this count, counted in `real`
            (default: in `seeds`); or
        counts: this many rows for each label named (others: none).
        shots: seed examples shown per request (fewer if the label has fewer seeds).
        seed: drives which examples and which persona/tone/length each request gets.
        template: a Jinja template with `label`, `label_name`, `examples`, `persona`, `tone`, `length`
            and `description`.
        personas: who each request asks the model to write as (cycled with tones and lengths).
        description: what the data is, for the template ("messages customers send to a bank").
        max_example_chars: a shown seed longer than this is cut (at a word) and marked with "...", so
            that a few long seeds cannot push a request past the model's context (`example_budget`).
        start: the index of each label's first request: more requests for the same seeds continue
            the rotation of examples and variations, with new row ids.
        contrast: {label: (other label, its real texts)}: each request for the label also shows the
            other label's texts as what not to write (`CONTRAST_BLOCK`, up to `shots` of them).

    Input columns: `text_column`, `label_column`.
    Output columns: `row_id` (stable hash of the request), `messages`, `label` (requested),
        `variation` (the persona/tone/length the request asked for).

    >>> seeds = Dataset.from_dict({"text": ["hi card", "card late?", "refund pls"], "label": ["card", "card", "refund"]})
    >>> prompts = classification_prompts(seeds, balance_to=3)
    >>> dict(Counter(prompts["label"]))
    {'card': 1, 'refund': 2}
    """
    if sum(x is not None for x in (per_label, balance_to, counts)) != 1:
        raise ValueError("give exactly one of per_label= (rows for every label), balance_to= (fill each label up to N) "
                         "or counts= (rows per label named)")
    for column in (text_column, label_column):
        if column not in seeds.column_names:
            raise ValueError(f"seeds have no column {column!r} (columns: {seeds.column_names}); set text_column=/label_column=")
    seed_labels = label_names(seeds, label_column)
    if labels is None:
        feature = seeds.features[label_column]
        labels = list(feature.names) if isinstance(feature, ClassLabel) else sorted(set(seed_labels))
    labels = list(labels)
    if per_label is not None:
        wanted = dict.fromkeys(labels, per_label)
    elif counts is not None:
        wanted = {label: counts.get(label, 0) for label in labels}
    else:
        counted = Counter(label_names(real, label_column)) if real is not None else Counter(seed_labels)
        wanted = deficits(counted, labels, balance_to)
    by_label: dict[str, list[str]] = {}
    for text, label in zip(seeds[text_column], seed_labels):
        by_label.setdefault(label, []).append(text)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    render = env.from_string(template)
    block = env.from_string(CONTRAST_BLOCK) if contrast else None
    places_contrast = re.search(r"{{-?\s*contrast\s*-?}}", template) is not None
    rows: dict[str, list] = {"row_id": [], "messages": [], "label": [], "variation": []}
    for label in labels:
        examples = by_label.get(label, [])
        rng = random.Random(f"{seed}:{label}")
        rng.shuffle(examples)
        # Variations drawn without replacement: no two requests of a label repeat a combination
        # until all of them (8 personas x 7 tones x 4 lengths) have been used.
        variations = list(itertools.product(personas, TONES, LENGTHS))
        rng.shuffle(variations)
        other = (contrast or {}).get(label)
        for i in range(start, start + wanted[label]):
            shown = [_cut(text, max_example_chars) for text in _rotate(examples, i, shots)]
            avoid = None
            if other is not None:
                avoid = block.render(contrast_label_name=humanize(other[0]),
                                     contrast_examples=[_cut(t, max_example_chars) for t in _rotate(list(other[1]), i, shots)])
            _add_request(rows, render, system_prompt, label, shown, i, seed, variations[i % len(variations)], description,
                         avoid, places_contrast)
    return Dataset.from_dict(rows, features=PROMPT_FEATURES)


def _add_request(rows, render, system_prompt, label, shown, i, seed, variation, description, avoid=None, placed=False):
    persona, tone, length = variation
    extra = {"contrast": avoid or ""} if placed else {}
    user = render.render(label=label, label_name=humanize(label), examples=shown,
                         persona=persona, tone=tone, length=length, description=description, **extra)
    if avoid and not placed:
        user = with_block(user, avoid)
    messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [{"role": "user", "content": user}]
    rows["row_id"].append(row_id(label, i, messages, seed))
    rows["messages"].append(messages)
    rows["label"].append(label)
    rows["variation"].append(f"persona={persona}; tone={tone}; length={length}")


def with_block(text: str, block: str) -> str:
    """`block` inserted before the last paragraph of `text` (a template's answer-format line).

    >>> print(with_block(chr(10).join(["Write.", "", "Answer in JSON."]), "Not this."))
    Write.
    <BLANKLINE>
    Not this.
    <BLANKLINE>
    Answer in JSON.
    """
    head, sep, tail = text.rstrip("\n").rpartition("\n\n")
    if not sep:
        return text.rstrip("\n") + "\n\n" + block.rstrip("\n")
    return head + "\n\n" + block.rstrip("\n") + "\n\n" + tail


def _rotate(examples: list[str], i: int, shots: int) -> list[str]:
    """Request i sees `shots` examples starting at i*shots, wrapping: all seeds get shown in turn.

    >>> _rotate(["a", "b", "c", "d", "e"], 1, 2)
    ['c', 'd']
    >>> _rotate(["a", "b", "c"], 1, 2)
    ['c', 'a']
    """
    if not examples:
        return []
    k = min(shots, len(examples))
    start = (i * k) % len(examples)
    return [examples[(start + j) % len(examples)] for j in range(k)]


def _cut(text: str, limit: int | None) -> str:
    """`text` within `limit` characters, cut at a space and ending in '...' when it was longer.

    >>> _cut("one two three four", 12)
    'one two ...'
    """
    if limit is None or len(text) <= limit:
        return text
    head = text[: max(1, limit - 4)]
    return (head.rsplit(" ", 1)[0] if " " in head else head) + " ..."


def example_budget(prompt_tokens: int | None, shots: int) -> int | None:
    """Characters one shown seed may take when a request's prompt may use `prompt_tokens` tokens.

    The budget left after `PROMPT_OVERHEAD_TOKENS` for the template is shared by the shots, at a
    cautious 2 characters per token (English runs near 4); a seed past it is cut. The engine still
    refuses, as a recorded row error, a prompt that does not fit.

    >>> example_budget(1024 - 96, 3)
    448
    """
    if prompt_tokens is None:
        return None
    return max(100, (prompt_tokens - PROMPT_OVERHEAD_TOKENS) * 2 // max(1, shots))


def humanize(label: str) -> str:
    """`card_arrival` -> `card arrival`; labels read better in prompts without identifiers."""
    return label.replace("_", " ").replace("-", " ").strip()


def row_id(label: str, i: int, messages: list[dict], seed: int) -> str:
    """A stable id of the request: the same inputs always give the same id."""
    payload = json.dumps([label, i, messages, seed], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def parse(row: dict, completion, schema: dict | None) -> tuple[dict, str | None]:
    """Text from the JSON answer; the requested `label` stays, the model's goes to `model_label`."""
    fields, error = parse_json(row, completion, schema)
    text, model_label = fields.get("text"), fields.get("label")
    if text is not None:
        text = text.strip()
        if error is None and not text:
            error = "empty text"
    agrees = None if model_label is None else model_label == row.get("label")
    return {"text": text, "model_label": model_label, "label_agrees": agrees}, error


@dataclass
class ClassificationSeeds(SeedsConfig):
    """`seeds:` of a classification recipe: which columns hold the text and the label, which rows."""

    text_column: str = "text"
    label_column: str = "label"
    labels: list[str] | None = field(default=None, metadata={"help": "Labels to use; default: all."})
    per_label: int | None = field(default=None, metadata={"help": "Real rows drawn per label as seeds; default: all rows."})
    rare: dict[str, int] = field(default_factory=dict, metadata={"help": "label -> rows drawn, to make classes rare."})

    def __post_init__(self):
        if self.per_label is not None and self.per_label < 1:
            raise ValueError(f"per_label must be >= 1, got {self.per_label}")
        bad = {k: v for k, v in self.rare.items() if v < 0}
        if bad:
            raise ValueError(f"rare: row counts must be >= 0, got {bad}")


@dataclass
class ClassificationConfig(TaskConfig):
    """`task:` of a classification recipe."""

    per_label: int | None = field(default=None, metadata={"help": "Generate this many rows per label."})
    balance_to: int | None = field(default=None, metadata={"help": "Generate each label's deficit up to this count."})
    shots: int = field(default=3, metadata={"help": "Seed examples shown per request, rotated across requests."})
    max_chars: int | None = field(default=None, metadata={"help": "Cap on the generated text's length, enforced by the JSON grammar."})
    description: str | None = field(default=None, metadata={"help": "What the data is, e.g. 'messages customers send to a bank'; used by the prompts, the judge and the LM student."})
    prompt_template: str | None = field(default=None, metadata={"help": "Jinja template of a request (variables: label, label_name, examples, persona, tone, length, description); default: a neutral one."})
    system_prompt: str | None = field(default=None, metadata={"help": "System prompt of a request; default: a neutral one."})
    personas: list[str] | None = field(default=None, metadata={"help": "Who the requests ask the model to write as; default: neutral personas."})
    student_prompt: str | None = field(default=None, metadata={"help": "The LM student's question for a row ({text} is the row's text); default: from description."})

    def __post_init__(self):
        if self.per_label is not None and self.balance_to is not None:
            raise ValueError(EXACTLY_ONE)
        for name in ("per_label", "balance_to", "max_chars"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.shots < 0:
            raise ValueError(f"shots must be >= 0, got {self.shots}")
        if self.personas is not None and not self.personas:
            raise ValueError("personas: give at least one, or leave it out for the neutral defaults")
        if self.student_prompt is not None and "{text}" not in self.student_prompt:
            raise ValueError("student_prompt must contain {text}, where the row's text goes")


EXACTLY_ONE = "per_label / balance_to: set exactly one of per_label (rows per label) or balance_to (fill each label up to N)"


class Classification(Task):
    """Text classification: rows `text`, `label`; balanced per label; classifier or LM students."""

    name = "classification"
    parser = "classification"
    config_class = ClassificationConfig
    seeds_class = ClassificationSeeds
    columns = ("text", "label")
    text_column = "text"
    label_column = "label"
    metrics = ("accuracy", "macro_f1")
    metric_names = {"accuracy": "accuracy", "macro_f1": "macro-F1"}
    default_student = "classifier"
    card_template = "classification.md"
    hub_task_categories = ["text-classification"]

    def validate(self, recipe) -> None:
        from ..errors import RecipeError

        if self.config.per_label is None and self.config.balance_to is None:
            raise RecipeError(f"task.{EXACTLY_ONE}")

    def standardize(self, ds: Dataset, where: str) -> tuple[Dataset, dict[str, int]]:
        """Rows `text` and `label` (label names, also for ClassLabel ids); rows with an empty text or
        label are dropped and counted (an empty label would otherwise become a class of its own)."""
        from ..errors import DataError

        cfg = self.seeds
        for column in (cfg.text_column, cfg.label_column):
            if column not in ds.column_names:
                raise DataError(f"{where}: the data has no column {column!r} (it has {ds.column_names}); "
                                "set seeds.text_column / seeds.label_column")
        feature = ds.features[cfg.label_column]
        texts, raw = ds[cfg.text_column], ds[cfg.label_column]
        dropped: Counter = Counter()
        keep = []
        for i, (text, label) in enumerate(zip(texts, raw)):
            if text is None or not str(text).strip():
                dropped["empty text"] += 1
            elif label is None or (isinstance(label, str) and not label.strip()) or (isinstance(feature, ClassLabel) and label < 0):
                dropped["empty label"] += 1
            else:
                keep.append(i)
        names = label_names(ds.select(keep), cfg.label_column) if keep else []
        rows = Dataset.from_dict({"text": [texts[i] if isinstance(texts[i], str) else str(texts[i]) for i in keep], "label": names})
        return rows, dict(dropped)

    def with_data(self, real: Dataset) -> "Classification":
        """The task with its label set: `seeds.labels`, else every label of the real rows, sorted."""
        from ..errors import DataError

        present = set(real["label"])
        labels = list(self.seeds.labels) if self.seeds.labels else sorted(present)
        missing = sorted(set(labels) - present)
        if missing:
            raise DataError(f"seeds.labels: not in the data: {missing}")
        unknown_rare = sorted(set(self.seeds.rare) - set(labels))
        if unknown_rare:
            raise DataError(f"seeds.rare: labels not among the chosen labels: {unknown_rare}")
        return type(self)(self.config, self.seeds, labels)

    def draw_seeds(self, real: Dataset) -> Dataset:
        """`seeds.per_label` random rows of each label (`seeds.rare[label]` for rare ones; all by default)."""
        counts = {label: self.seeds.rare.get(label, self.seeds.per_label) for label in self.labels}
        picked = sample_per_group(real["label"], counts, self.seeds.seed)
        return real.select([i for label in self.labels for i in sorted(picked[label])])

    def restrict(self, rows: Dataset) -> Dataset:
        keep = set(self.labels)
        return rows.filter(lambda label: label in keep, input_columns="label")

    def prompts(self, seeds: Dataset, *, seed: int, per_label: int | None = None,
                prompt_tokens: int | None = None, counts: dict[str, int] | None = None, start: int = 0,
                contrast: dict | None = None) -> Dataset:
        """The requests (classification_prompts): `per_label` (else the task's amount) rows per label,
        or `counts` per label named, numbered from `start`, with `contrast` blocks when given."""
        cfg = self.config
        if counts is not None:
            amount = {"counts": counts}
        else:
            amount = {"per_label": per_label} if per_label is not None else {"per_label": cfg.per_label, "balance_to": cfg.balance_to}
        return classification_prompts(
            seeds, self.labels, **amount, shots=cfg.shots, seed=seed, template=cfg.prompt_template or PROMPT_TEMPLATE,
            system_prompt=cfg.system_prompt or SYSTEM_PROMPT, personas=cfg.personas or PERSONAS,
            description=cfg.description, max_example_chars=example_budget(prompt_tokens, cfg.shots),
            start=start, contrast=contrast)

    def json_schema(self) -> dict:
        return json_schema(self.labels, self.config.max_chars)

    @classmethod
    def parse(cls, row: dict, completion, json_schema: dict | None) -> tuple[dict, str | None]:
        return parse(row, completion, json_schema)

    @classmethod
    def features(cls, json_schema: dict | None) -> dict:
        return dict(FIELD_FEATURES)

    def student_prompt(self) -> str:
        """The LM student's user turn for a row ({text}): the recipe's, or a neutral one."""
        if self.config.student_prompt:
            return self.config.student_prompt
        if self.config.description:
            return STUDENT_PROMPT_DESCRIBED.replace("{description}", self.config.description)
        return STUDENT_PROMPT

    def judge_prompt(self) -> dict:
        """The judge's neutral questions, worded with the recipe's description of the data."""
        from ..checks.judge import DEFAULT_PROMPT

        what = self.config.description
        if not what:
            return dict(DEFAULT_PROMPT)
        escaped = what.replace("{", "{{").replace("}", "}}")  # the judge formats its questions with the row's fields
        return {**DEFAULT_PROMPT,
                "system": f"You review generated training data for a text classifier of {what}. You answer only with "
                          "the JSON object asked for, and you are strict: most generated examples have flaws.",
                "criteria": {**DEFAULT_PROMPT["criteria"],
                             "plausibility": f"Could this text really be one of {escaped}? 1 = no (meta-text, an answer "
                                             "instead of the text asked for, gibberish), 5 = yes, entirely natural."}}

    def score(self, predictions: Sequence, rows: Dataset) -> dict[str, float]:
        """Accuracy and macro-F1 over the task's labels (a prediction outside them counts as wrong)."""
        from ..evaluation import score_with

        index = {label: i for i, label in enumerate(self.labels)}
        return score_with(self.metrics, [index.get(p, -1) for p in predictions], [index.get(t, -1) for t in rows["label"]])

    def provenance(self, seeds: Dataset, prompts: Dataset, kept: Dataset) -> dict:
        cfg = self.config
        seed_counts, requested, kept_counts = Counter(seeds["label"]), Counter(prompts["label"]), Counter(kept["label"])
        return {
            "prompt": {"system": cfg.system_prompt or SYSTEM_PROMPT, "template": cfg.prompt_template or PROMPT_TEMPLATE,
                       "shots": cfg.shots, "personas": list(cfg.personas or PERSONAS), "description": cfg.description},
            "seeds": {"per_label": self.seeds.per_label, "rare": self.seeds.rare,
                      "balance_to": cfg.balance_to, "per_label_generated": cfg.per_label},
            "labels": [{"label": label, "seeds": seed_counts[label], "requested": requested[label], "kept": kept_counts[label]}
                       for label in self.labels],
        }
