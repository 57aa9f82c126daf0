"""Structured extraction with ground truth known by construction: records first, then documents,
then realistic noise, with every character span still exact.

    records   sampled from the recipe's schema (records.py): Faker values in a locale, pools of the
              seed rows' own entities, lists; formulas and rules checked on every record
    documents the generator writes one document per record, shown a few real seed documents for
              style; every value is looked up in the text (exact, or in one of its allowed forms:
              "$1,200.00" / "1,200.00 USD" / "1.200,00"), its span recorded; a row whose value is
              missing, changed or ambiguous gets that reason as its `parse_error` and is dropped
              by the `parsed` check, counted in the card
    noise     typos, OCR confusions, case, punctuation, whitespace and line-break damage, section
              order, other value formats (spans.py), each at the recipe's rate, every edit through
              an offset map: afterwards `text[start:end]` is still each value's (noised) form; the
              clean text and spans are kept beside
    outputs   `entities` (character spans: start, end, label, text, value), `tokens` + `tags`
              (BIO, IOB2, the recipe's tokenizer), `record` (the ground truth as JSON) and
              `messages` (document -> JSON, TRL's conversational format)

The default prompt form is a few-shot list that the model continues in completion mode: real seed
documents with their values, then the new record's values and "Text:". For a 135M model this gave
no meta-text on the instruction task (docs/instruction-following.md); `prompt_form: chat` sends a
chat request instead, for strong generators.

`Extraction` is the task (tasks/base.py) recipes name as `kind: extraction`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from datasets import Dataset, Features, List, Value

from ..records import RecordSchema, SchemaError, surface_forms
from ..spans import Field, NoiseConfig, Span, SpanError, add_noise, check_spans, locate, to_bio
from .base import SeedsConfig, Task, TaskConfig, draw_count

logger = logging.getLogger(__name__)
MESSAGES = List({"role": Value("string"), "content": Value("string")})
ENTITY = {"start": Value("int64"), "end": Value("int64"), "label": Value("string"), "text": Value("string"),
          "value": Value("string")}
ENTITIES = List(ENTITY)
SEPARATOR = "###"
# the few-shot list's own markers: a document never contains them, so the model writing one has left
# its document (a small model goes on with "Text:" and a second try): the document ends there
STOPS = (SEPARATOR, "\nText:", "\nValues:")
LIST_HEADER = "Examples of {document}, each written to contain the values listed above it.\n"
EXAMPLE = "{sep}\nValues:\n{values}\nText:\n{text}\n"
CHAT_SYSTEM = "You write realistic example documents for training an information-extraction model. Reply with the document only."
CHAT_TEMPLATE = """Write {document} that contains each of these values, word for word:
{values}

Do not add other values of these kinds. Real examples of the style:
{examples}"""
EXTRACT_PROMPT = "Extract the values of this text as JSON.\n\nText: {text}"
JUDGE_TEMPLATE = """Document: {text}

Extracted values (JSON): {record}

Criteria:
{criteria}"""
JUDGE_CRITERIA = {
    "realistic": "Does the document read like a real one of its kind (not a list of values, no instructions or commentary)?",
    "consistent": "Does the document state each extracted value as the value of that field, and no conflicting one?",
}


MAX_REDRAWS = 100
DEFAULT_RECORDS = 100


def colliding(wanted: Sequence) -> list[str]:
    """The forms that two different fields of one record share ("440.58" as unit price and line
    total when the quantity is 1): a document that writes it cannot say which field it is, so such a
    record is drawn again (which the card counts: it shifts the distribution away from such records)."""
    owners: dict[str, set] = {}
    for label, value, forms in wanted:
        for form in forms or [value]:
            owners.setdefault(form.casefold(), set()).add(label)
    return sorted(form for form, labels in owners.items() if len(labels) > 1)


def _id(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()[:16]


# -- recipe sections ---------------------------------------------------------------------------------

@dataclass
class ExtractionSeeds(SeedsConfig):
    """`seeds:` of an extraction recipe: real documents with their entities as character spans
    (`entities`: [{start, end, label}]), or as tokens + BIO tags, and/or a ground-truth record."""

    text_column: str = "text"
    entities_column: str | None = field(default="entities", metadata={"help": "Column of [{start, end, label}] character spans (end exclusive)."})
    tokens_column: str | None = field(default="tokens", metadata={"help": "Tokens + BIO tags, used when there is no entities column."})
    tags_column: str | None = "tags"
    record_column: str | None = field(default=None, metadata={"help": "Column with the document's ground-truth record (a JSON object)."})
    count: int | None = field(default=None, metadata={"help": "Real documents drawn as seeds; default: all."})

    def __post_init__(self):
        if self.count is not None and self.count < 1:
            raise ValueError(f"count must be >= 1, got {self.count}")


@dataclass
class ExtractionConfig(TaskConfig):
    """`task:` of an extraction recipe."""

    schema: Any = field(default=None, metadata={"help": "The record schema: a JSON Schema file (relative to the recipe) or an inline mapping, with x- value sources (records.py)."})
    document: str = field(default="short texts", metadata={"help": "What the documents are, in the plural: 'restaurant search queries', 'invoices'."})
    records: int | None = field(default=None, metadata={"help": "Records (so documents) to generate; default 100 (or balance_to)."})
    balance_to: int | None = field(default=None, metadata={"help": "Instead of records: each entity label of an optional top-level field gets records that include it for its deficit to this many mentions in the seed rows, like balance_to of classification."})
    locale: str = field(default="en_US", metadata={"help": "Faker locale of generated names, companies, addresses."})
    pools: dict = field(default_factory=dict, metadata={"help": "Named lists of values for x-pool."})
    pools_from_seeds: bool = field(default=True, metadata={"help": "Each entity label of the seed rows becomes a pool of their texts."})
    prompt_form: str = field(default="complete", metadata={"help": "complete: few-shot list continued in completion mode; chat: a chat request."})
    shots: int = field(default=4, metadata={"help": "Seed documents shown per request."})
    noise: dict | None = field(default_factory=dict, metadata={"help": "Noise rates (spans.NoiseConfig fields); null: none."})
    tokenizer: str = field(default="whitespace", metadata={"help": "Tokens of the BIO output: whitespace (MIT Restaurant's) or words (punctuation apart)."})
    extract_prompt: str = field(default=EXTRACT_PROMPT, metadata={"help": "User turn of the document -> JSON pair; {text} is the document."})
    target: str = field(default="tags", metadata={"help": "What compare's student learns: tags (a token classifier, strict entity-level F1) or json (an LM writes the record, field F1; compare.student: lm)."})

    def __post_init__(self):
        if self.records is not None and self.balance_to is not None:
            raise ValueError("records / balance_to: set one of records (documents in all) or balance_to (fill each "
                             "entity type up to N mentions), not both")
        for name in ("records", "balance_to"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.shots < 0:
            raise ValueError("shots must be >= 0")
        if self.prompt_form not in ("complete", "chat"):
            raise ValueError(f"prompt_form: {self.prompt_form!r} is not known; choose complete or chat")
        if self.tokenizer not in ("whitespace", "words"):
            raise ValueError(f"tokenizer: {self.tokenizer!r} is not known; choose whitespace or words")
        if self.target not in ("tags", "json"):
            raise ValueError(f"target: {self.target!r} is not known; choose tags or json")
        if "{text}" not in self.extract_prompt:
            raise ValueError("extract_prompt must contain {text}, where the document goes")
        if self.noise is not None:
            try:
                NoiseConfig(**self.noise)
            except TypeError as err:
                known = ", ".join(f for f in NoiseConfig.__dataclass_fields__)
                raise ValueError(f"noise: {err}; known rates: {known}") from None

    def noise_config(self) -> NoiseConfig | None:
        return None if self.noise is None else NoiseConfig(**self.noise)


def load_schema(schema, base: Path | None = None) -> dict:
    """The schema mapping: inline, read from a JSON (or YAML) file, or a pydantic model's
    (`package.module:Class`, importable)."""
    if isinstance(schema, dict):
        return schema
    if not isinstance(schema, str) or not schema:
        raise SchemaError("task.schema: give a JSON Schema file or an inline mapping (see recipes/schemas/)")
    path = Path(schema).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    if not path.is_file() and re.fullmatch(r"[\w.]+:\w+", schema):  # a pydantic model: "package.module:Class"
        import importlib

        module, _, name = schema.partition(":")
        try:
            model = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as err:
            raise SchemaError(f"task.schema: cannot import {schema!r}: {err}") from None
        if not hasattr(model, "model_json_schema"):
            raise SchemaError(f"task.schema: {schema!r} is not a pydantic model (it has no model_json_schema)")
        return model.model_json_schema()
    if not path.is_file():
        raise SchemaError(f"task.schema: {str(path)!r} does not exist (relative paths start at the recipe's folder; "
                          "a pydantic model is named package.module:Class)")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)


def is_flat(record: dict) -> bool:
    """No nested objects (a list of plain values is a label that occurs more than once)."""
    return all(not isinstance(v, dict) and not (isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v))
               for v in record.values())


def show_values(record: dict) -> str:
    """A record as the prompt shows it: `- label: value` lines for a flat record (one line per value
    of a repeated label), indented JSON otherwise."""
    if is_flat(record):
        return "\n".join(f"- {k}: {x}" for k, v in record.items() for x in (v if isinstance(v, list) else [v]))
    return json.dumps(record, ensure_ascii=False, indent=1)


def entities_record(entities: Sequence[dict]) -> dict:
    """The record of a document known only by its entities: label -> text (a list where a label
    occurs more than once), in order of appearance."""
    out: dict[str, Any] = {}
    for e in sorted(entities, key=lambda e: e["start"]):
        if e["label"] in out:
            out[e["label"]] = (out[e["label"]] if isinstance(out[e["label"]], list) else [out[e["label"]]]) + [e["text"]]
        else:
            out[e["label"]] = e["text"]
    return out


class Extraction(Task):
    """Extraction / NER: rows `text`, `entities`, `record` (+ `tokens`, `tags`, `messages`); no labels."""

    name = "extraction"
    config_class = ExtractionConfig
    seeds_class = ExtractionSeeds
    columns = ("text", "entities", "record")
    text_column = "text"
    label_column = None
    parser_needs_schema = False  # documents are free text; parse finds the values in them
    # `target: tags` (default): the token classifier, scored by seqeval's strict IOB2 entity-level
    # precision, recall and F1 on the real test split; `target: json`: the LM student reads each
    # document and writes its record, scored field by field (micro-F1 over (field, value) pairs of its
    # greedy answers) and by the reference NLL of the record
    default_student = "tagger"
    TAG_METRICS = ("entity_f1", "entity_precision", "entity_recall")
    JSON_METRICS = ("field_f1", "nll")
    metric_names = {"entity_f1": "entity F1", "entity_precision": "precision", "entity_recall": "recall",
                    "field_f1": "field F1", "nll": "NLL/token"}
    percent_metrics = ("entity_f1", "entity_precision", "entity_recall", "field_f1")
    lower_is_better = ("nll",)

    @property
    def metrics(self) -> tuple[str, ...]:
        return self.TAG_METRICS if self.config.target == "tags" else self.JSON_METRICS

    card_template = "extraction.md"
    hub_task_categories = ["token-classification"]

    def __init__(self, config=None, seeds=None, labels=None):
        super().__init__(config, seeds, labels)
        self.entity_labels: list[str] | None = None

    def validate(self, recipe) -> None:
        """The schema is read here (relative to the recipe) and kept inline, so that the recipe's
        fingerprint (and the cache) follows the schema's content, not its path."""
        from ..errors import RecipeError

        for item in recipe.checks:
            if isinstance(item, dict) and "spans" in item or item == "spans":
                options = item.get("spans") or {} if isinstance(item, dict) else {}
                if options.get("tokenizer", "whitespace") != self.config.tokenizer:
                    raise RecipeError(f"checks: spans checks BIO tags with tokenizer {options.get('tokenizer', 'whitespace')!r} "
                                      f"but task.tokenizer is {self.config.tokenizer!r}; write "
                                      f"`- spans: {{tokenizer: {self.config.tokenizer}}}`")
        wants = {"tags": "tagger", "json": "lm"}[self.config.target]
        if recipe.compare.student is None and wants != self.default_student:
            raise RecipeError(f"compare.student: task.target {self.config.target!r} is learned by the {wants!r} "
                              f"student; set compare.student: {wants}")
        if recipe.compare.student is not None and recipe.compare.student != wants and recipe.compare.student in ("tagger", "lm"):
            raise RecipeError(f"compare.student: {recipe.compare.student!r} does not learn task.target "
                              f"{self.config.target!r}; use compare.student: {wants} (or change task.target)")

        try:
            self.config.schema = load_schema(self.config.schema, Path(recipe.base_dir))
            sampler = RecordSchema(self.config.schema, self.config.locale, {**self._placeholder_pools(), **self.config.pools})
            if self.config.balance_to is not None and not sampler.optional_fields():
                raise SchemaError("balance_to needs optional top-level fields with one value each (the entity types "
                                  "it fills up); this schema has none: use task.records")
        except SchemaError as err:
            raise RecipeError(f"task.schema: {err}") from None

    def _placeholder_pools(self) -> dict:
        """Pools the seed rows will fill (their labels are not known before the data is read)."""
        if not self.config.pools_from_seeds:
            return {}
        names = set()

        def walk(node):
            if isinstance(node, dict):
                if "x-pool" in node:
                    names.add(node["x-pool"])
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)
        walk(self.config.schema)
        return {n: ["?"] for n in names}

    # -- real rows ------------------------------------------------------------------------------
    def standardize(self, ds: Dataset, where: str) -> tuple[Dataset, dict[str, int]]:
        """Rows `text`, `entities` (spans checked against the text) and `record` (JSON). Rows with an
        empty text or a span that does not hold are dropped and counted."""
        from ..errors import DataError
        from ..spans import from_bio

        cfg = self.seeds if self.seeds is not None else self.seeds_class(path="")
        has_entities = cfg.entities_column and cfg.entities_column in ds.column_names
        has_bio = cfg.tokens_column in ds.column_names and cfg.tags_column in ds.column_names
        has_record = cfg.record_column and cfg.record_column in ds.column_names
        if not (has_entities or has_bio or has_record) or (has_entities and cfg.text_column not in ds.column_names):
            raise DataError(f"{where}: the data needs {cfg.text_column!r} + {cfg.entities_column!r} (character spans), "
                            f"{cfg.tokens_column!r} + {cfg.tags_column!r} (BIO), or a record column; it has "
                            f"{ds.column_names}. Set seeds.text_column / entities_column / tokens_column / record_column")
        rows: dict[str, list] = {"text": [], "entities": [], "record": []}
        dropped: Counter = Counter()
        for r in ds:
            if has_entities:
                text = str(r[cfg.text_column] or "")
                spans = [Span(int(e["start"]), int(e["end"]), str(e["label"]), text[int(e["start"]):int(e["end"])])
                         for e in (r[cfg.entities_column] or [])]
            elif has_bio:
                try:
                    text, spans = from_bio(r[cfg.tokens_column], r[cfg.tags_column])
                except SpanError:
                    dropped["bad BIO tags"] += 1
                    continue
            else:
                text, spans = str(r[cfg.text_column] or ""), []
            if not text.strip():
                dropped["empty text"] += 1
                continue
            if check_spans(text, spans):
                dropped["span does not hold"] += 1
                continue
            entities = [s.as_dict(text) for s in spans]
            if has_record:
                record = r[cfg.record_column]
                record = record if isinstance(record, str) else json.dumps(record, ensure_ascii=False, default=_plain)
            else:
                record = json.dumps(entities_record(entities), ensure_ascii=False)
            rows["text"].append(text)
            rows["entities"].append(entities)
            rows["record"].append(record)
        features = Features({"text": Value("string"), "entities": ENTITIES, "record": Value("string")})
        return Dataset.from_dict(rows, features=features), dict(dropped)

    def with_data(self, real: Dataset) -> "Extraction":
        """The task with its entity labels: those of the real rows and the schema's, sorted."""
        task = type(self)(self.config, self.seeds, self.labels)
        found = {e["label"] for entities in real["entities"] for e in entities}
        if isinstance(self.config.schema, dict):
            try:
                sampler = RecordSchema(self.config.schema, self.config.locale,
                                       {**self._placeholder_pools(), **self.config.pools})
                found |= {leaf_label for leaf_label in sampler.labels()}
            except SchemaError:
                pass
        task.entity_labels = sorted(found)
        return task

    def draw_seeds(self, real: Dataset) -> Dataset:
        """`seeds.count` random real rows (all by default), in file order."""
        return draw_count(real, self.seeds)

    # -- generation -----------------------------------------------------------------------------
    def record_schema(self, seeds: Dataset) -> RecordSchema:
        """The sampler, with pools from these seeds' entities (each draw only its own) and the recipe's."""
        pools: dict[str, list[str]] = {}
        if self.config.pools_from_seeds:
            for entities in seeds["entities"]:
                for e in entities:
                    pools.setdefault(e["label"], [])
                    if e["text"] not in pools[e["label"]]:
                        pools[e["label"]].append(e["text"])
        for name, values in self.config.pools.items():
            pools[name] = list(dict.fromkeys([*pools.get(name, []), *values]))
        # a pool no seed row fills stays empty: its optional fields are then never drawn
        pools = {**{n: [] for n in self._placeholder_pools()}, **pools}
        return RecordSchema(load_schema(self.config.schema), self.config.locale, pools)

    def prompts(self, seeds: Dataset, *, seed: int, per_label: int | None = None, prompt_tokens: int | None = None) -> Dataset:
        """One request per record: `row_id`, `prompt` (completion form) or `messages` (chat form),
        `record` (JSON), `wanted` (JSON list of [label, value, forms] to find in the document)."""
        cfg = self.config
        sampler = self.record_schema(seeds)
        plan = self.plan(seeds, sampler, per_label)
        examples = [(json.loads(r), t) for r, t in zip(seeds["record"], seeds["text"])]
        budget = None if prompt_tokens is None else max(400, 2 * prompt_tokens)  # chars, at a cautious 2 per token
        rows: dict[str, list] = {"row_id": [], "prompt": [], "messages": [], "record": [], "wanted": [], "redrawn": []}
        balanced = any(entry is not None for entry in plan)
        if balanced:
            rows["balancing"] = []  # the label a balancing record was asked for (only in balanced runs)
        for i, entry in enumerate(plan):
            # a free record's randomness and id follow its index, a balancing one's its label and its
            # index within that label: raising balance_to keeps every record drawn before
            where = i if entry is None else f"{entry[0]}:{entry[2]}"
            rng = random.Random(f"{seed}:extraction:{where}")
            include = () if entry is None else (entry[1],)
            for redrawn in range(MAX_REDRAWS):
                record = sampler.sample(rng, include=include)
                # a yes/no field has no words of its own in a text: it stays in the record, not among the spans
                wanted = [[leaf.label, str(leaf.value), surface_forms(leaf, node)] for leaf, node in sampler.leaves(record)
                          if leaf.kind != "boolean"]
                if not colliding(wanted):
                    break
            else:
                raise SchemaError(f"task.schema: {MAX_REDRAWS} records in a row had two fields with the same value "
                                  f"({colliding(wanted)}); a document could not say which is which. Widen the "
                                  "value ranges or pools")
            shown = rng.sample(examples, min(cfg.shots, len(examples)))
            shown = _fit(shown, budget)
            shown_record = sampler.written(record)  # money as 297.30, not 297.3: the form the document should use
            if cfg.prompt_form == "complete":
                listed = "".join(EXAMPLE.format(sep=SEPARATOR, values=show_values(r), text=t) for r, t in shown)
                prompt = (LIST_HEADER.format(document=cfg.document) + listed
                          + f"{SEPARATOR}\nValues:\n{show_values(shown_record)}\nText:\n")
                messages = []
            else:
                prompt = ""
                examples_text = "\n\n".join(t for _, t in shown) or "(none)"
                user = CHAT_TEMPLATE.format(document=f"one of {cfg.document}", values=show_values(shown_record),
                                            examples=examples_text)
                messages = [{"role": "system", "content": CHAT_SYSTEM}, {"role": "user", "content": user}]
            rows["row_id"].append(_id("extraction", seed, where, prompt, messages, record))
            rows["prompt"].append(prompt)
            rows["messages"].append(messages)
            rows["record"].append(json.dumps(record, ensure_ascii=False))
            rows["wanted"].append(json.dumps(wanted, ensure_ascii=False))
            rows["redrawn"].append(redrawn)
            if balanced:
                rows["balancing"].append(entry[0])
        features = {"row_id": Value("string"), "prompt": Value("string"), "messages": MESSAGES, "record": Value("string"),
                    "wanted": Value("string"), "redrawn": Value("int64")}
        return Dataset.from_dict(rows, features=Features({**features, **({"balancing": Value("string")} if balanced else {})}))

    def plan(self, seeds: Dataset, sampler: RecordSchema, per_label: int | None = None) -> list[tuple | None]:
        """One entry per record to draw: None (fields chosen as the schema says), or (label, field,
        index within the label) for a record that must include that field. `per_label` (compare's
        amount) or `records` give that many free records; `balance_to: N` gives each entity label of
        an optional top-level field N minus its mentions in the seed rows records that include it
        (`deficits`), so the labels the seeds show least get the most, as `balance_to` does for the
        labels of a classification recipe."""
        from ..errors import RecipeError

        cfg = self.config
        if per_label is not None or cfg.balance_to is None:
            return [None] * (per_label or cfg.records or DEFAULT_RECORDS)
        asked, unfilled = self.deficits(seeds, sampler)
        if unfilled:
            logger.warning("balance_to: no seed row has an entity of %s, and no other source gives the field values: "
                           "those labels get no records (give task.pools or x-values/x-faker for them)", sorted(unfilled))
        if not asked:
            raise RecipeError(f"task.balance_to: every label already has {cfg.balance_to} mentions in the seed rows, "
                              "or none can be drawn: nothing to generate (raise balance_to)")
        fields: dict[str, list[str]] = {}
        for name, label in sampler.optional_fields().items():
            fields.setdefault(label, []).append(name)
        # two fields with one label take turns
        return [(label, fields[label][j % len(fields[label])], j) for label in sorted(asked) for j in range(asked[label])]

    def deficits(self, seeds: Dataset, sampler: RecordSchema) -> tuple[dict[str, int], dict[str, int]]:
        """`balance_to`'s records per label: (asked, unfilled). A label whose field has no values to
        draw (its pool is empty: no seed row has that entity) cannot be asked for: unfilled."""
        mentions = self.mentions(seeds)
        drawable = set(sampler.optional_fields().values())
        asked, unfilled = {}, {}
        for label in sorted(set(sampler.optional_fields(drawable=False).values())):
            need = max(0, self.config.balance_to - mentions[label])
            if need:
                (asked if label in drawable else unfilled)[label] = need
        return asked, unfilled

    @staticmethod
    def mentions(rows: Dataset) -> Counter:
        """Entity mentions per label in these rows."""
        return Counter(e["label"] for entities in rows["entities"] for e in entities)

    def synthesize(self, seeds: Dataset, runner, *, seed: int, per_label: int | None = None) -> Dataset:
        prompts = self.prompts(seeds, seed=seed, per_label=per_label, prompt_tokens=runner.prompt_tokens())
        if self.config.prompt_form == "complete":
            gen = runner.generator(parser=self.name, sampling={"stop": STOPS}, prompt_column="prompt")
        else:
            gen = runner.generator(parser=self.name)
        out = runner(prompts, gen, stage="generate")
        return out.map(self.finish, with_indices=False, desc="noise and spans", features=self.output_features(out.features))

    def output_features(self, features: Features) -> Features:
        return Features({**features, "clean_text": Value("string"), "clean_entities": ENTITIES, "noise": Value("string"),
                         "tokens": List(Value("string")), "tags": List(Value("string")), "messages": MESSAGES})

    def finish(self, row: dict) -> dict:
        """Noise (seeded by the row id), BIO tags and the extraction pair of one generated row. A row
        that failed to parse passes through with empty outputs; a span the tokenizer cannot tag
        becomes its parse_error."""
        out = {"clean_text": row["text"], "clean_entities": row["entities"], "noise": None, "tokens": [], "tags": [],
               "messages": []}
        if row["parse_error"] is not None or row["text"] is None:
            return out
        spans = [Span(e["start"], e["end"], e["label"], e["value"]) for e in row["entities"]]
        text, noise = row["text"], self.config.noise_config()
        if noise is not None:
            rng = random.Random(f"noise:{row['row_id']}")
            forms = {(w[0], w[1]): w[2] for w in json.loads(row["wanted"])}
            text, spans, report = add_noise(text, spans, noise, rng, lambda s: forms.get((s.label, s.value), []))
            out["noise"] = json.dumps(report.applied, sort_keys=True)
        entities = [s.as_dict(text) for s in spans]
        try:
            tokens, tags = to_bio(text, spans, self.config.tokenizer)
        except SpanError as err:
            return {**out, "text": text, "entities": entities, "parse_error": f"tokens: {err}"}
        return {**out, "text": text, "entities": entities, "tokens": tokens, "tags": tags,
                "messages": self.pair(text, row["record"])}

    def pair(self, text: str, record: str) -> list[dict]:
        """The document -> JSON extraction pair in TRL's conversational format."""
        return [{"role": "user", "content": self.config.extract_prompt.format(text=text)},
                {"role": "assistant", "content": json.dumps(json.loads(record), ensure_ascii=False)}]

    @classmethod
    def parse(cls, row: dict, completion, json_schema: dict | None) -> tuple[dict, str | None]:
        """The document and the spans of the record's values in it; never raises. Errors: cut off,
        empty, and every value that is missing or ambiguous (the reasons joined)."""
        empty = {"text": None, "entities": []}
        if completion.finish_reason == "length":
            return empty, "cut off at max_tokens"
        text = re.split("|".join(map(re.escape, STOPS)), completion.text or "")[0].strip().strip('"').strip()
        if not text:
            return empty, "empty document"
        wanted = [Field(label, value, tuple(forms)) for label, value, forms in json.loads(row["wanted"])]
        spans, problems = locate(text, wanted)
        if problems:
            return {"text": text, "entities": []}, "; ".join(problems)
        return {"text": text, "entities": [s.as_dict(text) for s in spans]}, None

    @classmethod
    def features(cls, json_schema: dict | None) -> dict:
        return {"text": Value("string"), "entities": ENTITIES}

    # -- students ---------------------------------------------------------------------------------
    def tag_set(self) -> list[str]:
        from ..students.tagger import tag_names

        if self.entity_labels is None:
            raise ValueError("the task has no entity labels yet: call with_data(real rows) first")
        return tag_names(self.entity_labels)

    def words_and_tags(self, rows) -> tuple[list[list[str]], list[list[str]]]:
        """Each row's tokens (the recipe's tokenizer) and IOB2 tags, from its text and spans. A span
        the tokens cannot hold is left out of the tags (real data only: generated rows with one
        were dropped)."""
        words, tags = [], []
        for text, entities in zip(rows["text"], rows["entities"]):
            spans = [Span(e["start"], e["end"], e["label"], e.get("value") or e["text"]) for e in entities]
            try:
                w, t = to_bio(text, spans, self.config.tokenizer)
            except SpanError:
                w, t = to_bio(text, [s for s in spans if _fits(text, s, self.config.tokenizer)], self.config.tokenizer)
            words.append(w)
            tags.append(t)
        return words, tags

    def conversations(self, rows) -> dict[str, list]:
        """Document -> JSON pairs in TRL's conversational prompt-completion shape."""
        talk = [self.pair(t, r) for t, r in zip(rows["text"], rows["record"])]
        return {"prompt": [t[:1] for t in talk], "completion": [t[1:] for t in talk]}

    def score(self, predictions: Sequence, rows) -> dict[str, float]:
        if self.config.target == "tags":
            return self.score_tags(predictions, rows)
        return self.score_json(predictions, rows)

    def score_tags(self, predictions: Sequence[Sequence[str]], rows) -> dict[str, float]:
        """Strict entity-level precision, recall and F1 (seqeval, IOB2: an entity counts only when its
        type and both ends match) of predicted tags against the rows' own."""
        from seqeval.metrics import f1_score, precision_score, recall_score
        from seqeval.scheme import IOB2

        if len(predictions) != len(rows):
            raise ValueError(f"{len(predictions)} predictions for {len(rows)} rows")
        _, gold = self.words_and_tags(rows)
        pred = [list(p) for p in predictions]
        kw = {"mode": "strict", "scheme": IOB2, "zero_division": 0}
        return {"entity_f1": float(f1_score(gold, pred, **kw)), "entity_precision": float(precision_score(gold, pred, **kw)),
                "entity_recall": float(recall_score(gold, pred, **kw))}

    def score_json(self, predictions: Sequence, rows) -> dict[str, float]:
        """`field_f1`: micro-F1 of the (field, value) pairs in the answers read as JSON against the
        records' (values compared case-folded, whitespace collapsed; an answer that is not JSON
        predicts nothing), over the rows that have an answer; `nll`: the mean reference NLL."""
        if len(predictions) != len(rows):
            raise ValueError(f"{len(predictions)} predictions for {len(rows)} rows")
        tp = n_pred = n_gold = 0
        for p, record in zip(predictions, rows["record"]):
            if p.get("answer") is None:
                continue
            gold = field_pairs(json.loads(record))
            try:
                pred = field_pairs(json.loads(p["answer"]))
            except (ValueError, TypeError, AttributeError):
                pred = Counter()
            tp += sum((gold & pred).values())
            n_pred += sum(pred.values())
            n_gold += sum(gold.values())
        nll = [p["nll"] for p in predictions if p.get("nll") is not None]
        return {"field_f1": 2 * tp / (n_pred + n_gold) if n_pred + n_gold else float("nan"),
                "nll": sum(nll) / len(nll) if nll else float("nan")}

    # -- checks, judge, card ---------------------------------------------------------------------------
    def judge_prompt(self) -> dict:
        return {"system": "You review generated training data for an information-extraction model: a document and "
                          "the values it should contain. You answer only with the JSON object asked for, and you are "
                          "strict.",
                "template": JUDGE_TEMPLATE, "criteria": dict(JUDGE_CRITERIA), "fields": ("text", "record")}

    def provenance(self, seeds: Dataset, prompts: Dataset, kept: Dataset) -> dict:
        cfg = self.config
        labels = self.mentions(kept) if len(kept) else Counter()
        seed_labels = self.mentions(seeds)
        noise = Counter()
        if "noise" in kept.column_names:
            for n in kept["noise"]:
                noise.update(json.loads(n) if n else {})
        return {"prompt": {"form": cfg.prompt_form, "document": cfg.document, "shots": cfg.shots,
                           "template": (LIST_HEADER.format(document=cfg.document)
                                        + EXAMPLE.format(sep=SEPARATOR, values="<a seed's values>", text="<its text>")
                                        + f"{SEPARATOR}\nValues:\n<the record's values>\nText:\n")
                           if cfg.prompt_form == "complete" else CHAT_SYSTEM + "\n\n" + CHAT_TEMPLATE},
                "records": {"requested": len(prompts),
                            "redrawn": int(sum(prompts["redrawn"])) if "redrawn" in prompts.column_names else 0,
                            "balance_to": cfg.balance_to,
                            "balancing": dict(Counter(prompts["balancing"])) if "balancing" in prompts.column_names else {},
                            "unfilled": self.deficits(seeds, self.record_schema(seeds))[1] if cfg.balance_to else {}},
                "schema": cfg.schema, "locale": cfg.locale, "noise": cfg.noise, "tokenizer": cfg.tokenizer,
                "entities": {"seeds": dict(seed_labels), "kept": dict(labels)}, "noise_applied": dict(noise)}


def _fits(text: str, span: Span, tokenizer: str) -> bool:
    try:
        to_bio(text, [span], tokenizer)
        return True
    except SpanError:
        return False


def _plain(value):
    """JSON for what `load_dataset` made of a record's values: Arrow reads "2024-02-12" as a date."""
    import datetime as dt

    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date().isoformat()
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} in a record is not JSON")


def _fit(shown: list, budget: int | None) -> list:
    """Shown examples, long ones dropped until they fit `budget` characters."""
    if budget is None:
        return shown
    out, used = [], 0
    for record, text in shown:
        size = len(text) + len(show_values(record)) + 24
        if used + size <= budget:
            out.append((record, text))
            used += size
    return out


def field_pairs(record) -> Counter:
    """The (field path without list indices, normalised value) pairs of a record, with counts."""
    out: Counter = Counter()

    def walk(value, path):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(value, list):
            for v in value:
                walk(v, path)
        elif value is not None:
            out[(path, " ".join(str(value).casefold().split()))] += 1

    if not isinstance(record, dict):
        raise TypeError("a record is a JSON object")
    walk(record, "")
    return out


def span_problems(text: str, entities: Sequence[dict], tokens: Sequence[str] | None = None,
                  tags: Sequence[str] | None = None, tokenizer: str = "whitespace") -> list[str]:
    """What does not hold in a row: each span against the text (`text[start:end]` is its recorded
    `text`), overlaps, and the BIO tags against the spans. Empty when everything holds."""
    spans = [Span(e["start"], e["end"], e["label"], e.get("value") or e["text"]) for e in entities]
    problems = check_spans(text, spans, [e["text"] for e in entities])
    if not problems and tags is not None:
        try:
            expected = to_bio(text, spans, tokenizer)
        except SpanError as err:
            problems.append(str(err))
        else:
            if expected != (list(tokens or []), list(tags)):
                problems.append("the BIO tags do not match the spans")
    return problems


__all__ = ["Extraction", "ExtractionConfig", "ExtractionSeeds", "span_problems"]
