"""LLM-as-judge: the generation engine scores each synthetic row, one score and reason per criterion.

The judge runs on the same vLLM engine as generation (same model and engine settings unless told
otherwise), batched like generation, with a JSON schema that makes every answer parseable:
`{"<criterion>_reason": str, "<criterion>": 1..5}` per criterion (the reason comes first, so the
score follows from it). Scores become the columns `judge_<criterion>`, reasons `judge_<criterion>_reason`;
a row is flagged when any score is below `min_score`. A row whose judgement could not be parsed keeps
None scores, is not flagged, and is counted in `judge_parse_error`.

Control: when real rows are bound (the seeds, from the recipe or a CheckContext), up to
`control_rows` of them are judged first. If the judge would remove more than
`max_control_rejected` of those real rows, its scores do not tell good rows from bad, and the check
stops with an error instead of deleting good data. The embedded 135M model is such a judge: it
scores nearly every message 1, real ones included (docs/checks-ablation.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from .basic import Check, label_name

logger = logging.getLogger(__name__)

CRITERIA = {
    "label_fit": "Does the message clearly belong to the intent {label!r} (and not to a neighbouring one)? "
                 "1 = it belongs elsewhere or nowhere, 5 = a clear example of this intent.",
    "plausibility": "Could a real customer have written this message to a bank's support chat? "
                    "1 = no (meta-text, an answer instead of a question, gibberish), 5 = yes, entirely natural.",
}

SYSTEM = ("You review training data for a customer-support intent classifier. You answer only with the JSON "
          "object asked for, and you are strict: most generated messages have flaws.")

TEMPLATE = """Intent label: {label}
Message: {text}

Rate the message on each criterion from 1 to 5, giving a short reason first.
{criteria}"""


def judge_schema(criteria: tuple[str, ...], reason_chars: int = 120) -> dict:
    properties: dict = {}
    for name in criteria:
        properties[f"{name}_reason"] = {"type": "string", "maxLength": reason_chars}
        properties[name] = {"type": "integer", "enum": [1, 2, 3, 4, 5]}
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


@dataclass
class Judge(Check):
    """Flags rows that the LLM judge scores below `min_score` on any criterion (see the module docstring)."""

    criteria: tuple[str, ...] = ("label_fit", "plausibility")
    min_score: int = 3
    model: str | None = None
    temperature: float = 0.0
    max_tokens: int = 320
    column: str = "text"
    label_column: str = "label"
    batch_size: int = 1000
    control_rows: int = 20
    max_control_rejected: float = 0.5
    engine: object = field(default=None, metadata={"report": False})  # EngineConfig; bound to generation's
    control: tuple[tuple[str, str], ...] | None = field(default=None, metadata={"report": False})  # real (text, label)
    label_names: tuple[str, ...] | None = field(default=None, metadata={"report": False})  # for integer labels
    name = "judge"
    needs = ("engine",)

    def __post_init__(self):
        self.criteria = tuple(self.criteria)
        unknown = set(self.criteria) - set(CRITERIA)
        if unknown or not self.criteria:
            raise ValueError(f"judge: criteria must be some of {list(CRITERIA)}, got {list(self.criteria)}")
        if not 1 <= self.min_score <= 5:
            raise ValueError(f"judge: min_score is on the 1-5 scale, got {self.min_score}")
        if self.control_rows < 0 or not 0 <= self.max_control_rejected <= 1:
            raise ValueError(f"judge: need control_rows >= 0 and max_control_rejected in [0, 1], got "
                             f"{self.control_rows} and {self.max_control_rejected}")

    def bind(self, context):
        out = self
        if context is not None and context.labels is not None and self.label_names is None:
            out = replace(out, label_names=tuple(context.labels))
        generator = (context.extra or {}).get("generator") if context is not None else None
        if generator is not None and out.engine is None:
            engine, model = generator
            out = replace(out, engine=engine, model=out.model if out.model is not None else model)
        if context is not None and out.control is None and context.real_texts is not None and context.real_labels is not None:
            pairs = [(str(t), str(label)) for t, label in zip(context.real_texts, context.real_labels) if t]
            pairs.sort(key=lambda pair: pair[1])  # evenly spaced over rows sorted by label: spread over the labels
            n = min(self.control_rows, len(pairs))
            picked = sorted({round(i * (len(pairs) - 1) / max(1, n - 1)) for i in range(n)})
            out = replace(out, control=tuple(pairs[i] for i in picked))
        return out

    def check_control(self) -> None:
        """Judge the bound real rows; stop if the judge would remove too many of them (see the module docstring)."""
        if not self.control or self.control_rows == 0:
            return
        texts, labels = zip(*self.control)
        judged = self.flag_batch({self.column: list(texts), self.label_column: list(labels)})
        # a real row the judge could not judge counts against it too: it has not shown it can judge
        bad = sum(f or e is not None for f, e in zip(judged[self.flag_column], judged[f"{self.name}_parse_error"]))
        logger.info("judge control: %d of %d real rows would be removed or were not judged", bad, len(texts))
        if bad > self.max_control_rejected * len(texts):
            raise ValueError(
                f"judge: the judge ({self.model or 'the embedded 135M model'}) would remove (or could not judge) "
                f"{bad} of {len(texts)} real rows judged as a control, so its scores do not separate good rows from bad; "
                "name a stronger judge (judge: {model: ...}), lower min_score, or set control_rows: 0 to filter anyway")

    def annotate(self, ds):
        from datasets import ClassLabel, Features, Value

        feature = ds.features.get(self.label_column)
        me = replace(self, label_names=tuple(feature.names)) if isinstance(feature, ClassLabel) else self
        if len(ds):
            me.check_control()
        # fixed types: a first batch whose parse errors (or scores) are all None would otherwise type
        # the column as null, and a later batch with a value could not be written
        columns = {f"{self.name}_parse_error": Value("string"), self.flag_column: Value("bool")}
        for name in self.criteria:
            columns[f"{self.name}_{name}"] = Value("int64")
            columns[f"{self.name}_{name}_reason"] = Value("string")
        return ds.map(me, batched=True, batch_size=self.batch_size, desc=f"check {self.name}",
                      features=Features({**ds.features, **columns}))

    def generator(self):
        from ..engine import EngineConfig
        from ..generate import Generate

        if self.engine is None and self.model is None:
            logger.warning("judge: no engine given (run it from a recipe, or pass engine=/model=): "
                           "judging with the embedded 135M model")

        return Generate(model=self.model, engine=self.engine or EngineConfig(),
                        sampling={"temperature": self.temperature, "max_tokens": self.max_tokens},
                        json_schema=judge_schema(self.criteria), parser="json")

    def messages(self, text: str | None, label) -> list[dict]:
        label = label_name(label, self.label_names)
        criteria = "\n".join(f"- {name}: {CRITERIA[name].format(label=label)}" for name in self.criteria)
        return [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": TEMPLATE.format(label=label, text=text or "", criteria=criteria)}]

    def flag_batch(self, batch):
        conversations = [self.messages(t, label) for t, label in zip(batch[self.column], batch[self.label_column])]
        judged = self.generator()({"messages": conversations})
        out = {f"{self.name}_parse_error": judged["parse_error"]}
        flags = [False] * len(conversations)
        for name in self.criteria:
            scores = judged[name]
            out[f"{self.name}_{name}"] = scores
            out[f"{self.name}_{name}_reason"] = judged[f"{name}_reason"]
            flags = [f or (s is not None and s < self.min_score) for f, s in zip(flags, scores)]
        out[self.flag_column] = flags
        return out
