#!/usr/bin/env bash
# Builds xdplinkd's container image from the Containerfile where no container registry is reachable: the two Debian
# 13 bases it starts from are made here by mmdebstrap, from the same package mirror apt uses, and imported into
# podman; then `podman build` runs the Containerfile on them. As root:
#
#   sudo scripts/build-image.sh                       # -> localhost/xdplinkd:latest, and its size
#   sudo scripts/build-image.sh --base docker.io/library/debian:trixie-slim   # a registry's base instead
#
# The bases are kept in podman's storage under a tag that names what they were made from (suite, mirror, package
# lists), so a second run makes none; and an image built from the same sources, Containerfile and bases (a hash of
# them is its label xdplinkd.inputs) is not built again.
# The build stage needs the npm registry (npm ci): the build runs with the host's network (--network host, so no
# container network is set up on the host), and the host's CA bundle is handed to npm as the build secret npm-ca
# (for a TLS-inspecting proxy; never stored in a layer). docs/image.md has the rest.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'EOF'
usage: sudo scripts/build-image.sh [--tag NAME] [--base IMAGE] [--suite SUITE] [--mirror URL] [--refresh-bases]
                                  [--rebuild]

  --tag NAME        the image to build (default localhost/xdplinkd:latest)
  --base IMAGE      build from this Debian 13 image (pulled from its registry) instead of making the bases here
  --suite SUITE     the Debian suite of the bases made here (default trixie)
  --mirror URL      the Debian mirror mmdebstrap downloads from (default: mmdebstrap's, deb.debian.org)
  --refresh-bases   make the bases again even if podman has them (to pick up Debian's updates)
  --rebuild         build the image even if one made from the same inputs is there

environment:
  PODMAN_FLAGS      podman's global options; default: scripts/podman-flags (what the CI machine needs: no
                    overlay storage, no crun, no systemd); set it empty to use podman's own configuration
  NPM_CA            a PEM bundle for npm inside the build (default /etc/ssl/certs/ca-certificates.crt if present)
EOF
}
die() { echo "build-image: $*" >&2; exit 1; }
say() { echo "build-image: $*"; }

TAG=localhost/xdplinkd:latest
BASE=
SUITE=trixie
MIRROR=
REFRESH=0
REBUILD=0
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) [ $# -ge 2 ] || die "--tag needs a name"; TAG=$2; shift 2 ;;
    --base) [ $# -ge 2 ] || die "--base needs an image"; BASE=$2; shift 2 ;;
    --suite) [ $# -ge 2 ] || die "--suite needs a suite"; SUITE=$2; shift 2 ;;
    --mirror) [ $# -ge 2 ] || die "--mirror needs a URL"; MIRROR=$2; shift 2 ;;
    --refresh-bases) REFRESH=1; shift ;;
    --rebuild) REBUILD=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die "run as root (mmdebstrap makes root file systems; the image is built in root's podman storage)"
command -v podman >/dev/null || die "podman is missing (Debian: apt-get install podman runc mmdebstrap)"
DEFAULT_PODMAN_FLAGS=$(sed '/^#/d' scripts/podman-flags)
# shellcheck disable=SC2206 # a list of words
PODMAN=(podman ${PODMAN_FLAGS-$DEFAULT_PODMAN_FLAGS})
NPM_CA=${NPM_CA-/etc/ssl/certs/ca-certificates.crt}

start=$(date +%s)
WORK=$(mktemp -d /tmp/xdplinkd-image.XXXXXX)
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

# What each base holds. Build: Node.js and npm, clang for bpf/*.o, libbpf's and the kernel's headers, CA
# certificates for npm. Runtime: Node.js and libbpf1 (koffi's binary needs only libstdc++, which Node.js brings).
BUILD_PACKAGES=nodejs,npm,clang,make,libbpf-dev,linux-libc-dev,ca-certificates
RUNTIME_PACKAGES=nodejs,libbpf1
# As Debian's -slim images: no manual pages, documentation (but the copyright files), translations or info pages.
# mmdebstrap writes these into the base's /etc/dpkg/dpkg.cfg.d/, so packages installed later follow them too.
SLIM=(--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/info/*')

# A base's name: its role, and a hash of what goes into it (the first item: bump it when the recipe changes).
base_name() { # role packages
  local h
  h=$(printf '%s\n' "1" "$SUITE" "$MIRROR" "$2" "${SLIM[*]}" | sha256sum | cut -c1-12)
  echo "localhost/xdplinkd-$1-base:$SUITE-$h"
}
# Makes the base, unless podman has it: mmdebstrap's tarball imported as an image.
make_base() { # role packages name
  local role=$1 packages=$2 name=$3 t0
  if [ "$REFRESH" -eq 0 ] && "${PODMAN[@]}" image exists "$name"; then
    say "$role base $name: present"
    return 0
  fi
  command -v mmdebstrap >/dev/null || die "mmdebstrap is missing (Debian: apt-get install mmdebstrap)"
  t0=$(date +%s)
  say "$role base: mmdebstrap $SUITE with $packages ..."
  # The tarball first, then the import: a failed mmdebstrap never leaves a half base under the name.
  mmdebstrap --quiet --variant=apt "${SLIM[@]}" --include="$packages" "$SUITE" "$WORK/$role.tar" ${MIRROR:+"$MIRROR"} \
    >"$WORK/$role.log" 2>&1 || { cat "$WORK/$role.log" >&2; die "mmdebstrap failed for the $role base"; }
  "${PODMAN[@]}" import --quiet --message "xdplinkd $role base: mmdebstrap --variant=apt $SUITE, $packages" \
    "$WORK/$role.tar" "$name" >/dev/null
  rm -f "$WORK/$role.tar"
  say "$role base $name: made in $(($(date +%s) - t0)) s"
}

build_args=()
if [ -n "$BASE" ]; then
  build_args+=(--build-arg "BASE=$BASE")
else
  build_base=$(base_name build "$BUILD_PACKAGES")
  runtime_base=$(base_name runtime "$RUNTIME_PACKAGES")
  # Both at once: mostly downloads.
  make_base build "$BUILD_PACKAGES" "$build_base" &
  b=$!
  make_base runtime "$RUNTIME_PACKAGES" "$runtime_base" &
  r=$!
  rc=0
  wait $b || rc=1
  wait $r || rc=1
  [ $rc -eq 0 ] || die "making the bases failed"
  build_args+=(--pull=never --build-arg "BUILD_BASE=$build_base" --build-arg "RUNTIME_BASE=$runtime_base")
fi
[ -n "$NPM_CA" ] && [ -s "$NPM_CA" ] && build_args+=(--secret "id=npm-ca,src=$NPM_CA")

# What the image is made from: the context files .dockerignore lets in, the Containerfile and the bases. An image
# already tagged with this hash (its label xdplinkd.inputs) is not built again.
context_files() {
  local pat m
  shopt -s nullglob
  sed -n 's/^!//p' .dockerignore | while IFS= read -r pat; do
    # shellcheck disable=SC2086 # a glob from .dockerignore
    for m in ${pat%/}; do if [ -d "$m" ]; then find "$m" -type f; else echo "$m"; fi; done
  done | LC_ALL=C sort -u
}
inputs=$({ printf '%s\n' "$BASE" "${build_base:-}" "${runtime_base:-}"; context_files | xargs sha256sum; sha256sum Containerfile .dockerignore; } | sha256sum | cut -c1-16)
old=$("${PODMAN[@]}" image inspect --format '{{.Id}} {{index .Labels "xdplinkd.inputs"}}' "$TAG" 2>/dev/null || true)
if [ "$REBUILD" -eq 0 ] && [ "${old#* }" = "$inputs" ]; then
  say "$TAG is up to date (inputs $inputs)"
else
  t0=$(date +%s)
  say "podman build -> $TAG (inputs $inputs)"
  # --layers=false: one container per stage, committed once. With vfs storage every layer, and every cached layer
  # a build starts from, is a full copy of the stage's root (the build base is ~750 MB): a no-op rebuild with layers
  # took longer than a whole build without them. The inputs hash above is the cache instead.
  # Limits as the container gets them at run time: podman's default (1048576 descriptors) is above the CI machine's
  # hard limit.
  "${PODMAN[@]}" build --layers=false --network host --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
    -f Containerfile "${build_args[@]}" --label "xdplinkd.inputs=$inputs" -t "$TAG" . >"$WORK/build.log" 2>&1 ||
    { cat "$WORK/build.log" >&2; die "podman build failed"; }
  say "built in $(($(date +%s) - t0)) s"
  # The image this one replaces, if nothing else names it any more.
  old=${old%% *}
  if [ -n "$old" ] && [ "$("${PODMAN[@]}" image inspect --format '{{.Id}}' "$TAG")" != "$old" ] &&
    [ -z "$("${PODMAN[@]}" image inspect --format '{{join .RepoTags " "}}' "$old" 2>/dev/null)" ]; then
    "${PODMAN[@]}" rmi "$old" >/dev/null 2>&1 || true
  fi
fi
size=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$TAG")
say "$TAG: $((size / 1000000)) MB ($size bytes, uncompressed); $(($(date +%s) - start)) s in all"
