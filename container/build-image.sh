#!/usr/bin/env bash
# Builds the indigo-loadtest container image from this checkout, with no registry access:
#   1. wheels/: this package's wheel and its dependencies' wheels, made by the host's pip
#      ($PYTHON, default .venv/bin/python, else python3: the same Python minor version and
#      C library as the image, e.g. 3.11 on Debian bookworm);
#   2. with --debian-base: the base image localhost/indigo-base:bookworm made from Debian
#      packages with debootstrap (root only; made once, reused while it exists);
#   3. `podman build` (or docker) of the Dockerfile, installing from wheels/ with --no-index.
#
#   container/build-image.sh [--debian-base] [--configure-podman] [--tag NAME]
#                            [--base-image IMAGE] [--rebuild-base]
#
# --configure-podman (for CI machines like the project's, as root): writes
# container/podman-ci.conf to /etc/containers/containers.conf when that file is absent or
# was written by this script before; an existing file of your own is never changed.
# --configure-podman-only does that and nothing else (./run-tests.sh, as root).
# Environment: ENGINE (podman, else docker), PYTHON, DEBIAN_MIRROR.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"

tag="indigo-loadtest:latest"
base_image=""
debian_base=false
configure=false
configure_only=false
rebuild_base=false
DEBIAN_BASE_TAG="localhost/indigo-base:bookworm"
CONF_MARK="# written by indigo-loadtest container/build-image.sh --configure-podman"

die() { echo "error: $*" >&2; exit 1; }
# An option's value: present, and not the next option (`--tag --debian-base`).
need_value() { [ $# -ge 2 ] && [ -n "$2" ] && [ "${2#-}" = "$2" ] || die "$1 needs a value"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --tag) need_value "$@"; tag="$2"; shift 2 ;;
    --base-image) need_value "$@"; base_image="$2"; shift 2 ;;
    --debian-base) debian_base=true; shift ;;
    --rebuild-base) rebuild_base=true; shift ;;
    --configure-podman) configure=true; shift ;;
    --configure-podman-only) configure=true; configure_only=true; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' \
                 "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
done

engine="${ENGINE:-}"
if [ -z "$engine" ]; then
  if command -v podman >/dev/null 2>&1; then engine=podman
  elif command -v docker >/dev/null 2>&1; then engine=docker
  else die "neither podman nor docker is installed"; fi
fi
# Before the wheelhouse is rebuilt: a misspelt ENGINE would fail only after it.
command -v "$engine" >/dev/null 2>&1 || die "ENGINE=$engine: no such command"

configure_podman() {
  # Idempotent: the same content is written only over a file this script wrote.
  local conf=/etc/containers/containers.conf
  [ "$(id -u)" = "0" ] || die "--configure-podman needs root (it writes $conf)"
  if [ -e "$conf" ] && ! head -n 1 "$conf" | grep -qxF "$CONF_MARK"; then
    echo "note: $conf exists and is not ours; left as it is" >&2
    return 0
  fi
  mkdir -p /etc/containers
  { echo "$CONF_MARK"; cat "$here/podman-ci.conf"; } > "$conf.tmp"
  if cmp -s "$conf.tmp" "$conf"; then rm -f "$conf.tmp"; else mv "$conf.tmp" "$conf"; fi
}

build_debian_base() {
  if [ "$rebuild_base" = false ] && "$engine" image exists "$DEBIAN_BASE_TAG" 2>/dev/null; then
    return 0
  fi
  [ "$(id -u)" = "0" ] || die "--debian-base needs root (debootstrap)"
  command -v debootstrap >/dev/null 2>&1 || die "debootstrap is not installed"
  local root log
  root="$(mktemp -d)"
  log="$(mktemp)"
  echo "building $DEBIAN_BASE_TAG with debootstrap (about a minute)..." >&2
  # python3-venv brings ensurepip's pip wheel: the image's venv needs nothing more.
  if ! debootstrap --variant=minbase --include=python3,python3-venv bookworm "$root" \
      "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -rf "$root" "$log"
    die "debootstrap failed (log above)"
  fi
  # What no container needs: package caches and lists, documentation, translations.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
         "$root"/usr/share/doc "$root"/usr/share/man "$root"/usr/share/locale "$root"/usr/share/info
  tar -C "$root" -c . | "$engine" import -q - "$DEBIAN_BASE_TAG" >/dev/null
  rm -rf "$root" "$log"
}

build_wheelhouse() {
  local py="${PYTHON:-}"
  if [ -z "$py" ]; then
    if [ -x "$repo/.venv/bin/python" ]; then py="$repo/.venv/bin/python"; else py=python3; fi
  fi
  rm -rf "$repo/wheels"
  mkdir -p "$repo/wheels"
  local isolation=()
  # Without build isolation when setuptools is at hand: nothing to download to build ours.
  if "$py" -c 'import setuptools' 2>/dev/null; then isolation=(--no-build-isolation); fi
  # (This machine's pip configuration warns about each absent index folder: noise.)
  "$py" -m pip wheel -q "${isolation[@]}" -w "$repo/wheels" "$repo" \
    2> >(grep -v '^WARNING: Location' >&2) || die "building the wheelhouse with $py failed"
}

[ "$configure" = true ] && configure_podman
[ "$configure_only" = true ] && exit 0
if [ "$debian_base" = true ]; then
  [ -z "$base_image" ] || die "--debian-base and --base-image exclude each other"
  build_debian_base
  base_image="$DEBIAN_BASE_TAG"
fi
build_wheelhouse
args=(build -q -t "$tag" -f "$repo/Dockerfile")
[ -n "$base_image" ] && args+=(--build-arg "BASE_IMAGE=$base_image")
# podman: use only the local images (the base is local or already pulled by the user).
[ "$engine" = podman ] && [ "$debian_base" = true ] && args+=(--pull=never)
previous="$("$engine" image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)"
"$engine" "${args[@]}" "$repo" >/dev/null
# Of no further use: the build stage's image, and the one this tag named before (unless a
# container still uses it).
"$engine" image prune -f --filter label=org.indigo-loadtest.stage=build >/dev/null || true
if [ -n "$previous" ] && [ "$previous" != "$("$engine" image inspect --format '{{.Id}}' "$tag")" ]; then
  "$engine" rmi "$previous" >/dev/null 2>&1 || true
fi
echo "built $tag ($("$engine" image inspect --format '{{.Size}}' "$tag") bytes)"
