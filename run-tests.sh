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
fi  # set-up
.venv/bin/python -m ruff check src tests scenarios bench

# Pass 1: the whole suite on the default event loop (uvloop where installed).
env -u INDIGO_EVENT_LOOP -u INDIGO_PURE_PYTHON .venv/bin/python -m pytest -q "$@" && first=0 || first=$?

# Pass 2: the tests whose outcome depends on the event loop, again on the standard
# library's loop (INDIGO_EVENT_LOOP=asyncio: what Windows always runs, docs/platforms.md):
# those that start the CLI, its workers or the simulator, or run the HTTP client
# (tests/http/http_servers.run follows the variable); and with the stream path's .py files
# (INDIGO_PURE_PYTHON=1: what an install without a C compiler runs), where pass 1 ran
# them compiled (setup.py; tests/cli/test_stream_path.py). Left out, as the loop changes
# nothing there or they would cost minutes for paths already covered here:
#   tests/metrics, scenario, outputs, report, install: in-process logic, no loop of the tool's;
#   tests/engine but test_workers.py: on the standard loop in pass 1 already (engine_helpers);
#   test_platform_fallbacks.py, engine/test_event_loop.py: choose their loop themselves;
#   test_ci_workflow.py: a static lint of the workflow;
#   test_report.py, test_sweep_report.py: page rendering in Chromium;
#   test_bench.py, test_readme_examples.py: minutes of runs through the same engine and
#     client as the rest of tests/cli (bench profiles and README commands, not I/O);
#   simulator/test_swagger_conformance.py: handler schemas, not I/O.
ASYNCIO_PATHS=(tests/cli tests/simulator tests/scenarios tests/hostile tests/http tests/llm
               tests/secrets tests/monitoring tests/engine/test_workers.py)
ASYNCIO_SKIP=(tests/cli/test_platform_fallbacks.py tests/cli/test_ci_workflow.py
              tests/cli/test_report.py tests/cli/test_sweep_report.py tests/cli/test_bench.py
              tests/cli/test_readme_examples.py tests/simulator/test_swagger_conformance.py
              tests/engine/test_event_loop.py)
selection=("${ASYNCIO_PATHS[@]}")
for arg in "$@"; do
  if [[ $arg != -* && -e ${arg%%::*} ]]; then selection=(); break; fi  # the caller's paths
done
# test_a_light_run_does_not_warn: the standard loop's timers still run up to ~1.3 ms late
#   on a loaded machine, past the 1 ms resolution allowed for them (a CI run failed on it).
ASYNCIO_DESELECT=(tests/cli/test_generator_health.py::test_a_light_run_does_not_warn)
INDIGO_EVENT_LOOP=asyncio INDIGO_PURE_PYTHON=1 \
  .venv/bin/python -m pytest -q "${ASYNCIO_SKIP[@]/#/--ignore=}" \
  "${ASYNCIO_DESELECT[@]/#/--deselect=}" ${selection[@]+"${selection[@]}"} "$@" \
  && second=0 || second=$?  # (the empty-array form is for macOS's bash 3.2 under set -u)
[ "$second" = 5 ] && second=0  # 5: the caller's selection has no test for this pass

[ "$first" = 0 ] || echo "run-tests.sh: pass 1 (default event loop) failed" >&2
[ "$second" = 0 ] || echo "run-tests.sh: pass 2 (INDIGO_EVENT_LOOP=asyncio INDIGO_PURE_PYTHON=1) failed" >&2
[ "$first" = 0 ] && [ "$second" = 0 ]
