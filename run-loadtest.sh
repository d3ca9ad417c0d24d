#!/usr/bin/env bash
# Seed-compatible entry point: sets up .venv on first use, then calls the CLI.
#   ./run-loadtest.sh                          run every scenario (run --all)
#   ./run-loadtest.sh --list                   list the scenarios
#   ./run-loadtest.sh NAME [flags]             run one scenario (flags as for `run`)
#   ./run-loadtest.sh bench [flags]            benchmark a server (docs/benchmark.md)
#   ./run-loadtest.sh --all|--help|--dry-run.. passed to `indigo-loadtest run`
# Configuration comes from .env in the current folder and the environment (the CLI
# reads them; this script loads nothing itself).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"

if [ ! -x "$venv/bin/indigo-loadtest" ]; then
  echo "setting up .venv (first run)..." >&2
  log="$(mktemp)"
  # pip's own chatter goes to a log, shown only if the setup fails.
  if ! { "${PYTHON:-python3}" -m venv "$venv" &&
         { "$venv/bin/python" -m pip install -q --upgrade pip || true; } &&
         "$venv/bin/python" -m pip install -q -e "$here"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "error: setting up $venv failed (see above)" >&2
    exit 1
  fi
  rm -f "$log"
fi
cli="$venv/bin/indigo-loadtest"

if [ $# -eq 0 ]; then
  exec "$cli" run --all
fi
case "$1" in
  --list|-l|list) shift; exec "$cli" list "$@" ;;
  -h|--help) exec "$cli" run --help ;;
  list|check|run|new|serve|monitoring|bench|--version) exec "$cli" "$@" ;;
  *) exec "$cli" run "$@" ;;  # a scenario name or path, or run flags such as --all
esac
