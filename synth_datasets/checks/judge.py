"""LLM-as-judge: a model scores each synthetic row, one score and reason per criterion.

The judge runs on the generation engine (same model and engine settings unless told otherwise),
batched like generation, with a JSON schema that makes every answer parseable:
`{"<criterion>_reason": str, "<criterion>": 1..5}` per criterion (the reason comes first, so the
score follows from it). Scores become the columns `judge_<criterion>`, reasons `judge_<criterion>_reason`;
a row is flagged when any score is below `min_score`. A row whose judgement could not be parsed keeps
None scores, is not flagged, and is counted in `judge_parse_error`.

What the judge is asked comes from the task (`Task.judge_prompt()`: a system prompt, a template over
the row's fields and the task's criteria, worded from the recipe's `task.description`); a recipe
can pick criteria, add its own (`criteria: [label_fit, {polite: "Is the text polite? 1 = rude,
5 = courteous"}]`) or replace the system prompt and template. Without a task the neutral defaults
below are used.

Control: when real rows are bound (the seeds, from the recipe or a CheckContext), up to
`control_rows` of them are judged first, once, when the first batch is judged (a rerun served from
the `datasets` cache judges nothing). If the judge would remove more than `max_control_rejected` of
those real rows, its scores do not tell good rows from bad, and the check stops with an error
instead of deleting good data. The embedded 135M model is such a judge: it scores nearly every
message 1, real ones included (docs/checks-ablation.md). A judge with a model of its own releases
its engine when it is done, and on a GPU releases the generator's before it starts its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from .base import Check, label_name

logger = logging.getLogger(__name__)

# Neutral defaults for labelled text; tasks give their own through Task.judge_prompt().
SYSTEM = ("You review generated training data for a text classifier. You answer only with the JSON "
          "object asked for, and you are strict: most generated examples have flaws.")
TEMPLATE = """Label: {label}
Text: {text}

Rate the text on each criterion from 1 to 5, giving a short reason first.
{criteria}"""
CRITERIA = {
    "label_fit": "Does the text clearly belong to the label {label!r} (and not to a neighbouring one)? "
                 "1 = it belongs elsewhere or nowhere, 5 = a clear example of this label.",
    "plausibility": "Could a real person have written this text? "
                    "1 = no (meta-text, an answer instead of the text asked for, gibberish), 5 = yes, entirely natural.",
}
DEFAULT_PROMPT = {"system": SYSTEM, "template": TEMPLATE, "criteria": CRITERIA, "fields": ("text", "label")}
# for a task without labels that gives no prompt of its own: plausibility of the text only
UNLABELLED_PROMPT = {
    "system": "You review generated training data. You answer only with the JSON object asked for, and you are "
              "strict: most generated examples have flaws.",
    "template": "Text: {text}\n\nRate the text on each criterion from 1 to 5, giving a short reason first.\n{criteria}",
    "criteria": {"plausibility": CRITERIA["plausibility"]}, "fields": ("text",)}


def _gpu() -> bool:
    from ..hardware import has_cuda_gpu

    return has_cuda_gpu()


def judge_schema(criteria: tuple[str, ...], reason_chars: int = 120) -> dict:
    properties: dict = {}
    for name in criteria:
        properties[f"{name}_reason"] = {"type": "string", "maxLength": reason_chars}
        properties[name] = {"type": "integer", "enum": [1, 2, 3, 4, 5]}
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


@dataclass
class Judge(Check):
    """Flags rows that the LLM judge scores below `min_score` on any criterion (see the module docstring)."""

    criteria: tuple = ()  # names of the task's criteria and/or {name: question}; () = all of the task's
    min_score: int = 3
    model: str | None = None
    temperature: float = 0.0
    max_tokens: int = 320
    column: str | None = None
    label_column: str | None = None
    batch_size: int = 1000
    control_rows: int = 20
    max_control_rejected: float = 0.5
    system: str | None = None  # default: the task's
    template: str | None = None  # default: the task's; {criteria} and the row's fields ({text}, {label})
    engine: object = field(default=None, metadata={"report": False})  # EngineConfig; bound to generation's
    control: tuple | None = field(default=None, metadata={"report": False})  # real rows: tuples in `fields` order
    label_names: tuple[str, ...] | None = field(default=None, metadata={"report": False})  # for integer labels
    prompt: dict | None = field(default=None, metadata={"report": False})  # the task's judge prompt, bound
    keep_engine: bool = field(default=True, metadata={"report": False})  # False: release the engine when done
    generator_engine: object = field(default=None, metadata={"report": False})  # generation's, when the judge has its own
    name = "judge"
    family = "labels"
    needs = ("engine",)
    code_deps = ("synth_datasets.generate", "synth_datasets.engine", "synth_datasets.tasks.jsonparse")

    def __post_init__(self):
        self.criteria = tuple(self.criteria)
        for item in self.criteria:
            if not (isinstance(item, str) or (isinstance(item, dict) and len(item) == 1
                                              and all(isinstance(v, str) for v in item.values()))):
                raise ValueError(f"judge: a criterion is a name or {{name: question}}, got {item!r}")
        if not 1 <= self.min_score <= 5:
            raise ValueError(f"judge: min_score is on the 1-5 scale, got {self.min_score}")
        if self.control_rows < 0 or not 0 <= self.max_control_rejected <= 1:
            raise ValueError(f"judge: need control_rows >= 0 and max_control_rejected in [0, 1], got "
                             f"{self.control_rows} and {self.max_control_rejected}")
        if self.prompt is not None:  # unknown criterion names fail now; a task's are checked when bound (check_task)
            self.questions()
        self._engine_work = None

    @property
    def engine_work(self) -> dict | None:
        """What the judge's engine did in the last `annotate` (run_checks puts it in the report)."""
        return self._engine_work

    # -- what the judge is asked ----------------------------------------------------------------
    def _prompt(self) -> dict:
        return {**DEFAULT_PROMPT, **(self.prompt or {})}

    def questions(self) -> dict[str, str]:
        """{criterion: question}: the task's criteria named in `criteria` (all of them when empty),
        and the recipe's own."""
        known = self._prompt()["criteria"]
        if not self.criteria:
            return dict(known)
        out = {}
        for item in self.criteria:
            if isinstance(item, dict):
                out.update(item)
            elif item in known:
                out[item] = known[item]
            else:
                raise ValueError(f"judge: criteria: {item!r} is not one of the task's {sorted(known)}; "
                                 f"name one of those, or define it: {{{item}: \"question, 1 = ..., 5 = ...\"}}")
        return out

    def messages(self, values: dict) -> list[dict]:
        """The chat request for one row, `values` being its fields ({text, label} for classification)."""
        prompt = self._prompt()
        criteria = "\n".join(f"- {name}: {q.format(**values)}" for name, q in self.questions().items())
        user = (self.template or prompt["template"]).format(**values, criteria=criteria)
        return [{"role": "system", "content": self.system or prompt["system"]}, {"role": "user", "content": user}]

    def _values(self, row: dict) -> dict:
        fields = self._prompt()["fields"]
        columns = {"text": self.text_col, "label": self.label_col}
        values = {f: row.get(columns.get(f, f)) for f in fields}
        if "label" in values:
            values["label"] = label_name(values["label"], self.label_names)
        values["text"] = values.get("text") or ""
        return values

    def check_task(self, task) -> None:
        """The criteria asked for exist for this task (its judge prompt, or the defaults)."""
        from .context import CheckContext

        context = CheckContext(text_column=task.text_column, label_column=task.label_column,
                               extra={"judge_prompt": task.judge_prompt()})
        replace(self, control_rows=0).bind(context).questions()

    # -- binding and the control ------------------------------------------------------------------
    def bind(self, context):
        out = super().bind(context)
        if context is None:
            return out
        if context.labels is not None and out.label_names is None:
            out = replace(out, label_names=tuple(context.labels))
        extra = context.extra or {}
        if out.prompt is None and extra.get("judge_prompt") is not None:
            out = replace(out, prompt=dict(extra["judge_prompt"]))
        elif out.prompt is None and context.label_column is None:
            out = replace(out, prompt=dict(UNLABELLED_PROMPT))
        generator = extra.get("generator")
        if generator is not None and out.engine is None:
            engine, model = generator
            # with a model of its own the judge runs on an engine of its own, released when done
            own = out.model is not None and out.model != model
            out = replace(out, engine=engine, model=out.model if out.model is not None else model, keep_engine=not own,
                          generator_engine=replace(engine, model=model) if own else None)
        if out.control is None and (context.real_rows is not None or context.real_texts is not None):
            columns = out._columns()
            if context.real_rows is not None and set(out._prompt()["fields"]) - {"text", "label"}:
                # the judge reads more than a text and a label (instruction, input, output): whole rows
                records = list(context.real_rows)
            else:
                labels = context.real_labels if context.real_labels is not None else [None] * len(context.real_texts)
                records = [{out.text_col: t, out.label_col: label} for t, label in zip(context.real_texts, labels)]
            rows = [tuple(None if r.get(c) is None else str(r.get(c)) for c in columns) for r in records if r.get(out.text_col)]
            if out.label_col in columns:  # evenly spaced over rows sorted by label: spread over the labels
                at = columns.index(out.label_col)
                rows.sort(key=lambda row: row[at] or "")
            n = min(out.control_rows, len(rows))
            picked = sorted({round(i * (len(rows) - 1) / max(1, n - 1)) for i in range(n)})
            out = replace(out, control=tuple(rows[i] for i in picked))
        return out

    def _columns(self) -> list[str]:
        """The row columns the judge reads, in the order of its prompt's fields."""
        names = {"text": self.text_col, "label": self.label_col}
        return [names.get(f, f) for f in self._prompt()["fields"]]

    def check_control(self) -> None:
        """Judge the bound real rows; stop if the judge would remove too many of them (see the module docstring)."""
        if not self.control or self.control_rows == 0:
            return
        columns = self._columns()
        judged = self._judge({c: [row[i] for row in self.control] for i, c in enumerate(columns)})
        texts = self.control
        # a real row the judge could not judge counts against it too: it has not shown it can judge
        bad = sum(f or e is not None for f, e in zip(judged[self.flag_column], judged[f"{self.name}_parse_error"]))
        logger.info("judge control: %d of %d real rows would be removed or were not judged", bad, len(texts))
        if bad > self.max_control_rejected * len(texts):
            raise ValueError(
                f"judge: the judge ({self.model or 'the embedded 135M model'}) would remove (or could not judge) "
                f"{bad} of {len(texts)} real rows judged as a control, so its scores do not separate good rows from bad; "
                "name a stronger judge (judge: {model: ...}), lower min_score, or set control_rows: 0 to filter anyway")

    # -- running ------------------------------------------------------------------------------------
    def annotate(self, ds):
        from datasets import ClassLabel, Features, Value

        from .. import engine as engine_mod

        feature = ds.features.get(self.label_col)
        me = replace(self, label_names=tuple(feature.names)) if isinstance(feature, ClassLabel) else self
        if self.generator_engine is not None and len(ds) and _gpu():
            # two vLLM engines do not fit one GPU (each takes gpu_memory_utilization of it): the
            # generator's goes first; the next stage that generates starts it again
            engine_mod.release(self.generator_engine)
        me._generate = me.generator()
        # fixed types: a first batch whose parse errors (or scores) are all None would otherwise type
        # the column as null, and a later batch with a value could not be written
        columns = {f"{self.name}_parse_error": Value("string"), self.flag_column: Value("bool")}
        for name in me.questions():
            columns[f"{self.name}_{name}"] = Value("int64")
            columns[f"{self.name}_{name}_reason"] = Value("string")
        try:
            return ds.map(me, batched=True, batch_size=self.batch_size, desc=f"check {self.name}",
                          features=Features({**ds.features, **columns}))
        finally:
            self._engine_work = me._generate.stats.as_dict()
            if not self.keep_engine:
                engine_mod.release(me._generate.engine)

    def generator(self):
        from ..engine import EngineConfig
        from ..generate import Generate

        if self.engine is None and self.model is None:
            logger.warning("judge: no engine given (run it from a recipe, or pass engine=/model=): "
                           "judging with the embedded 135M model")
        return Generate(model=self.model, engine=self.engine or EngineConfig(),
                        sampling={"temperature": self.temperature, "max_tokens": self.max_tokens},
                        json_schema=judge_schema(tuple(self.questions())), parser="json")

    def flag_batch(self, batch):
        if not getattr(self, "_control_checked", False):  # once, before the first judged row
            self._control_checked = True
            self.check_control()
        return self._judge(batch)

    def _judge(self, batch):
        if getattr(self, "_generate", None) is None:
            self._generate = self.generator()
        n = len(batch[self.text_col])
        rows = [{k: batch[k][i] for k in batch} for i in range(n)]
        judged = self._generate({"messages": [self.messages(self._values(row)) for row in rows]})
        out = {f"{self.name}_parse_error": judged["parse_error"]}
        flags = [False] * n
        for name in self.questions():
            scores = judged[name]
            out[f"{self.name}_{name}"] = scores
            out[f"{self.name}_{name}_reason"] = judged[f"{name}_reason"]
            flags = [f or (s is not None and s < self.min_score) for f, s in zip(flags, scores)]
        out[self.flag_column] = flags
        return out
