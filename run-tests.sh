#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh machine, then runs it in two passes
# (below): on the default event loop, then on the standard library's. Arguments go to
# pytest in both passes (a path narrows both to it). INDIGO_TEST_SETUP=0 skips the set-up.
set -euo pipefail
cd "$(dirname "$0")"

if [ "${INDIGO_TEST_SETUP:-1}" != 0 ]; then

# System packages used by the tests: a real Prometheus binary (remote-write tests), nginx
# (a second, independent HTTP server for the client's conformance tests) and headless
# Chromium (the HTML report and compare pages are rendered and inspected in it); podman,
# runc and debootstrap (the container image is built from a Debian base and run).
need_apt=()
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v podman >/dev/null 2>&1 || need_apt+=(podman)
command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || need_apt+=(runc)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need_apt+=(debootstrap)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "warning: missing ${need_apt[*]} (run as root to install); their tests will fail" >&2
  fi
fi

# podman's settings for a machine like CI's (container/podman-ci.conf): only as root, in CI
# or where systemd does not run (a container); an existing
# /etc/containers/containers.conf that the script did not write is left alone.
if [ "$(id -u)" = "0" ] && command -v podman >/dev/null 2>&1 \
   && { [ -n "${CI:-}" ] || [ ! -d /run/systemd/system ]; }; then
  container/build-image.sh --configure-podman-only
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
# The official openai Node client, for tests/simulator/test_openai_node.py (pinned by its
# package-lock.json; the test is skipped where node or the package is missing).
if command -v npm >/dev/null 2>&1; then
  (cd tests/simulator/node && npm install --no-audit --no-fund --silent) \
    || echo "warning: npm install failed; the Node client tests will be skipped" >&2
else
  echo "warning: npm not found; the Node client tests will be skipped" >&2
fi
# --- vLLM (issue 25): the CPU build in its own venv, .venv-vllm, for the tests marked
# `vllm` (tests/realservers, docs/real-servers.md); ~7 min and 3.5 GB the first time, then
# nothing. Where it fails, those tests fail and say why.
bench/real-servers/install-vllm.sh .venv-vllm \
  || echo "warning: vLLM could not be installed; the vllm tests will fail" >&2
# --- end vLLM
fi  # set-up
# Byte-code for the sources, once: each test starts the tool, its workers and the
# simulator as new processes, and where PYTHONDONTWRITEBYTECODE is set each of them would
# compile every module again (~0.1 s a process).
.venv/bin/python -m compileall -q src >/dev/null
.venv/bin/python -m ruff check src tests scenarios bench

# Pass 1: the whole suite on the default event loop (uvloop where installed). Each pass
# ends with its 20 slowest tests.
env -u INDIGO_EVENT_LOOP -u INDIGO_PURE_PYTHON .venv/bin/python -m pytest -q --durations=20 "$@" \
  && first=0 || first=$?

# Pass 2: the tests marked `loop` (their outcome depends on the event loop or the stream
# path: the HTTP client and stream meter, hostile servers, the simulator's own I/O, the
# CLI's signals, workers and start-up), again on the standard library's loop
# (INDIGO_EVENT_LOOP=asyncio: what Windows always runs, docs/platforms.md) with the stream
# path's .py files (INDIGO_PURE_PYTHON=1: what an install without a C compiler runs),
# where pass 1 ran them compiled. tests/README.md says which tests carry the mark.
INDIGO_EVENT_LOOP=asyncio INDIGO_PURE_PYTHON=1 \
  .venv/bin/python -m pytest -q --durations=20 -m loop "$@" \
  && second=0 || second=$?
[ "$second" = 5 ] && second=0  # 5: the caller's selection has no test for this pass

[ "$first" = 0 ] || echo "run-tests.sh: pass 1 (default event loop) failed" >&2
[ "$second" = 0 ] || echo "run-tests.sh: pass 2 (INDIGO_EVENT_LOOP=asyncio INDIGO_PURE_PYTHON=1) failed" >&2
[ "$first" = 0 ] && [ "$second" = 0 ]
