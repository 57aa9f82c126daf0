"""What the machine offers, and the engine settings that follow from it.

No vLLM import here: this module reads CPU flags, cores, memory and the presence of a CUDA GPU,
and turns them into engine settings (dtype, thread binding, KV-cache space). Every choice can be
overridden (an explicit argument, or the vLLM environment variable itself), and every choice is
returned as plain data so it can be logged and written into the run's provenance.

Why each choice (measured on machines of this kind, see docs/benchmarks.md):
- bf16 only where the CPU has avx512_bf16 or AMX; on an AVX2-only CPU vLLM silently falls back to a
  torch path that ran about 50x slower in bf16 than fp32.
- vLLM-CPU reserves one core for itself unless told which to bind; on 2 cores binding both gave 1.9x.
- the CPU engine sizes its KV cache from NUMA node 0 and failed to start on a 24 GiB machine whose
  node 0 reported 9.6 GiB; a fixed KV-cache space in GiB avoids that.

Replicas: each a GPU, a group of GPUs for tensor parallel, or a share of the cores (replica_envs).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from functools import lru_cache

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of the first core, from /proc/cpuinfo (empty if unreadable)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@lru_cache(maxsize=1)
def has_cuda_gpu() -> bool:
    """True when `nvidia-smi -L` lists a GPU. Checked without importing torch."""
    if not shutil.which("nvidia-smi"):
        return False
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def gpu_count() -> int:
    """How many GPUs this process may use: CUDA_VISIBLE_DEVICES when set, else what `nvidia-smi -L` lists."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    if not has_cuda_gpu():
        return 0
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    return sum(line.startswith("GPU") for line in out.stdout.splitlines())


def replica_envs(n: int, gpus_per_replica: int = 1) -> list[dict[str, str]]:
    """The environment of each of `n` engine replicas: a group of `gpus_per_replica` GPUs (of the
    visible ones) each, for tensor parallel, or on a CPU an equal share of this process's cores
    (VLLM_CPU_OMP_THREADS_BIND). More replicas than GPU groups or cores is an error."""
    gpus = gpu_count()
    if gpus:
        visible = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", ",".join(map(str, range(gpus)))).split(",")]
        visible = [d for d in visible if d and d != "-1"]
        if n * gpus_per_replica > len(visible):
            raise ValueError(f"engine.replicas: {n} replicas of {gpus_per_replica} GPU(s) each but {len(visible)} GPUs "
                             f"visible; lower replicas (or tensor_parallel_size)")
        return [{"CUDA_VISIBLE_DEVICES": ",".join(visible[i * gpus_per_replica:(i + 1) * gpus_per_replica])}
                for i in range(n)]
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    if n > len(cores):
        raise ValueError(f"engine.replicas: {n} replicas but {len(cores)} CPU cores; at least one core per replica")
    share = len(cores) // n
    return [{"VLLM_CPU_OMP_THREADS_BIND": _cpu_range(cores[i * share:(i + 1) * share]),
             "OMP_NUM_THREADS": str(share)} for i in range(n)]


def cpu_supports_bf16(flags: frozenset[str] | None = None) -> bool:
    """bf16 matmuls are fast only with AVX-512 BF16 or AMX tiles; elsewhere they crawl."""
    flags = cpu_flags() if flags is None else flags
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def choose_dtype(requested: str = "auto", *, gpu: bool | None = None, flags: frozenset[str] | None = None) -> str:
    """The dtype the engine should run in.

    >>> choose_dtype("auto", gpu=False, flags=frozenset({"avx2"}))
    'float32'
    >>> choose_dtype("auto", gpu=False, flags=frozenset({"avx2", "avx512_bf16"}))
    'bfloat16'
    >>> choose_dtype("float16", gpu=False, flags=frozenset())
    'float16'
    """
    if requested != "auto":
        return requested
    gpu = has_cuda_gpu() if gpu is None else gpu
    if gpu:
        return "auto"  # let vLLM take the model's own dtype on a GPU
    return "bfloat16" if cpu_supports_bf16(flags) else "float32"


@dataclass(frozen=True)
class EngineHardware:
    """Engine settings chosen for this machine; `as_dict()` goes into provenance."""

    device: str
    dtype: str
    cpu_threads_bind: str | None
    kv_cache_space_gib: int | None
    cpu_flags: tuple[str, ...]
    enforce_eager: bool = True

    def as_dict(self) -> dict:
        return asdict(self)


def fit_engine(dtype: str = "auto", kv_cache_space_gib: int | None = None,
               enforce_eager: bool | None = None) -> EngineHardware:
    """Choose device, dtype, CPU thread binding, KV-cache space and eager vs compiled for this machine.

    Precedence: an explicit argument, then the vLLM environment variable if the user set it, then ours.
    """
    gpu = has_cuda_gpu()
    flags = cpu_flags()
    interesting = tuple(sorted(f for f in flags if f in {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}))
    if gpu:  # CUDA graphs and compilation pay off on a GPU; that is vLLM's own default there
        eager = False if enforce_eager is None else enforce_eager
        return EngineHardware("cuda", choose_dtype(dtype, gpu=True), None, None, interesting, eager)
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(ncpu))
    bind = os.environ.get("VLLM_CPU_OMP_THREADS_BIND") or _cpu_range(cores)
    kv_env = os.environ.get("VLLM_CPU_KVCACHE_SPACE")
    kv_gib = kv_cache_space_gib or (int(kv_env) if kv_env else default_kv_cache_gib())  # explicit beats the environment
    # On the CPU, compiling cost 70 s more start-up for no measurable gain (benchmarks/engine_config.py).
    eager = True if enforce_eager is None else enforce_eager
    return EngineHardware("cpu", choose_dtype(dtype, gpu=False, flags=flags), bind, kv_gib, interesting, eager)


def node0_memory_gib() -> float | None:
    """Total memory of NUMA node 0, where vLLM-CPU allocates (None if the kernel does not say)."""
    try:
        with open("/sys/devices/system/node/node0/meminfo", encoding="utf-8") as f:
            for line in f:
                if "MemTotal:" in line:
                    return int(line.split()[-2]) / 2**20  # kB -> GiB
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_kv_cache_gib(node_gib: float | None = None) -> int:
    """KV-cache space: a sixth of NUMA node 0's memory, 1 to 32 GiB, leaving the rest for weights and
    activations. Here node 0 has 12.3 GiB, giving 2 GiB: enough for 91 concurrent 1024-token requests
    of the 135M default model; vLLM's own default (a share of all memory) failed to start here.

    >>> default_kv_cache_gib(12.3), default_kv_cache_gib(4.0), default_kv_cache_gib(500.0)
    (2, 1, 32)
    """
    node_gib = node0_memory_gib() if node_gib is None else node_gib
    return 2 if node_gib is None else max(1, min(32, int(node_gib // 6)))


def apply_engine_env(hw: EngineHardware) -> None:
    """Export the chosen CPU settings for vLLM's engine process (it reads them from the environment;
    `fit_engine` already took any value the user had set there)."""
    if hw.device != "cpu":
        return
    os.environ["VLLM_CPU_OMP_THREADS_BIND"] = hw.cpu_threads_bind or "auto"
    os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(hw.kv_cache_space_gib)
    logger.info(
        "vLLM CPU engine: dtype=%s threads=%s kv_cache=%s GiB eager=%s flags=%s", hw.dtype,
        os.environ["VLLM_CPU_OMP_THREADS_BIND"], os.environ["VLLM_CPU_KVCACHE_SPACE"], hw.enforce_eager, ",".join(hw.cpu_flags),
    )


def _cpu_range(cores: list[int]) -> str:
    """'0-3' for contiguous cores, '0,2,5' otherwise (the format VLLM_CPU_OMP_THREADS_BIND takes)."""
    if cores and cores == list(range(cores[0], cores[-1] + 1)):
        return f"{cores[0]}-{cores[-1]}" if len(cores) > 1 else str(cores[0])
    return ",".join(map(str, cores))
