"""The base of every check, the text normalisation they share, and the function adapter.

A check is a dataclass with

    name, family             its recipe name (and column prefix) and the family the card groups it in
    flag_batch(batch)        -> {f"{name}_flag": [True = remove, ...], f"{name}_score": [...], ...}
    keep(row)                the `Dataset.filter` predicate
    needs                    reference data it compares against, from a CheckContext
    requires                 importable modules it needs (an extra), checked when a recipe loads
    code_deps                modules whose code decides its results, beyond its own class's modules

Its pickled state (what `datasets` fingerprints for the cache) is its settings plus a digest of the
code that computes it: the modules its class and base classes are defined in and its `code_deps`.
Attributes whose names start with "_" are run-time caches (a fitted classifier, an n-gram index)
and are never pickled, so a check used for a second `map` hits the cache of the first.

    too_excited = score_check(lambda text: text.count("!"), name="too_excited", max_score=2)

makes a check from one scoring function and a threshold (see `score_check`).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import re
import sys
import unicodedata
from dataclasses import dataclass, fields, replace
from typing import Any, Callable

from datasets import Dataset


class Check:
    """Base of all checks (see the module docstring).

    `check(batch)` returns the check's columns for a batch, so `ds.map(check, batched=True)` writes
    them (`whole_column` checks, such as deduplication, need the whole column in one batch:
    `batch_size=None`; `annotate` does that for you); `keep` is the `Dataset.filter` predicate.
    Checks that compare against other data (the real rows, the test split, the label set) name it in
    `needs`; `bind(context)` returns a copy with it filled in from a `CheckContext`, and a `column`
    or `label_column` left at None with the task's (the context's) column.
    """

    name: str = "check"
    family: str = "custom"
    needs: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    code_deps: tuple[str, ...] = ()
    whole_column: bool = False

    @property
    def flag_column(self) -> str:
        return f"{self.name}_flag"

    @property
    def text_col(self) -> str:
        """The column the check reads: its `column`, else "text" (bind() sets the task's)."""
        return getattr(self, "column", None) or "text"

    @property
    def label_col(self) -> str:
        return getattr(self, "label_column", None) or "label"

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        return self.flag_batch(batch)

    def annotate(self, ds: Dataset) -> Dataset:
        return ds.map(self, batched=True, batch_size=None if self.whole_column else 1000, desc=f"check {self.name}")

    def flag_batch(self, batch: dict[str, list]) -> dict[str, list]:
        raise NotImplementedError

    def keep(self, row: dict) -> bool:
        return not row[self.flag_column]

    def check_task(self, task) -> None:
        """Raise a ValueError when the check cannot work on `task`'s rows (called when a recipe loads)."""

    def bind(self, context) -> "Check":
        """A copy with the columns left at None set to the context's (the task's text and label columns)."""
        names = {f.name for f in fields(self)} if hasattr(self, "__dataclass_fields__") else set()
        wanted = {"column": getattr(context, "text_column", None), "label_column": getattr(context, "label_column", None)}
        changes = {k: v for k, v in wanted.items() if k in names and v is not None and getattr(self, k) is None}
        return replace(self, **changes) if changes else self

    def __getstate__(self):
        # `datasets` fingerprints a map function by pickling it, and a dataclass pickles as its class
        # name and fields: without the code's digest a changed regex or algorithm would be served
        # stale results from the cache. Private attributes are run-time caches, not settings.
        state = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        return {**state, "_code": code_digest(type(self))}

    def __setstate__(self, state):
        state = dict(state)
        state.pop("_code", None)
        self.__dict__.update(state)

    def describe(self) -> dict:
        """The check's name and settings, for the report and the card (reference data left out)."""
        return {"name": self.name, **{f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("report", True)}}


@functools.lru_cache(maxsize=None)
def code_digest(cls) -> str:
    """A digest of the package version and the code `cls` runs: the source files of the modules
    that define it and its base classes, and of its `code_deps` modules. A check defined where no
    source file exists (a notebook cell) is digested from its methods' bytecode."""
    from .. import __version__

    digest = hashlib.sha1(__version__.encode())
    modules = sorted({c.__module__ for c in cls.__mro__ if c is not object} | set(getattr(cls, "code_deps", ())))
    for name in modules:
        module = sys.modules.get(name)
        if module is None:
            __import__(name)
            module = sys.modules[name]
        digest.update(name.encode())
        digest.update(_source(module, cls))
    return digest.hexdigest()


def _source(module, cls) -> bytes:
    try:
        with open(inspect.getsourcefile(module), "rb") as f:
            return f.read()
    except (TypeError, OSError):  # no file (a notebook, an interactive session)
        try:
            return inspect.getsource(cls).encode()
        except (TypeError, OSError):
            codes = [getattr(getattr(v, "__func__", v), "__code__", None) for v in vars(cls).values()]
            return b"".join(c.co_code + repr(c.co_consts).encode() for c in codes if c is not None)


@dataclass
class ScoreCheck(Check):
    """A check from a plain scoring function of a row's text (see `score_check`): `<name>_score` is
    the function's value, and a row scoring below `min_score` or above `max_score` is flagged."""

    min_score: float | None = None
    max_score: float | None = None
    column: str | None = None
    score_fn = None  # the scoring function, a staticmethod of the class score_check() makes

    def __post_init__(self):
        if self.min_score is None and self.max_score is None:
            raise ValueError(f"{self.name}: give min_score (flag rows below it), max_score (flag rows above it) or both")

    def flag_batch(self, batch):
        scores = [None if t is None else float(self.score_fn(t)) for t in batch[self.text_col]]
        flags = [s is None or (self.min_score is not None and s < self.min_score)
                 or (self.max_score is not None and s > self.max_score) for s in scores]
        return {f"{self.name}_score": scores, self.flag_column: flags}

    def __reduce__(self):
        # a class made by score_check() cannot be found by import path; rebuild it by its check name
        return (_rebuild_score_check, (self.name, self.__getstate__()))


def _rebuild_score_check(name: str, state: dict):
    from . import CHECKS

    obj = CHECKS[name].__new__(CHECKS[name])
    obj.__setstate__(state)
    return obj


def score_check(fn: Callable[[str], float], *, name: str, min_score: float | None = None,
                max_score: float | None = None, family: str = "custom") -> type[ScoreCheck]:
    """A check class made from one scoring function `fn(text) -> number` and a threshold.

    Register it under `name` (`CHECKS.register(name, cls)`, or a `synth_datasets.checks` entry
    point naming the module attribute) and recipes can use it: `- too_excited: {max_score: 3}`
    overrides the threshold. The function's module is part of the cache key.

    >>> TooExcited = score_check(lambda text: text.count("!"), name="too_excited", max_score=1)
    >>> TooExcited().bind(None).flag_batch({"text": ["fine.", "wow!!"]})
    {'too_excited_score': [0.0, 2.0], 'too_excited_flag': [False, True]}
    """
    attrs: dict[str, Any] = {
        "name": name, "family": family, "score_fn": staticmethod(fn),
        "__module__": fn.__module__, "__qualname__": f"score_check[{name}]",
        "__doc__": f"Flags rows whose {getattr(fn, '__name__', 'score')} score is outside the thresholds.",
        "__annotations__": {"min_score": "float | None", "max_score": "float | None"},
        "min_score": min_score, "max_score": max_score,
    }
    return dataclass(type(f"ScoreCheck_{name}", (ScoreCheck,), attrs))


def label_name(label, names) -> str:
    """A label value as a name: integer ids (a ClassLabel column's) through `names`, others as str."""
    if isinstance(label, int) and not isinstance(label, bool) and names is not None:
        return names[label]
    return str(label)


def normalize_text(text: str) -> str:
    """Lower case, accents and punctuation dropped, whitespace collapsed.

    >>> normalize_text("  Where is  MY card?! ")
    'where is my card'
    """
    text = text.lower()
    if not text.isascii():  # the slow path only where there can be accents to strip
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(_PUNCTUATION.sub(" ", text).split())


_PUNCTUATION = re.compile(r"[^\w\s]")


def digest_text(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()
