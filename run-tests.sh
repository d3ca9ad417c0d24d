#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh machine, then runs it.
set -euo pipefail
cd "$(dirname "$0")"

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
.venv/bin/python -m ruff check src tests scenarios bench
exec .venv/bin/python -m pytest -q "$@"
