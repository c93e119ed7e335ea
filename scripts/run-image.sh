#!/usr/bin/env bash
# Runs xdplinkd's image with podman the way a Kubernetes DaemonSet runs it: in the host's network namespace, the
# host's bpffs and namespace directory mounted (the latter so that namespaces made later appear inside), the
# config directory mounted read-only, a read-only root file system, and only the capabilities the daemon uses.
# In the foreground: its JSON log lines on stdout, and `podman stop NAME` (SIGTERM) ends it with exit 0. As root:
#
#   sudo scripts/run-image.sh                         # /etc/xdplinkd/config.yaml, /sys/fs/bpf, /run/netns
#   sudo scripts/run-image.sh --netns /run/netns/test --bpffs /tmp/bpffs --config /tmp/conf
#
# docs/image.md says what each option stands for in a DaemonSet.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: sudo scripts/run-image.sh [--image IMAGE] [--name NAME] [--netns host|PATH] [--bpffs DIR] [--netns-dir DIR]
                                 [--config DIR] [--no-sys-admin] [--create] [-- ARGS...]

  --image IMAGE    default localhost/xdplinkd:latest
  --name NAME      the container's name (default xdplinkd); it is removed when it exits
  --netns PATH     run in this network namespace (a namespace file, /run/netns/NAME) instead of the host's
  --bpffs DIR      the bpffs mounted at /sys/fs/bpf, where the pins live (default /sys/fs/bpf)
  --netns-dir DIR  a directory of pods' namespace files, mounted at the same path, rslave (default /run/netns;
                   repeatable; the first given replaces the default)
  --config DIR     the directory holding config.yaml, mounted read-only at /etc/xdplinkd (default /etc/xdplinkd)
  --no-sys-admin   without CAP_SYS_ADMIN: enough when no entry names another namespace (netns:) and the seccomp
                   profile lets bpf(2) through with CAP_BPF (podman 4.3's default profile does not)
  --create         only create the container (podman create); `podman start --attach NAME` runs it
  ARGS             the daemon's arguments instead of the image's (run --config /etc/xdplinkd/config.yaml --watch-config)

environment: PODMAN_FLAGS, podman's global options, as for scripts/build-image.sh
EOF
}
die() { echo "run-image: $*" >&2; exit 1; }

IMAGE=localhost/xdplinkd:latest
NAME=xdplinkd
NETNS=host
BPFFS=/sys/fs/bpf
NETNS_DIRS=()
CONFIG=/etc/xdplinkd
CAPS=CAP_BPF,CAP_NET_ADMIN,CAP_PERFMON,CAP_SYS_ADMIN
VERB=run
while [ $# -gt 0 ]; do
  case "$1" in
    --image) [ $# -ge 2 ] || die "--image needs an image"; IMAGE=$2; shift 2 ;;
    --name) [ $# -ge 2 ] || die "--name needs a name"; NAME=$2; shift 2 ;;
    --netns) [ $# -ge 2 ] || die "--netns needs a path"; NETNS=$2; shift 2 ;;
    --bpffs) [ $# -ge 2 ] || die "--bpffs needs a directory"; BPFFS=$2; shift 2 ;;
    --netns-dir) [ $# -ge 2 ] || die "--netns-dir needs a directory"; NETNS_DIRS+=("$2"); shift 2 ;;
    --config) [ $# -ge 2 ] || die "--config needs a directory"; CONFIG=$2; shift 2 ;;
    --no-sys-admin) CAPS=CAP_BPF,CAP_NET_ADMIN,CAP_PERFMON; shift ;;
    --create) VERB=create; shift ;;
    --) shift; break ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[ ${#NETNS_DIRS[@]} -gt 0 ] || NETNS_DIRS=(/run/netns)
DEFAULT_PODMAN_FLAGS=$(sed '/^#/d' "$(dirname "$(readlink -f "$0")")/podman-flags")
# shellcheck disable=SC2206 # a list of words
PODMAN=(podman ${PODMAN_FLAGS-$DEFAULT_PODMAN_FLAGS})

hard=$(ulimit -Hn)
nofile=65536
[ "$hard" = unlimited ] || [ "$hard" -ge $nofile ] || nofile=$hard
args=(
  "$VERB" --rm --name "$NAME"
  # hostNetwork: true (or, for a test, a namespace of its own): the links the daemon manages are that namespace's.
  --network "$([ "$NETNS" = host ] && echo host || echo "ns:$NETNS")"
  # securityContext: capabilities drop ALL, add only these; CAP_BPF and CAP_PERFMON for bpf(2) (Linux 5.8+),
  # CAP_NET_ADMIN for RTM_SETLINK with IFLA_XDP, CAP_SYS_ADMIN for setns() into pods' namespaces (and, under
  # podman 4.3's default seccomp profile, for bpf(2) and setns(2) at all: it allows them only with CAP_SYS_ADMIN).
  --cap-drop all --cap-add "$CAPS" --security-opt no-new-privileges
  # readOnlyRootFilesystem: true. /run/xdplinkd (the control socket) is the one place the daemon writes besides the
  # bpffs: a small tmpfs, as an emptyDir with medium: Memory (root's, 0700).
  --read-only --read-only-tmpfs=false --tmpfs /run/xdplinkd:rw,mode=0700,size=1m
  # The host's bpffs: pins outlive the container, and the next one adopts them (same programs, same ids).
  --volume "$BPFFS:/sys/fs/bpf:rw"
  --volume "$CONFIG:/etc/xdplinkd:ro"
  # Explicit limits: podman's default (1048576 descriptors) may be above the machine's hard limit, which fails.
  # A managed namespace holds 3 descriptors.
  --ulimit "nofile=$nofile:$nofile" --ulimit nproc=1024:1024
)
# mountPropagation: HostToContainer (rslave): a namespace file bound on the host after the start appears inside.
for d in "${NETNS_DIRS[@]}"; do args+=(--volume "$d:$d:ro,rslave"); done
exec "${PODMAN[@]}" "${args[@]}" "$IMAGE" "$@"
