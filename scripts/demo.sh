#!/usr/bin/env bash
# The main job on a bundled example, on this machine's real kernel but touching nothing of it: a private network
# namespace with a few veths, xdplinkd attaching bpf/xdp_pass.o, links added and renamed while it runs, a pod-like
# namespace that gets its eth0 as a CNI plugin gives it one (and xdp_drop on it), then all of it removed again.
# Run as root: sudo npm run demo
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (sudo npm run demo): it creates a network namespace and loads XDP" >&2; exit 1; }
[ -e dist/cli.js ] && [ -e bpf/xdp_pass.o ] || npm run build

NS="xdplinkd-demo-$$"
POD="xdplinkd-demo-pod-$$"
WORK=$(mktemp -d /tmp/xdplinkd-demo.XXXXXX)
DAEMON=""
cleanup() {
  [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null || true
  umount -l "$WORK/netns/pod-1" 2>/dev/null || true
  umount -l "$WORK/netns" 2>/dev/null || true
  ip netns del "$POD" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  umount "$WORK/bpffs" 2>/dev/null || true
  rm -rf "$WORK"
  echo "== cleaned up: namespaces $NS and $POD and $WORK removed"
}
trap cleanup EXIT
x() { ip netns exec "$NS" node dist/cli.js "$@"; }
step() { printf '\n== %s\n' "$*"; }

mkdir "$WORK/bpffs" && mount -t bpf -o mode=0700 bpf "$WORK/bpffs"
cp bpf/xdp_pass.o bpf/xdp_drop.o "$WORK/"
# Where pods' namespace files are bound, as container runtimes bind them under /run/netns. A shared mount point, as
# `ip netns add` makes /run/netns: a namespace bound there later reaches the daemon's own mount namespace.
mkdir -m 0755 "$WORK/netns" && mount --bind "$WORK/netns" "$WORK/netns" && mount --make-shared "$WORK/netns"
cat > "$WORK/config.yaml" <<YAML
settle: 50ms
bpffs: $WORK/bpffs
control-socket: $WORK/control.sock
on-exit: detach
netns-dirs: [$WORK/netns]
attach:
  - name: veths
    interfaces: ["veth*", "demo*"]
    kinds: [veth]
    object: ./xdp_pass.o
    mode: auto
  - name: pods
    netns: ["pod-*"]
    interfaces: [eth0]
    object: ./xdp_drop.o
    mode: generic
YAML

step "namespace $NS with two veth pairs (one of them matches only by its alternative name)"
ip netns add "$NS"
ip -n "$NS" link add veth0 type veth peer name other0
ip -n "$NS" link add eth-a type veth peer name other1
ip -n "$NS" link set eth-a up
ip -n "$NS" link property add dev eth-a altname demo-alt-name
cat "$WORK/config.yaml"

step "xdplinkd check: what it would attach where"
x check --config "$WORK/config.yaml"

step "xdplinkd run (logs below)"
ip netns exec "$NS" node dist/cli.js run --config "$WORK/config.yaml" &
DAEMON=$!
for _ in $(seq 100); do [ -S "$WORK/control.sock" ] && break; sleep 0.1; done
sleep 0.5

step "xdplinkd links: veth0 and eth-a (alt name demo-alt-name) run xdp_pass; the others do not"
x links

step "a new veth pair appears (down): attached before it ever comes up"
ip -n "$NS" link add veth7 type veth peer name other7
sleep 0.5
step "veth0 renamed to wan0 (out of the pattern): our program is detached"
ip -n "$NS" link set veth0 name wan0
sleep 0.5
x links

step "a pod-like namespace, bound as $WORK/netns/pod-1, gets eth0 as a CNI plugin gives it one"
ip netns add "$POD"
touch "$WORK/netns/pod-1" && mount --bind "/run/netns/$POD" "$WORK/netns/pod-1"
ip -n "$NS" link add tmp-pod type veth peer name host-pod
ip -n "$NS" link set tmp-pod netns "$POD"
ip -n "$POD" link set tmp-pod name eth0
ip -n "$POD" addr add 10.99.0.2/24 dev eth0 && ip -n "$POD" link set eth0 up
ip -n "$NS" addr add 10.99.0.1/24 dev host-pod && ip -n "$NS" link set host-pod up
sleep 0.5
ip -n "$POD" -d link show eth0 | grep -E '^[0-9]+:|prog/xdp' || true
step "ping into the pod: xdp_drop on its eth0 drops it"
ip netns exec "$NS" ping -c 2 -W 1 10.99.0.2 || echo "(no answer: dropped, as configured)"

step "xdplinkd status (one table per namespace)"
x status --socket "$WORK/control.sock" || true

step "what the kernel says (ip -d link show, bpftool net)"
ip -n "$NS" -d link show | grep -E '^[0-9]+:|prog/xdp' || true
ip netns exec "$NS" bpftool net show 2>/dev/null | sed -n '1,12p' || true

step "SIGTERM (on-exit: detach removes our programs)"
kill "$DAEMON"; wait "$DAEMON" || true; DAEMON=""
x links
