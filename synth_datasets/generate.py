"""Generation as a `Dataset.map(batched=True)` transform.

    gen = Generate(json_schema=schema, parser="json")
    synthetic = prompts.map(gen, batched=True, batch_size=1000, features=gen.features(prompts.features))
    synthetic = generate(prompts, gen)      # the same, in one call

Input columns:  `messages` (a chat request per row; any name via `messages_column`).
Output columns: `raw_completion`, `finish_reason`, `prompt_tokens`, `completion_tokens`,
                `parse_error` (None or why the completion could not be parsed), and the parser's
                fields (for `parser="json"`, the schema's properties; for a task, its own fields).

The transform's pickled state is its configuration only (model, engine options, sampling, schema,
parser), so `datasets` derives the same fingerprint from the same configuration and reuses its cache,
while any change of temperature, schema or prompt misses it. The engine lives in a per-process cache
(engine.get_engine) and is never pickled. Each map batch goes to the engine as one call: use a large
`batch_size` (1000, or the whole dataset) so vLLM schedules many requests at once.

Do not pass `num_proc > 1`: each worker would start its own engine (and vLLM spawns its own
processes). Resumable runs split the prompts into shards that each go through this transform
(shards.py). Asynchronous in-flight feeding across map batches is not built: on the CPU, one large
synchronous batch already runs at raw vLLM speed (docs/benchmarks.md).

`gen.stats` counts what the engine really did for this transform in this process (rows served from
a cache are not in it), so a run can report its true tokens/s; it is not part of the pickled state.
A request the engine could not run (a prompt too long for the model) is a row whose `parse_error`
says why, never an exception.
"""

from __future__ import annotations

import inspect
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from datasets import Dataset, Features, Value
from tqdm.auto import tqdm

from . import __version__
from . import engine as engine_mod
from . import models
from .engine import EngineConfig, SamplingConfig
from .tasks import get_parser, parser_features, parser_fields

logger = logging.getLogger(__name__)



@dataclass
class EngineStats:
    """Requests, tokens and engine seconds of the engine calls one `Generate` made in this process
    (`gen.stats`): what the engine really did, so rows served from a cache are not in it."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def add(self, completions, seconds: float) -> None:
        ran = [c for c in completions if c.error is None]
        self.requests += len(ran)
        self.prompt_tokens += sum(c.prompt_tokens for c in ran)
        self.completion_tokens += sum(c.completion_tokens for c in ran)
        self.seconds += seconds

    def as_dict(self) -> dict[str, Any]:
        """The counts, seconds rounded, and generated tokens per engine second (None when it ran nothing)."""
        out = {name: getattr(self, name) for name in ("requests", "prompt_tokens", "completion_tokens")}
        out["seconds"] = round(self.seconds, 3)
        out["generated_tokens_per_second"] = round(self.completion_tokens / self.seconds, 1) if self.seconds > 0 else None
        return out


GENERATE_FEATURES = {
    "raw_completion": Value("string"), "finish_reason": Value("string"), "prompt_tokens": Value("int64"),
    "completion_tokens": Value("int64"), "parse_error": Value("string"),
}
GENERATE_COLUMNS = tuple(GENERATE_FEATURES)


def generate(ds: Dataset, gen: "Generate", batch_size: int = 1000, progress=None, **map_kwargs) -> Dataset:
    """`ds.map(gen)` with the settings generation wants: batched, large batches, fixed output types.

        synthetic = generate(prompts, Generate(json_schema=schema, parser="classification"))

    is `prompts.map(gen, batched=True, batch_size=1000, features=gen.features(prompts.features))`,
    with one progress bar over all rows (`progress`: None for a new one, a tqdm bar to advance,
    False for none; rows served from the cache never reach it).
    """
    if (map_kwargs.get("num_proc") or 1) > 1:
        raise ValueError("generate(): num_proc > 1 would start one engine per worker; vLLM batches within one engine, use num_proc=1")
    map_kwargs.setdefault("desc", "generate")
    removed = map_kwargs.get("remove_columns") or []
    kept = {name: f for name, f in ds.features.items() if name not in ([removed] if isinstance(removed, str) else removed)}
    features = gen.features(Features(kept))
    if len(ds) == 0:  # map never calls the function on no rows, so it would add no columns
        return Dataset.from_dict({name: [] for name in features}, features=features)
    bar = tqdm(total=len(ds), desc=map_kwargs["desc"], unit="row") if progress is None else progress
    gen._progress = bar if bar is not False else False
    try:
        out = ds.map(gen, batched=True, batch_size=batch_size, features=features, **map_kwargs)
    finally:
        gen._progress = None
    if progress is None:
        if bar.n < len(ds):  # served from the datasets cache: nothing reached the engine
            bar.set_postfix_str("from the cache", refresh=False)
            bar.update(len(ds) - bar.n)
        bar.close()
    return out


def _plugin_parser_code(parser: str) -> dict:
    """{"parser_code": digest} for a task parser that does not ship with this package (built-in
    parsers are covered by the package version)."""
    from .checks.base import code_digest
    from .registry import BUILTIN
    from .tasks import FORMATS, TASKS

    if parser in FORMATS or TASKS.origin(parser) == BUILTIN:
        return {}
    return {"parser_code": code_digest(TASKS[parser])}


def _in_map_worker() -> bool:
    """True inside a worker of `Dataset.map(num_proc > 1)` (datasets runs them with `multiprocess`)."""
    try:
        import multiprocess
    except ImportError:
        return False
    return "PoolWorker" in multiprocess.current_process().name


@dataclass
class Generate:
    """A picklable, hashable map transform that sends each batch of chat requests to the engine.

    Args:
        model: HF id or local folder; None uses the embedded SmolLM2-135M-Instruct. Shorthand for
            `engine.model`.
        sampling: `SamplingConfig` or a dict of its fields.
        engine: `EngineConfig` or a dict of its fields (dtype, seed, max_model_len, ...).
        json_schema: constrain every completion to this JSON schema (vLLM structured outputs).
        parser: how completions become columns: "text" (none), "json" (the schema's properties),
            or a task name from `synth_datasets.tasks.TASKS` (e.g. "classification").
        messages_column: the input column holding the chat requests.
        prompt_column: completion mode: the input column holding plain-text prompts that the model
            continues without a chat template (the engine's `complete`); `messages_column` is then
            not read.
    """

    model: str | None = None
    sampling: SamplingConfig | dict = field(default_factory=SamplingConfig)
    engine: EngineConfig | dict | None = None
    json_schema: dict | None = None
    parser: str = "text"
    messages_column: str = "messages"
    prompt_column: str | None = None

    def __post_init__(self):
        if isinstance(self.sampling, dict):
            self.sampling = SamplingConfig(**self.sampling)
        if isinstance(self.engine, dict):
            self.engine = EngineConfig.from_dict(self.engine, "engine")
        self.engine = self.engine or EngineConfig()
        if self.model is not None:
            self.engine = replace(self.engine, model=self.model)
        self.model = self.engine.model
        parser = get_parser(self.parser)  # a clear error now for an unknown parser
        if self.parser != "text" and self.json_schema is None and getattr(parser, "parser_needs_schema", True):
            raise ValueError(f"parser={self.parser!r} needs a json_schema (the task's `json_schema(...)`)")
        self.fields = parser_fields(self.parser, self.json_schema)
        self._stats = EngineStats()

    @property
    def stats(self) -> EngineStats:
        """What the engine did for this transform in this process (not pickled, not hashed)."""
        return self._stats

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        column = self.prompt_column or self.messages_column
        if column not in batch:
            what = "plain-text prompts (completion mode)" if self.prompt_column else "chat requests"
            raise KeyError(
                f"Generate needs a {column!r} column of {what}; got columns {sorted(batch)}. "
                "Build it with a task's prompt builder, or set messages_column= / prompt_column="
            )
        if _in_map_worker():
            logger.warning("Generate is running in a datasets worker process (num_proc > 1): each worker starts "
                           "its own engine; use num_proc=1 and a large batch_size instead")
        conversations = batch[column]
        engine = engine_mod.get_engine(self.engine)
        call = engine.chat
        if self.prompt_column:
            call = getattr(engine, "complete", None)
            if call is None:
                raise ValueError(f"prompt_column={self.prompt_column!r} asks for completion mode, and the "
                                 f"{self.engine.backend!r} backend has no `complete`; send chat requests instead")
        completions = self._run_engine(call, conversations, batch.get("row_id"))
        clash = [name for name in self.fields if name in batch and name not in GENERATE_COLUMNS]
        if clash:
            raise ValueError(
                f"parser {self.parser!r} writes {clash}, which the input already has; drop or rename them first "
                f"(ds.remove_columns({clash})) so generated values do not silently replace them"
            )
        out: dict[str, list] = {name: [] for name in (*GENERATE_COLUMNS, *self.fields)}
        rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
        parse = get_parser(self.parser).parse
        for row, completion in zip(rows, completions):
            if completion.error is not None:
                parsed, error = {}, f"request failed: {completion.error}"
            else:
                parsed, error = parse(row, completion, self.json_schema)
            out["raw_completion"].append(completion.text)
            out["finish_reason"].append(completion.finish_reason)
            out["prompt_tokens"].append(completion.prompt_tokens)
            out["completion_tokens"].append(completion.completion_tokens)
            out["parse_error"].append(error)
            for name in self.fields:
                out[name].append(parsed.get(name))
        return out

    def _run_engine(self, call, requests: list, row_ids: list | None) -> list:
        """The engine's completions for `requests`, in order. An engine whose call takes `on_done`
        reports each request as it ends: the stage bar advances per request, and in a resumable
        run's shard in flight (`_journal`, set by shards.py) each one is journaled, and requests the
        journal already holds (from a run that was killed) are not sent again."""
        bar = getattr(self, "_progress", None)
        bar = None if bar is False else bar
        progress = self._progress_kwargs(call)
        per_request = "on_done" in inspect.signature(call).parameters
        journal = getattr(self, "_journal", None) if per_request and row_ids is not None else None
        done = journal.load(row_ids) if journal is not None else {}
        todo = [i for i in range(len(requests)) if row_ids is None or row_ids[i] not in done]
        kwargs = dict(progress)
        if per_request:
            def on_done(j: int, completion) -> None:
                if journal is not None:
                    journal.record(row_ids[todo[j]], completion)
                if bar is not None and not progress:
                    bar.update(1)

            kwargs["on_done"] = on_done
        if done and bar is not None:
            bar.update(len(requests) - len(todo))
        start = time.perf_counter()
        new = call([requests[i] for i in todo], self.sampling, self.json_schema, **kwargs) if todo else []
        if bar is not None and not progress and not per_request:  # an engine that does not advance the bar: a step per batch
            bar.update(len(todo))
        self._stats.add(new, time.perf_counter() - start)
        if len(new) != len(todo):
            raise RuntimeError(f"engine returned {len(new)} completions for {len(todo)} requests")
        completions = [done[row_ids[i]] if row_ids is not None and row_ids[i] in done else None for i in range(len(requests))]
        for i, completion in zip(todo, new):
            completions[i] = completion
        return completions

    def _progress_kwargs(self, call) -> dict:
        """`progress=` for engine calls that take it: the stage bar `generate()` opened, else their own bars."""
        if "progress" not in inspect.signature(call).parameters:
            return {}
        bar = getattr(self, "_progress", None)
        return {"progress": True if bar is None else bar}

    def features(self, input_features: Features) -> Features:
        """The output's features: the input's plus the generated columns, each with a fixed type.

        Pass them to `map` (`features=gen.features(ds.features)`, or use `generate()`): without them
        `datasets` infers each column's type from the first batch written, and a first batch where a
        column is all None (no parse error yet, or nothing parsed yet) fixes it as null, so a later
        batch with a value fails to write.
        """
        generated = {**GENERATE_FEATURES, **parser_features(self.parser, self.json_schema)}
        return Features({**input_features, **generated})

    def describe(self) -> dict[str, Any]:
        """The configuration, as plain data, for provenance and cards."""
        backend = engine_mod.BACKENDS.lookup(self.engine.backend, "engine.backend")
        return {
            "model": self.engine.model or getattr(backend, "default_model", None) or f"(the {self.engine.backend} backend's own)",
            "model_revision": models.model_revision(self.engine.model) if self.engine.backend == "vllm" else None,
            **engine_mod.describe_backend(self.engine),
            "sampling": asdict(self.sampling),
            "json_schema": self.json_schema,
            "parser": self.parser,
        }

    def __getstate__(self):
        # Only configuration is pickled (and so hashed by `datasets`); `fields` is derived from it.
        # The package version is in it too, so a new release (new parsers) does not reuse old results,
        # and for a plugin's parser the digest of its code, so editing it does not either.
        state = {k: v for k, v in self.__dict__.items() if k != "fields" and not k.startswith("_")}
        if state.get("prompt_column") is None:  # chat mode: the state (and cache key) it always had
            state.pop("prompt_column", None)
        return {**state, "version": __version__, **_plugin_parser_code(self.parser)}

    def __setstate__(self, state):
        state = dict(state)
        state.pop("version", None)
        state.pop("parser_code", None)
        state.setdefault("prompt_column", None)
        self.__dict__.update(state)
        self.fields = parser_fields(self.parser, self.json_schema)
        self._stats = EngineStats()
