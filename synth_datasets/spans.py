"""Character spans that stay exact: finding values in a text, editing it through an offset map,
realistic noise, and the conversion to tokens + BIO tags and back.

A span is `(start, end, label, value)`: `text[start:end]` is what the document says (its surface
form), `value` the ground truth it stands for. Before noise the two are equal or the surface form is
one of the value's allowed formats; noise may change the surface form ("Paris" -> "Pari s"), never
the value, and every edit goes through `EditedText.replace`, which moves, grows or shrinks the spans
with it, so that after any number of edits `text[start:end]` is still the span's surface form.

No model, no I/O: plain functions over strings, used by the extraction task, its checks and tests.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Callable, Iterable, Sequence


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str
    value: str  # the ground truth, as text; text[start:end] is its surface form in the document

    def as_dict(self, text: str) -> dict:
        return {"start": self.start, "end": self.end, "label": self.label, "text": text[self.start:self.end],
                "value": self.value}


class SpanError(ValueError):
    """A span that does not hold: out of range, empty, overlapping another, or off token boundaries."""


def check_spans(text: str, spans: Sequence[Span], surfaces: Sequence[str] | None = None) -> list[str]:
    """What is wrong with `spans` over `text` (empty when nothing is): out of range, empty, starting or
    ending in whitespace, overlapping, or (with `surfaces`) `text[start:end]` not the recorded form."""
    problems = []
    for i, s in enumerate(spans):
        if not (0 <= s.start < s.end <= len(text)):
            problems.append(f"span {i} ({s.label}) [{s.start}, {s.end}) is outside the text or empty")
            continue
        piece = text[s.start:s.end]
        if piece != piece.strip():
            problems.append(f"span {i} ({s.label}) {piece!r} starts or ends in whitespace")
        if surfaces is not None and piece != surfaces[i]:
            problems.append(f"span {i} ({s.label}) reads {piece!r}, recorded as {surfaces[i]!r}")
    ordered = sorted((s for s in spans if 0 <= s.start < s.end <= len(text)), key=lambda s: (s.start, s.end))
    for a, b in zip(ordered, ordered[1:]):
        if b.start < a.end:
            problems.append(f"spans overlap: {a.label} [{a.start}, {a.end}) and {b.label} [{b.start}, {b.end})")
    return problems


# ---------------------------------------------------------------------------------------------
# Finding values in a generated document


def _is_word_char(ch: str) -> bool:
    return ch.isalnum()


def occurrences(text: str, form: str, ignore_case: bool = True) -> list[tuple[int, int]]:
    """Every place `form` occurs in `text` as a whole: not inside a longer word or number (a letter
    or digit does not continue it, and neither does a decimal or thousands mark followed by a digit:
    "2" is not in "12", "2024" or "2.50"). Case is ignored character by character, so offsets are
    the text's own whatever letters it holds ("ß", "İ")."""
    if not form:
        return []
    found = []
    pattern = re.compile("(?=(" + re.escape(form) + "))", re.IGNORECASE if ignore_case else 0)
    for m in pattern.finditer(text):
        at, end = m.start(1), m.end(1)
        before = at == 0 or not (_is_word_char(form[0]) and (
            _is_word_char(text[at - 1]) or (form[0].isdigit() and text[at - 1] in ".," and at > 1 and text[at - 2].isdigit())))
        after = end == len(text) or not (_is_word_char(form[-1]) and (
            _is_word_char(text[end]) or (form[-1].isdigit() and text[end] in ".," and end + 1 < len(text)
                                         and text[end + 1].isdigit())))
        if before and after:
            found.append((at, end))
    return found


@dataclass(frozen=True)
class Field:
    """One value the document must contain: its label, its ground truth as text, and the surface
    forms the document may write it in (the value itself first)."""

    label: str
    value: str
    forms: tuple[str, ...] = ()

    def all_forms(self) -> list[str]:
        seen, out = set(), []
        for f in (self.value, *self.forms):
            f = f.strip()
            if f and f not in seen:
                seen.add(f)
                out.append(f)
        return out


_NUMBER = re.compile(r"^[$€£¥]?\s?[\d.,]+(\s?[A-Z]{3})?$")


def locate(text: str, wanted: Sequence[Field], ignore_case: bool = True) -> tuple[list[Span], list[str]]:
    """The spans of `wanted` values in `text`, and the reasons the row cannot be used (empty when it
    can). Each distinct (label, value) is found in any of its allowed forms; where a match lies inside
    a longer one (another value, or a longer form), the longer one wins, and overlapping matches of
    one value ("$1,200.00" and "1,200.00 USD" in "$1,200.00 USD") become one span. Then:
    - fewer places than the record has copies of it: "missing" (a value the text does not state,
      or states once where the record has it twice);
    - a number written more often than the record has it ("2" as a quantity and as a line number):
      "ambiguous", since which one is the value cannot be told; a name or word said again is the same
      entity said again, and every place is labelled;
    - a place shared with another value of a different label: "ambiguous";
    - places of different values that overlap: "ambiguous"."""
    copies: dict[tuple[str, str], int] = {}
    forms: dict[tuple[str, str], list[str]] = {}
    for w in wanted:
        key = (w.label, w.value)
        copies[key] = copies.get(key, 0) + 1
        forms.setdefault(key, [])
        forms[key] += [f for f in w.all_forms() if f not in forms[key]]
    keys = list(copies)
    candidates: list[tuple[int, int, int]] = []  # (start, end, index into keys)
    for i, key in enumerate(keys):
        for form in forms[key]:
            candidates += [(s, e, i) for s, e in occurrences(text, form, ignore_case)]
    candidates = sorted(set(candidates))
    kept = [c for c in candidates
            if not any(o[0] <= c[0] and c[1] <= o[1] and (o[1] - o[0]) > (c[1] - c[0]) for o in candidates)]
    places: dict[int, list[list[int]]] = {}
    for s, e, i in kept:  # kept is sorted by start: merge a value's overlapping places
        runs = places.setdefault(i, [])
        if runs and s < runs[-1][1]:
            runs[-1][1] = max(runs[-1][1], e)
        else:
            runs.append([s, e])
    owners: dict[tuple[int, int], set[int]] = {}
    for i, runs in places.items():
        for s, e in runs:
            owners.setdefault((s, e), set()).add(i)
    problems: list[str] = []
    spans: list[Span] = []
    for i, key in enumerate(keys):
        label, value = key
        runs = [tuple(r) for r in places.get(i, [])]
        own = [r for r in runs if owners[r] == {i}]
        shared = [r for r in runs if owners[r] != {i}]
        if not runs:
            problems.append(f"missing: {label} {value!r} is not in the text in any allowed form")
        elif shared and len(own) < copies[key]:
            others = sorted({keys[j][0] for r in shared for j in owners[r] if j != i})
            problems.append(f"ambiguous: {label} {value!r} is only written where {', '.join(others)} is too")
        elif len(own) < copies[key]:
            problems.append(f"missing: {label} {value!r} is written {len(own)} time(s), the record has it {copies[key]}")
        elif len(own) > copies[key] and _NUMBER.match(value):
            problems.append(f"ambiguous: {label} {value!r} is written {len(own)} times, the record has it {copies[key]}")
        else:
            spans += [Span(s, e, label, value) for s, e in own]
    spans.sort(key=lambda s: (s.start, s.end, s.label))
    for a, b in zip(spans, spans[1:]):
        if b.start < a.end:
            problems.append(f"ambiguous: {a.label} {text[a.start:a.end]!r} and {b.label} {text[b.start:b.end]!r} overlap")
    return spans, problems


# ---------------------------------------------------------------------------------------------
# Editing through an offset map


class EditedText:
    """A text and its spans, edited only through `replace`, which keeps every span exact.

    An edit outside a span moves it; an edit inside a span changes its surface form and its end. An
    edit that crosses a span's boundary, or touches it from outside (which would glue a character onto
    the value and move a token boundary), is refused, as is one that would leave a span empty or
    starting or ending in whitespace. `replace` returns whether it was applied.
    """

    def __init__(self, text: str, spans: Iterable[Span] = ()):
        self.text = text
        self.spans = sorted(spans, key=lambda s: (s.start, s.end))
        problems = check_spans(text, self.spans)
        if problems:
            raise SpanError("; ".join(problems))
        self.edits = 0

    def surfaces(self) -> list[str]:
        return [self.text[s.start:s.end] for s in self.spans]

    def allows(self, start: int, end: int, new: str) -> bool:
        if not (0 <= start <= end <= len(self.text)):
            return False
        for s in self.spans:
            if end < s.start or start > s.end:
                continue  # clear of it
            inside = s.start <= start and end <= s.end and not (start == end and start in (s.start, s.end))
            if not inside:
                return False  # crosses or touches the boundary
            piece = self.text[s.start:start] + new + self.text[end:s.end]
            if not piece or piece != piece.strip():
                return False
        return True

    def replace(self, start: int, end: int, new: str) -> bool:
        if self.text[start:end] == new or not self.allows(start, end, new):
            return False
        delta = len(new) - (end - start)
        moved = []
        for s in self.spans:
            if end < s.start:
                moved.append(replace(s, start=s.start + delta, end=s.end + delta))
            elif start > s.end:
                moved.append(s)
            else:
                moved.append(replace(s, end=s.end + delta))
        self.text = self.text[:start] + new + self.text[end:]
        self.spans = moved
        self.edits += 1
        return True

    def span_at(self, position: int) -> Span | None:
        for s in self.spans:
            if s.start <= position < s.end:
                return s
        return None


# ---------------------------------------------------------------------------------------------
# Noise


_KEYBOARD = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]


def _neighbours() -> dict[str, str]:
    rows = _KEYBOARD
    near: dict[str, set[str]] = {}
    for r, row in enumerate(rows):
        for c, ch in enumerate(row):
            around = set()
            for dr in (-1, 0, 1):
                rr = r + dr
                if 0 <= rr < len(rows):
                    for dc in (-1, 0, 1):
                        cc = c + dc
                        if 0 <= cc < len(rows[rr]) and (dr or dc):
                            around.add(rows[rr][cc])
            near[ch] = around
    return {k: "".join(sorted(v)) for k, v in near.items()}


KEYBOARD_NEIGHBOURS = _neighbours()
# characters a scanner confuses, both ways
OCR_CONFUSIONS = [("0", "O"), ("O", "0"), ("1", "l"), ("l", "1"), ("rn", "m"), ("m", "rn"), ("5", "S"), ("S", "5"),
                  ("8", "B"), ("B", "8"), ("cl", "d"), ("vv", "w")]


@dataclass
class NoiseConfig:
    """How much of each kind of noise; a rate is a probability per unit named beside it.

    The defaults are light, about what a hurried typist and a decent scanner leave behind; 0 turns a
    kind off. `inside_values: false` keeps every value's characters as they were (noise only between
    values), except `reformat`, which writes a value in another of its allowed forms on purpose. A
    decimal or thousands mark between digits inside a value is never dropped: that would change the
    number, not its spelling."""

    typo: float = 0.03  # per word: a keyboard neighbour, a dropped, doubled or swapped letter
    ocr: float = 0.0  # per confusable character or pair (0/O, 1/l, rn/m, 5/S, 8/B, cl/d, vv/w)
    case: float = 0.02  # per word: lower, upper or title case
    all_lower: float = 0.0  # per document: the whole text in lower case (search queries, chat)
    punctuation: float = 0.02  # per punctuation mark: dropped
    whitespace: float = 0.01  # per space: doubled, turned into a line break, or dropped between two words
    line_breaks: float = 0.0  # per line break: turned into a space (a flattened layout)
    reorder: float = 0.0  # per document: its sections (blocks between blank lines) shuffled
    reformat: float = 0.0  # per value with other allowed forms: written in one of them instead
    inside_values: bool = True

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name != "inside_values" and not (isinstance(v, (int, float)) and 0 <= v <= 1):
                raise ValueError(f"noise.{f.name} must be a rate between 0 and 1, got {v!r}")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class NoiseReport:
    applied: dict[str, int] = field(default_factory=dict)
    refused: int = 0

    def add(self, kind: str, done: bool) -> None:
        if done:
            self.applied[kind] = self.applied.get(kind, 0) + 1
        else:
            self.refused += 1


_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def _in_value(doc: EditedText, start: int, end: int) -> bool:
    return any(s.start < end and start < s.end for s in doc.spans) or any(
        start == end and s.start <= start <= s.end for s in doc.spans)


def _edit(doc: EditedText, start: int, end: int, new: str, config: NoiseConfig) -> bool:
    if not config.inside_values and _in_value(doc, start, end):
        return False
    return doc.replace(start, end, new)


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word))
    kind = rng.choice(("neighbour", "drop", "double", "swap") if len(word) > 1 else ("neighbour", "double"))
    ch = word[i]
    if kind == "neighbour":
        near = KEYBOARD_NEIGHBOURS.get(ch.lower())
        if not near:
            return word
        sub = rng.choice(near)
        return word[:i] + (sub.upper() if ch.isupper() else sub) + word[i + 1:]
    if kind == "drop":
        return word[:i] + word[i + 1:]
    if kind == "double":
        return word[:i] + ch + word[i:]
    j = min(i, len(word) - 2)
    return word[:j] + word[j + 1] + word[j] + word[j + 2:]


def add_noise(text: str, spans: Sequence[Span], config: NoiseConfig, rng: random.Random,
              alternatives: Callable[[Span], Sequence[str]] | None = None) -> tuple[str, list[Span], NoiseReport]:
    """`text` with noise of each kind at the configured rates; the spans moved and resized with every
    edit, so that `text[start:end]` is each value's surface form afterwards. `alternatives(span)`
    gives the other allowed forms of a value (for `reformat`)."""
    doc = EditedText(text, spans)
    report = NoiseReport()
    if config.reorder and rng.random() < config.reorder:
        report.add("reorder", _reorder_sections(doc, rng))
    if config.reformat and alternatives is not None:
        for i in range(len(doc.spans)):
            s = doc.spans[i]
            options = [a for a in alternatives(s) if a and a.strip() == a and a != doc.text[s.start:s.end]]
            if options and rng.random() < config.reformat:
                report.add("reformat", doc.replace(s.start, s.end, rng.choice(options)))
    if config.all_lower and rng.random() < config.all_lower:
        # character by character would be slow; lower case keeps every offset where it keeps lengths
        lowered = doc.text.lower()
        if len(lowered) == len(doc.text) and (config.inside_values or all(
                doc.text[s.start:s.end] == lowered[s.start:s.end] for s in doc.spans)):
            if lowered != doc.text:
                doc.text = lowered
                report.add("all_lower", True)
    # word-level kinds: walk the words from the end, so that earlier offsets stay valid
    words = [(m.start(), m.end()) for m in _WORD.finditer(doc.text)]
    for start, end in reversed(words):
        word = doc.text[start:end]
        if config.typo and rng.random() < config.typo:
            report.add("typo", _edit(doc, start, end, _typo(word, rng), config))
        elif config.case and rng.random() < config.case:
            report.add("case", _edit(doc, start, end, rng.choice((word.lower(), word.upper(), word.title())), config))
    if config.ocr:
        for wrong, right in OCR_CONFUSIONS:
            for m in reversed(list(re.finditer(re.escape(wrong), doc.text))):
                if rng.random() < config.ocr:
                    report.add("ocr", _edit(doc, m.start(), m.end(), right, config))
    if config.punctuation:
        for m in reversed(list(re.finditer(r"[.,;:!?]", doc.text))):
            if rng.random() < config.punctuation:
                t, at = doc.text, m.start()
                if 0 < at < len(t) - 1 and t[at - 1].isdigit() and t[at + 1].isdigit() and doc.span_at(at):
                    continue  # "35.10" -> "3510" would change the value, not its spelling
                report.add("punctuation", _edit(doc, m.start(), m.end(), "", config))
    if config.line_breaks:
        for m in reversed(list(re.finditer(r"\n", doc.text))):
            if rng.random() < config.line_breaks:
                report.add("line_breaks", _edit(doc, m.start(), m.end(), " ", config))
    if config.whitespace:
        for m in reversed(list(re.finditer(r"(?<=\S) (?=\S)", doc.text))):
            if rng.random() < config.whitespace:
                new = rng.choice(("  ", "\n", ""))
                report.add("whitespace", _edit(doc, m.start(), m.end(), new, config))
    return doc.text, doc.spans, report


def _reorder_sections(doc: EditedText, rng: random.Random) -> bool:
    """Shuffle the blocks between blank lines, spans moving with their block; refused (False) when a
    span crosses a block boundary or there is only one block."""
    bounds = [0]
    for m in re.finditer(r"\n[ \t]*\n", doc.text):
        bounds += [m.start(), m.end()]
    bounds.append(len(doc.text))
    blocks = [(bounds[i], bounds[i + 1]) for i in range(0, len(bounds), 2)]
    if len(blocks) < 2:
        return False
    separators = [doc.text[bounds[i]:bounds[i + 1]] for i in range(1, len(bounds) - 1, 2)]
    owner = []
    for s in doc.spans:
        home = [b for b, (lo, hi) in enumerate(blocks) if lo <= s.start and s.end <= hi]
        if not home:
            return False
        owner.append(home[0])
    order = list(range(len(blocks)))
    rng.shuffle(order)
    if order == sorted(order):
        return False
    pieces, new_start, at = [], {}, 0
    for n, b in enumerate(order):
        lo, hi = blocks[b]
        new_start[b] = at
        pieces.append(doc.text[lo:hi])
        at += hi - lo
        if n < len(separators):
            pieces.append(separators[n])
            at += len(separators[n])
    doc.spans = sorted((replace(s, start=new_start[b] + s.start - blocks[b][0], end=new_start[b] + s.end - blocks[b][0])
                        for s, b in zip(doc.spans, owner)), key=lambda s: (s.start, s.end))
    doc.text = "".join(pieces)
    doc.edits += 1
    return True


# ---------------------------------------------------------------------------------------------
# Tokens and BIO tags


TOKENIZERS = {
    # MIT Restaurant's own: tokens are what lies between spaces
    "whitespace": re.compile(r"\S+"),
    # words, numbers and each punctuation mark apart ("$1,200.00" -> "$", "1", ",", "200", ".", "00")
    "words": re.compile(r"\w+|[^\w\s]", re.UNICODE),
}


def tokenize(text: str, tokenizer: str = "whitespace") -> list[tuple[int, int]]:
    try:
        pattern = TOKENIZERS[tokenizer]
    except KeyError:
        raise ValueError(f"unknown tokenizer {tokenizer!r}; one of {sorted(TOKENIZERS)}") from None
    return [(m.start(), m.end()) for m in pattern.finditer(text)]


def to_bio(text: str, spans: Sequence[Span], tokenizer: str = "whitespace") -> tuple[list[str], list[str]]:
    """Tokens and BIO tags (IOB2) of `text`; raises SpanError where a span does not start and end on
    token boundaries (the tags could not say where it is)."""
    offsets = tokenize(text, tokenizer)
    tags = ["O"] * len(offsets)
    starts = {s: i for i, (s, _) in enumerate(offsets)}
    ends = {e: i for i, (_, e) in enumerate(offsets)}
    for span in sorted(spans, key=lambda s: s.start):
        if span.start not in starts or span.end not in ends:
            raise SpanError(f"{span.label} {text[span.start:span.end]!r} [{span.start}, {span.end}) does not start "
                            f"and end on {tokenizer} token boundaries")
        first, last = starts[span.start], ends[span.end]
        if any(t != "O" for t in tags[first:last + 1]):
            raise SpanError(f"{span.label} [{span.start}, {span.end}) overlaps another span's tokens")
        tags[first] = f"B-{span.label}"
        for i in range(first + 1, last + 1):
            tags[i] = f"I-{span.label}"
    return [text[s:e] for s, e in offsets], tags


def from_bio(tokens: Sequence[str], tags: Sequence[str], separator: str = " ") -> tuple[str, list[Span]]:
    """Text (tokens joined by `separator`) and spans of IOB2 tags; an I- tag that does not continue an
    entity of its type starts one, as seqeval's default reading does."""
    if len(tokens) != len(tags):
        raise SpanError(f"{len(tokens)} tokens but {len(tags)} tags")
    text, offsets, at = [], [], 0
    for i, t in enumerate(tokens):
        if i:
            text.append(separator)
            at += len(separator)
        offsets.append((at, at + len(t)))
        text.append(t)
        at += len(t)
    joined = "".join(text)
    spans, current = [], None
    for (s, e), tag in zip(offsets, tags):
        kind, _, label = tag.partition("-")
        if tag == "O" or kind not in ("B", "I") or not label:
            if tag != "O":
                raise SpanError(f"tag {tag!r} is not O, B-<type> or I-<type>")
            current = None
            continue
        if kind == "I" and current is not None and current[2] == label:
            current[1] = e
            continue
        current = [s, e, label]
        spans.append(current)
    return joined, [Span(s, e, label, joined[s:e]) for s, e, label in spans]
