"""Checks for instruction-following rows: cut-off answers, refusals, and instructions a text model
cannot carry out (Self-Instruct's word filter)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from .base import Check

# Self-Instruct's filter (Wang et al. 2022, bootstrap_instructions.py): instructions naming these need
# something a text-only model cannot see or produce (an image, a file, a drawing, a web page).
SELF_INSTRUCT_WORDS = ("image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps",
                       "draw", "plot", "go to", "video", "audio", "music", "flowchart", "diagram")

# An answer that declines, apologises or talks about being an AI instead of doing the task.
REFUSAL = re.compile(
    r"\b(?:i'?m sorry|i am sorry|i apologi[sz]e|as an ai\b|as a language model|as an artificial intelligence|"
    r"i (?:can ?not|can'?t|am unable to|am not able to|won'?t be able to|do not have the ability|don'?t have the ability)"
    r" (?:help|assist|provide|answer|do|complete|fulfil|fulfill|create|generate|write|access|browse|see|view|open)|"
    r"i don'?t have access|i do not have access|i'?m not able to (?:help|assist|provide|answer))",
    re.IGNORECASE)


@dataclass
class Truncated(Check):
    """Flags rows whose generation stopped at max_tokens (`finish_reason == "length"`): an answer
    cut off mid-sentence teaches a student to stop mid-sentence."""

    name = "truncated"
    family = "structure"

    def flag_batch(self, batch):
        return {self.flag_column: [reason == "length" for reason in batch["finish_reason"]]}


@dataclass
class Refusal(Check):
    """Flags rows whose `column` (default: `output`) refuses, apologises or speaks as an AI within
    its first `window` characters ("I'm sorry, I cannot...", "As an AI language model...");
    `refusal_score` is the phrase found ("" when none)."""

    column: str | None = "output"
    window: int = 300
    name = "refusal"
    family = "structure"

    def __post_init__(self):
        if self.window < 1:
            raise ValueError(f"refusal: window is a number of characters >= 1, got {self.window}")

    def flag_batch(self, batch):
        found = []
        for text in batch[self.text_col]:
            match = REFUSAL.search((text or "")[: self.window])
            found.append(match.group(0) if match else "")
        return {f"{self.name}_score": found, self.flag_column: [bool(f) for f in found]}


@dataclass
class TextOnly(Check):
    """Flags instructions (`column`, default: the task's text column) that need what a text model
    cannot see or do: any of `words` as a whole word, case-insensitive (default: Self-Instruct's
    list: image, graph, picture, file, map, draw, plot, go to, video, audio, music, flowchart,
    diagram). `text_only_score` is the word found ("" when none)."""

    words: list[str] = field(default_factory=lambda: list(SELF_INSTRUCT_WORDS))
    column: str | None = None
    name = "text_only"
    family = "structure"

    def __post_init__(self):
        if not self.words:
            raise ValueError("text_only: give at least one word, or leave words out for Self-Instruct's list")

    def flag_batch(self, batch):
        pattern = blocked_pattern(tuple(self.words))
        found = []
        for text in batch[self.text_col]:
            match = pattern.search(text or "")
            found.append(match.group(0).lower() if match else "")
        return {f"{self.name}_score": found, self.flag_column: [bool(f) for f in found]}


@functools.lru_cache(maxsize=64)
def blocked_pattern(words: tuple[str, ...]) -> re.Pattern:
    """One regex matching any of `words` as whole words, case-insensitive.

    >>> bool(blocked_pattern(("go to", "map")).search("Go to the park")), bool(blocked_pattern(("map",)).search("bitmap"))
    (True, False)
    """
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)
