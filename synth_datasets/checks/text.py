"""What a generator writes instead of data: meta-text, refusals, template placeholders, echoed labels.

Patterns are kept narrow on purpose: on the 10,003 real banking77 training messages they flag none
(a test holds that), while on the embedded 135M generator's output they catch text such as "Here's a
JSON object and a custom message: ...", "I'm sorry, but I am unable to fulfill your request",
"Dear [Recipient], ..." and a bare "card_delivery_estimate".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from .base import Check, normalize_text

KINDS = ("refusal", "meta", "placeholder", "label_echo")

_QUALIFIER = r"(?:rewritten|paraphrased|revised|reworded|new|sample|example|generated|another|alternative|possible|simple|custom|short|customer)"
_OBJECT = r"(?:version|rewrite|paraphrase|message|text|sentence|example|query|request|response|output)s?"
_META = re.compile(
    r"^\W*(?:sure|certainly|of course|absolutely)\b[\s,!.:]*(?:here|i can|i'll|i will|below)\b"   # "Sure! Here is..."
    rf"|^\W*here(?:'s|’s| is| are)\s+(?:(?:a|an|the|your|my|one|some)\s+)?(?:\w+\s+){{0,2}}?{_QUALIFIER}\s+{_OBJECT}\b"
    rf"|\bhere(?:'s|’s| is| are)\s+(?:(?:a|an|the|your|my|one|some)\s+)?{_QUALIFIER}\s+{_OBJECT}\b"
    rf"|\b(?:rewritten|paraphrased|revised|reworded)\s+{_OBJECT}\b"
    r"|\bas an ai\b|\bai language model\b|\bjson (?:object|format|response|output)\b"
    r"|^\W*this (?:message|text) (?:is about|contains|is written|describes)\b|\bthe (?:above|following) (?:message|text)\b"
    r"|\bintent(?:ion)?\s*(?:label|:)"
    r"|^\s*(?:text|message|customer message|output|answer|response)\s*\d*\s*:",
    re.IGNORECASE)
_REFUSAL = re.compile(
    r"^\W*(?:\w+\W+){0,3}?I(?:'m|’m| am)\s+(?:sorry|afraid),?\s+(?:but\s+)?(?:I\s+)?(?:can(?:no|'|’)t|am unable to|'m unable to|am not able to|cannot)"
    r"\s+(?:help|assist|fulfil+|provide|comply|complete|process|do)\s+(?:you\s+)?(?:with\s+)?(?:that|this|your|the)\s+(?:request|query|question|task|situation)"
    r"|\bI(?:'m|’m| am)\s+(?:unable|not able)\s+to\s+(?:assist|help|fulfil+|comply)\s+(?:you\s+)?(?:with\s+)?(?:that|this|your)\s+(?:request|query|question)"
    r"|\bI\s+can(?:no|'|’)t\s+(?:assist|help)\s+(?:you\s+)?with\s+(?:that|this)\s*(?:request|query)?\s*[.!]",
    re.IGNORECASE)
_PLACEHOLDER = re.compile(
    r"\[[^\]\n]{1,60}\]"                 # [Account_Name], [date], [insert amount]
    r"|\{[A-Za-z_#][^}\n]{0,40}\}"        # {label}, {dest}
    r"|<[A-Za-z_][A-Za-z0-9_ ]{1,40}>"   # <name>
    r"|\bX{3,}\b")                       # XXXX
_PATTERNS = {"meta": _META, "refusal": _REFUSAL, "placeholder": _PLACEHOLDER}


def meta_kind(text: str | None, label_names: frozenset[str] = frozenset(), kinds: tuple[str, ...] = KINDS) -> str:
    """'' for clean text, else the first of `kinds` that matches (meta, refusal, placeholder, label_echo)."""
    if not text:
        return ""
    for kind in kinds:
        if kind == "label_echo":
            if label_names:
                norm, lowered = normalize_text(text), text.lower()
                if norm in label_names or any("_" in name and name in lowered for name in label_names):
                    return kind
        elif _PATTERNS[kind].search(text):
            return kind
    return ""


@dataclass
class MetaText(Check):
    """Flags meta-text ("Here's a rewritten version..."), refusals, placeholders ("[Account_Name]") and
    texts that are, or contain, a label identifier. `meta_text_score` says which kind matched."""

    column: str | None = None
    kinds: tuple[str, ...] = KINDS
    labels: tuple[str, ...] | None = field(default=None, metadata={"report": False})
    name = "meta_text"
    family = "structure"

    def __post_init__(self):
        self.kinds = tuple(self.kinds)
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"meta_text: unknown kinds {sorted(unknown)}; choose from {list(KINDS)}")

    def bind(self, context):
        out = super().bind(context)
        if out.labels is None and context is not None and context.labels is not None:
            return replace(out, labels=tuple(context.labels))
        return out

    def flag_batch(self, batch):
        names = frozenset()
        if "label_echo" in self.kinds and self.labels:
            names = frozenset(n for label in self.labels for n in (str(label).lower(), normalize_text(str(label))))
        kinds = [meta_kind(t, names, self.kinds) for t in batch[self.text_col]]
        return {f"{self.name}_score": kinds, self.flag_column: [bool(k) for k in kinds]}
