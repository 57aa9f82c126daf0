"""The one module that owns vLLM.

Everything above this module talks to an *engine*: an object with

    chat(conversations, sampling, json_schema=None) -> list[Completion]
    describe() -> dict   # for provenance

The real one is `VLLMEngine`; the fast tests register a fake one in `BACKENDS`. Engines are built
lazily, once per process per `EngineConfig`, by `get_engine`, and are never pickled or hashed: the
map transform (generate.py) carries only the configuration.

vllm itself is imported inside `VLLMEngine`, so importing synth_datasets never starts it.
Not here: async / in-flight request feeding and data-parallel engines (later issues).
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from . import hardware, models

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


@dataclass(frozen=True)
class EngineConfig:
    """How to build the engine. Equal configs share one engine per process."""

    model: str | None = field(default=None, metadata={"help": "HF model id or local folder; None = embedded SmolLM2-135M-Instruct."})
    backend: str = field(default="vllm", metadata={"help": "Key of `engine.BACKENDS`."})
    dtype: str = field(default="auto", metadata={"help": "'auto' picks bf16 only where the CPU has bf16 units, else fp32."})
    seed: int = field(default=0, metadata={"help": "Engine-wide sampling seed."})
    max_model_len: int = field(default=2048, metadata={"help": "Longest prompt + completion in tokens."})
    enforce_eager: bool | None = field(default=None, metadata={"help": "Skip graph compilation; default: eager on a CPU (26 s start-up against 96 s compiled, same tokens/s), compiled on a GPU."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Run model code from the model repo. Off unless you trust it."})
    kv_cache_space_gib: int | None = field(default=None, metadata={"help": "CPU KV-cache GiB (VLLM_CPU_KVCACHE_SPACE); default: a sixth of NUMA node 0's memory."})
    gpu_memory_utilization: float = field(default=0.9, metadata={"help": "Share of GPU memory vLLM may take."})

    def __post_init__(self):
        if self.max_model_len < 16:
            raise ValueError(f"max_model_len must be >= 16, got {self.max_model_len}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")


@dataclass
class Completion:
    """One finished request: the text untouched, why it stopped, and token counts."""

    text: str
    finish_reason: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Engine(Protocol):
    def chat(self, conversations: Sequence[Conversation], sampling: SamplingConfig,
             json_schema: dict | None = None) -> list[Completion]: ...

    def describe(self) -> dict[str, Any]: ...


class VLLMEngine:
    """vLLM's offline `LLM`, fitted to the machine (see hardware.py), fed whole batches."""

    def __init__(self, config: EngineConfig):
        from vllm import LLM  # the only vllm import of the package

        self.config = config
        self.model_path = models.resolve_model(config.model)
        self.hardware = hardware.fit_engine(config.dtype, config.kv_cache_space_gib, config.enforce_eager)
        hardware.apply_engine_env(self.hardware)
        logger.info("starting vLLM on %s (%s, dtype=%s)", self.model_path, self.hardware.device, self.hardware.dtype)
        self.llm = LLM(
            model=self.model_path,
            dtype=self.hardware.dtype,
            seed=config.seed,
            max_model_len=config.max_model_len,
            enforce_eager=self.hardware.enforce_eager,
            trust_remote_code=config.trust_remote_code,
            gpu_memory_utilization=config.gpu_memory_utilization,
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
             json_schema: dict | None = None, use_tqdm: bool = True) -> list[Completion]:
        """Generate for all conversations in one call, so vLLM batches them as it sees fit."""
        if not conversations:
            return []
        params = self.sampling_params(sampling, json_schema)
        outputs = self.llm.chat(list(conversations), params, use_tqdm=use_tqdm)
        return [
            Completion(
                text=o.outputs[0].text,
                finish_reason=o.outputs[0].finish_reason,
                prompt_tokens=len(o.prompt_token_ids or ()),
                completion_tokens=len(o.outputs[0].token_ids),
            )
            for o in outputs
        ]

    def describe(self) -> dict[str, Any]:
        return describe_backend(self.config)

    def shutdown(self) -> None:
        """Stop vLLM's engine processes now, not at interpreter exit (when logging is already gone)."""
        try:
            self.llm.llm_engine.engine_core.shutdown()
        except AttributeError:  # another vLLM layout: fall back to garbage collection
            pass
        del self.llm


def describe_backend(config: EngineConfig) -> dict[str, Any]:
    """What would run `config` here (backend, version, hardware choices), without starting it."""
    info: dict[str, Any] = {"backend": config.backend, "engine": asdict(config)}
    if config.backend == "vllm":
        info["vllm_version"] = _installed_version("vllm-cpu") or _installed_version("vllm")
        info["hardware"] = hardware.fit_engine(config.dtype, config.kv_cache_space_gib, config.enforce_eager).as_dict()
    return info


def _installed_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


BACKENDS: dict[str, Callable[[EngineConfig], Engine]] = {"vllm": VLLMEngine}
_ENGINES: dict[EngineConfig, Engine] = {}


def get_engine(config: EngineConfig) -> Engine:
    """The process's engine for `config`, built on first use and reused after."""
    if config not in _ENGINES:
        if config.backend not in BACKENDS:
            raise ValueError(
                f"engine backend {config.backend!r} is not known; choose one of {sorted(BACKENDS)}"
            )
        _ENGINES[config] = BACKENDS[config.backend](config)
    return _ENGINES[config]


def shutdown_engines() -> None:
    """Shut down and drop every cached engine (end of tests; freeing memory between runs)."""
    while _ENGINES:
        _, engine = _ENGINES.popitem()
        if hasattr(engine, "shutdown"):
            engine.shutdown()
