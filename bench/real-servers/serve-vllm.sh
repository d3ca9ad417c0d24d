#!/usr/bin/env bash
# Serves a model with vLLM's CPU build on 127.0.0.1 (docs/real-servers.md), in the
# foreground: Ctrl-C stops it. Without a model directory, builds the tests' tiny random
# Llama (nothing downloaded) into a temporary one.
#   bench/real-servers/serve-vllm.sh [MODEL_DIR] [PORT]   (default port 8000)
# Install first: bench/real-servers/install-vllm.sh (VENV, default .venv-vllm).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv-vllm}
PORT=${2:-8000}
MODEL=${1:-}
export VLLM_TARGET_DEVICE=cpu HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1}
export VLLM_CPU_OMP_THREADS_BIND=${VLLM_CPU_OMP_THREADS_BIND:-nobind}
if [ -z "$MODEL" ]; then
  MODEL=$(mktemp -d)/tiny-llama
  "$VENV/bin/python" tests/realservers/build_tiny_llama.py "$MODEL" README.md docs/*.md \
    >/dev/null 2>&1
  echo "tiny model built in $MODEL"
fi
exec "$VENV/bin/python" -m vllm.entrypoints.openai.api_server --host 127.0.0.1 \
  --port "$PORT" --model "$MODEL" --served-model-name "$(basename "$MODEL")" \
  --dtype float32 --enforce-eager --max-model-len 512 --max-num-seqs 8
