#!/usr/bin/env bash
# The main job on a bundled example, on this machine's real kernel but touching nothing of it: a private network
# namespace with a few veths, xdplinkd attaching bpf/xdp_pass.o, links added and renamed while it runs, then all of
# it removed again. Run as root: sudo npm run demo
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (sudo npm run demo): it creates a network namespace and loads XDP" >&2; exit 1; }
[ -e dist/cli.js ] && [ -e bpf/xdp_pass.o ] || npm run build

NS="xdplinkd-demo-$$"
WORK=$(mktemp -d /tmp/xdplinkd-demo.XXXXXX)
DAEMON=""
cleanup() {
  [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  umount "$WORK/bpffs" 2>/dev/null || true
  rm -rf "$WORK"
  echo "== cleaned up: namespace $NS and $WORK removed"
}
trap cleanup EXIT
x() { ip netns exec "$NS" node dist/cli.js "$@"; }
step() { printf '\n== %s\n' "$*"; }

mkdir "$WORK/bpffs" && mount -t bpf -o mode=0700 bpf "$WORK/bpffs"
cp bpf/xdp_pass.o "$WORK/"
cat > "$WORK/config.yaml" <<YAML
settle: 50ms
bpffs: $WORK/bpffs
control-socket: $WORK/control.sock
on-exit: detach
attach:
  - name: veths
    interfaces: ["veth*", "demo*"]
    kinds: [veth]
    object: ./xdp_pass.o
    mode: auto
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

step "xdplinkd status"
x status --socket "$WORK/control.sock" || true

step "what the kernel says (ip -d link show, bpftool net)"
ip -n "$NS" -d link show | grep -E '^[0-9]+:|prog/xdp' || true
ip netns exec "$NS" bpftool net show 2>/dev/null | sed -n '1,12p' || true

step "SIGTERM (on-exit: detach removes our programs)"
kill "$DAEMON"; wait "$DAEMON" || true; DAEMON=""
x links
