"""Text classification: prompts per label from real seed rows, a JSON schema, a parser, balancing.

    prompts = classification_prompts(seeds, per_label=20)           # or balance_to=50
    gen = Generate(json_schema=json_schema(labels), parser="classification")
    synthetic = prompts.map(gen, batched=True, batch_size=1000)

Prompts show a few real examples of the requested label, rotated so that consecutive requests see
different seeds, and ask for a new message under a varied persona, tone and length so the outputs are
not near-copies of each other. The model answers `{"text": ..., "label": ...}`; the row keeps the
*requested* label in `label` (it is known by construction) and records what the model said in
`model_label`, with `label_agrees` to filter or audit on.

Balancing: with `balance_to=N`, each label gets only its deficit, N minus the rows it already has
in the real data (`real`, or the seeds themselves), so rare classes get the most synthetic rows.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections import Counter
from collections.abc import Sequence

import jinja2
from datasets import ClassLabel, Dataset, Features, List, Value

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

PROMPT_TEMPLATE = """\
Write one new message that a customer could send, with the intent "{{ label_name }}".

{% if examples %}Real messages with this intent:
{% for example in examples %}- {{ example }}
{% endfor %}
{% endif %}Rules:
- Write it as {{ persona }}, in a {{ tone }} tone, {{ length }}.
- It must clearly have the intent "{{ label_name }}" and no other.
- Do not copy an example. Write only the message: no greeting to me, no explanation.

Answer with a JSON object: "text" is your new message, "label" is "{{ label }}"."""

LENGTHS = ("in a few words", "in one short sentence", "in one or two sentences", "in two or three sentences")
TONES = ("neutral", "polite", "frustrated", "hurried", "casual", "formal", "worried")
PERSONAS = (
    "a student", "a retiree", "a small-business owner", "a frequent traveller",
    "a new customer", "a non-native English speaker", "a parent", "someone on their phone",
)


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


def label_names(ds: Dataset, column: str) -> list[str]:
    """The column's labels as strings (ClassLabel ids are mapped to their names)."""
    feature = ds.features[column]
    values = ds[column]
    if isinstance(feature, ClassLabel):
        return [feature.int2str(v) for v in values]
    return [str(v) for v in values]


def classification_prompts(
    seeds: Dataset,
    labels: Sequence[str] | None = None,
    *,
    per_label: int | None = None,
    balance_to: int | None = None,
    real: Dataset | None = None,
    text_column: str = "text",
    label_column: str = "label",
    shots: int = 3,
    seed: int = 0,
    template: str = PROMPT_TEMPLATE,
    system_prompt: str | None = SYSTEM_PROMPT,
) -> Dataset:
    """Chat requests asking for new examples of each label.

    Args:
        seeds: real rows with `text_column` and `label_column`; examples shown in the prompts.
        labels: labels to generate for; default: the ClassLabel names, or every label in the seeds,
            sorted. A label without seeds gets prompts with no examples (its name only).
        per_label: generate this many rows for every label; or
        balance_to: generate for each label only its deficit to this count, counted in `real`
            (default: in `seeds`).
        shots: seed examples shown per request (fewer if the label has fewer seeds).
        seed: drives which examples and which persona/tone/length each request gets.
        template: a Jinja template with `label`, `label_name`, `examples`, `persona`, `tone`, `length`.

    Input columns: `text_column`, `label_column`.
    Output columns: `row_id` (stable hash of the request), `messages`, `label` (requested),
        `variation` (the persona/tone/length the request asked for).

    >>> seeds = Dataset.from_dict({"text": ["hi card", "card late?", "refund pls"], "label": ["card", "card", "refund"]})
    >>> prompts = classification_prompts(seeds, balance_to=3)
    >>> dict(Counter(prompts["label"]))
    {'card': 1, 'refund': 2}
    """
    if (per_label is None) == (balance_to is None):
        raise ValueError("give exactly one of per_label= (rows for every label) or balance_to= (fill each label up to N)")
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
    else:
        counted = Counter(label_names(real, label_column)) if real is not None else Counter(seed_labels)
        wanted = deficits(counted, labels, balance_to)
    by_label: dict[str, list[str]] = {}
    for text, label in zip(seeds[text_column], seed_labels):
        by_label.setdefault(label, []).append(text)
    render = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True).from_string(template)
    rows: dict[str, list] = {"row_id": [], "messages": [], "label": [], "variation": []}
    for label in labels:
        examples = by_label.get(label, [])
        rng = random.Random(f"{seed}:{label}")
        rng.shuffle(examples)
        # Variations drawn without replacement: no two requests of a label repeat a combination
        # until all of them (8 personas x 7 tones x 4 lengths) have been used.
        variations = list(itertools.product(PERSONAS, TONES, LENGTHS))
        rng.shuffle(variations)
        for i in range(wanted[label]):
            _add_request(rows, render, system_prompt, label, examples, i, shots, seed, variations[i % len(variations)])
    return Dataset.from_dict(rows, features=PROMPT_FEATURES)


def _add_request(rows, render, system_prompt, label, examples, i, shots, seed, variation):
    shown = _rotate(examples, i, shots)
    persona, tone, length = variation
    user = render.render(label=label, label_name=humanize(label), examples=shown,
                         persona=persona, tone=tone, length=length)
    messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [{"role": "user", "content": user}]
    rows["row_id"].append(row_id(label, i, messages, seed))
    rows["messages"].append(messages)
    rows["label"].append(label)
    rows["variation"].append(f"persona={persona}; tone={tone}; length={length}")


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
