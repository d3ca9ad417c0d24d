#!/usr/bin/env bash
# Seed-compatible entry point: sets up .venv on first use, then calls the CLI.
#   ./run-loadtest.sh                          run every scenario (run --all)
#   ./run-loadtest.sh --list                   list the scenarios
#   ./run-loadtest.sh NAME [flags]             run one scenario (flags as for `run`)
#   ./run-loadtest.sh --all|--help|--dry-run.. passed to `indigo-loadtest run`
# Configuration comes from .env in the current folder and the environment (the CLI
# reads them; this script loads nothing itself).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"

if [ ! -x "$venv/bin/indigo-loadtest" ]; then
  echo "Setting up $venv (first run)..." >&2
  "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  "$venv/bin/python" -m pip install -q -e "$here" >&2
fi
cli="$venv/bin/indigo-loadtest"

if [ $# -eq 0 ]; then
  exec "$cli" run --all
fi
case "$1" in
  --list|-l|list) shift; exec "$cli" list "$@" ;;
  -h|--help) exec "$cli" run --help ;;
  list|check|run|new|serve|monitoring|--version) exec "$cli" "$@" ;;
  *) exec "$cli" run "$@" ;;  # a scenario name or path, or run flags such as --all
esac
