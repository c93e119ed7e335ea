#!/usr/bin/env bash
# Undoes scripts/install.sh:
#
#   sudo scripts/uninstall.sh
#
# stops and disables xdplinkd.service, removes the unit, PREFIX/lib/xdplinkd and the PREFIX/bin/xdplinkd symlink.
# It leaves /etc/xdplinkd (the configuration), drop-ins in /etc/systemd/system/xdplinkd.service.d/, and the pins
# under the bpffs directory (/sys/fs/bpf/xdplinkd) unless --purge-pins.
#
# Stopping the daemon does not stop its programs: with `on-exit: keep` (the default) they stay attached to their
# links, held by the kernel, and keep running until something detaches them; with `on-exit: detach` the daemon
# detaches the ones it attached as it stops. Set on-exit: detach (or attach: [] and reload) before uninstalling to
# leave no program behind.
set -euo pipefail
shopt -s nullglob

usage() {
  cat <<'EOF'
usage: sudo scripts/uninstall.sh [--prefix DIR] [--destdir DIR] [--no-systemctl] [--purge-pins [--bpffs DIR] [--force]]

  --prefix DIR     as given to install.sh (default /usr/local)
  --destdir DIR    remove a staged installation below DIR; implies --no-systemctl
  --no-systemctl   do not run systemctl (stop, disable, daemon-reload)
  --purge-pins     also remove xdplinkd's pins (<bpffs>/<hash>-<program>/) and with them its programs and maps,
                   except for programs still attached to a link of this network namespace
  --bpffs DIR      the pin directory (default: bpffs: in the config, else /sys/fs/bpf/xdplinkd; --destdir does not
                   apply to it)
  --force          with --purge-pins: remove the pins of attached programs too (they keep running, no longer
                   xdplinkd's: a later xdplinkd sees them as foreign)
EOF
}

die() { echo "uninstall: $*" >&2; exit 1; }
say() { echo "uninstall: $*"; }

PREFIX=/usr/local
DESTDIR=
SYSTEMCTL=1
PURGE=0
BPFFS=
FORCE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX=$2; shift 2 ;;
    --prefix=*) PREFIX=${1#*=}; shift ;;
    --destdir) [ $# -ge 2 ] || die "--destdir needs a directory"; DESTDIR=$2; shift 2 ;;
    --destdir=*) DESTDIR=${1#*=}; shift ;;
    --no-systemctl) SYSTEMCTL=0; shift ;;
    --purge-pins) PURGE=1; shift ;;
    --bpffs) [ $# -ge 2 ] || die "--bpffs needs a directory"; BPFFS=$2; shift 2 ;;
    --bpffs=*) BPFFS=${1#*=}; shift ;;
    --force) FORCE=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

[[ $PREFIX =~ ^/[A-Za-z0-9._+/-]*$ ]] || die "--prefix must be an absolute path of letters, digits and ._+-/, got '$PREFIX'"
while [[ $PREFIX == */ ]]; do PREFIX=${PREFIX%/}; done
if [ -n "$DESTDIR" ]; then
  DESTDIR=$(realpath -m -- "$DESTDIR")
  [ "$DESTDIR" = / ] && DESTDIR=
fi
[ -n "$DESTDIR" ] && SYSTEMCTL=0
[ "$(id -u)" -eq 0 ] || [ -n "$DESTDIR" ] || die "run as root (sudo scripts/uninstall.sh)"

LIB=$PREFIX/lib/xdplinkd
BIN=$PREFIX/bin/xdplinkd
ETC=/etc/xdplinkd
CONF=$ETC/config.yaml
UNIT=/etc/systemd/system/xdplinkd.service
D_LIB=$DESTDIR$LIB
D_BIN=$DESTDIR$BIN
D_CONF=$DESTDIR$CONF
D_UNIT=$DESTDIR$UNIT

is_ours() { [ -f "$1/package.json" ] && grep -q '"name": "xdplinkd"' "$1/package.json"; }

# One key of the config file, read with the installed copy of the yaml package (before it is removed); empty when
# the file, the key or the package is missing.
config_key() {
  [ -f "$D_CONF" ] && [ -f "$D_LIB/package.json" ] && command -v node >/dev/null || return 0
  node -e '
    const [lib, file, key] = process.argv.slice(1)
    const yaml = require("node:module").createRequire(lib)("yaml")
    const v = yaml.parse(require("node:fs").readFileSync(file, "utf8"))?.[key]
    if (typeof v === "string") console.log(v)
  ' "$D_LIB/package.json" "$D_CONF" "$1" 2>/dev/null || true
}
ON_EXIT=$(config_key on-exit)
[ -n "$BPFFS" ] || BPFFS=$(config_key bpffs)
[ -n "$BPFFS" ] || BPFFS=/sys/fs/bpf/xdplinkd

# ---- the service --------------------------------------------------------------------------------------------------

systemd_up=0
if [ $SYSTEMCTL = 1 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then systemd_up=1; fi
if [ $systemd_up = 1 ]; then
  if systemctl cat xdplinkd.service >/dev/null 2>&1; then
    systemctl disable --now xdplinkd.service
    say "stopped and disabled xdplinkd.service"
  fi
elif [ $SYSTEMCTL = 1 ] && [ -z "$DESTDIR" ]; then
  say "systemd is not running as PID 1 here: stop any xdplinkd still running yourself"
fi

# `systemctl disable` removes the [Install] links; without systemd (or with --destdir) they are removed here.
for link in "$DESTDIR"/etc/systemd/system/*.wants/xdplinkd.service; do
  [ -L "$link" ] && rm -f -- "$link" && say "removed ${link#"$DESTDIR"}"
done
if [ -e "$D_UNIT" ]; then
  rm -f -- "$D_UNIT"
  say "removed $UNIT"
fi
if [ $systemd_up = 1 ]; then
  systemctl daemon-reload
  systemctl reset-failed xdplinkd.service 2>/dev/null || true
fi

# ---- the program --------------------------------------------------------------------------------------------------

if [ -L "$D_BIN" ]; then
  case "$(readlink "$D_BIN")" in
    ../lib/xdplinkd/dist/cli.js | "$LIB/dist/cli.js") rm -f -- "$D_BIN"; say "removed $BIN" ;;
    *) say "$BIN points at $(readlink "$D_BIN"), not at $LIB: left alone" ;;
  esac
elif [ -e "$D_BIN" ]; then
  say "$BIN is not a symlink install.sh made: left alone"
fi
if [ -e "$D_LIB" ]; then
  is_ours "$D_LIB" || die "$D_LIB is not an xdplinkd installation; not removing it"
  rm -rf -- "$D_LIB"
  say "removed $LIB"
fi

# ---- what stays ---------------------------------------------------------------------------------------------------

if [ -e "$DESTDIR$ETC" ]; then
  say "left $ETC (the configuration); remove it yourself if it is no longer wanted: rm -r $ETC"
fi
if [ -d "$D_UNIT.d" ]; then
  say "left $UNIT.d/ (drop-ins you installed); rm -r $UNIT.d to remove them"
fi

# Our pin directories: <hash16>-<program> (src/programs/naming.ts); nothing else under bpffs is ours.
pin_dirs=()
if [ -d "$BPFFS" ]; then
  for d in "$BPFFS"/*/; do
    d=${d%/}
    [[ $(basename "$d") =~ ^[0-9a-f]{16}-[A-Za-z_][A-Za-z0-9_]*$ ]] && pin_dirs+=("$d")
  done
fi

# "<ifname> <mode> <prog id>" for every XDP program attached to a link of this network namespace.
attached_programs() {
  ip -j -d link show 2>/dev/null | node -e '
    let s = ""
    process.stdin.on("data", (d) => (s += d)).on("end", () => {
      for (const l of JSON.parse(s || "[]")) {
        const x = l.xdp
        if (!x) continue
        const seen = new Set()
        for (const a of [x, ...(x.attached ?? [])]) {
          const id = a.prog?.id
          if (id && !seen.has(id)) seen.add(id), console.log(`${l.ifname} ${id}`)
        }
      }
    })
  '
}
pinned_id() { bpftool -j prog show pinned "$1/prog" 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const id=JSON.parse(s).id;if(id)console.log(id)}catch{}})'; }

if [ ${#pin_dirs[@]} -eq 0 ]; then
  [ $PURGE = 0 ] || say "no pins of xdplinkd under $BPFFS"
  exit 0
fi

# Which pinned programs still run on a link here (needs bpftool for the pins' program ids).
declare -A attached_on=()
can_check=0
if command -v bpftool >/dev/null && command -v ip >/dev/null && command -v node >/dev/null; then
  can_check=1
  links=$(attached_programs)
  for d in "${pin_dirs[@]}"; do
    id=$(pinned_id "$d")
    [ -n "$id" ] || continue
    on=$(awk -v id="$id" '$2 == id { printf "%s%s", sep, $1; sep = ", " }' <<<"$links")
    [ -z "$on" ] || attached_on[$d]="$on (program id $id)"
  done
fi

if [ $PURGE = 0 ]; then
  for d in "${!attached_on[@]}"; do
    say "$(basename "$d") is attached to ${attached_on[$d]}; it keeps running until detached (ip link set dev <link> xdp off)"
  done
  say "left ${#pin_dirs[@]} pin directories under $BPFFS (programs and their maps; --purge-pins removes them)"
  if [ "${ON_EXIT:-keep}" != detach ]; then
    say "with on-exit: keep, programs xdplinkd attached stay attached after it stops; on-exit: detach (or attach: [] and a reload) before uninstalling detaches them"
  fi
  exit 0
fi

status=0
for d in "${pin_dirs[@]}"; do
  if [ -n "${attached_on[$d]:-}" ] && [ $FORCE = 0 ]; then
    say "kept $d: its program is attached to ${attached_on[$d]}; detach it (or use --force) and run this again"
    status=1
    continue
  fi
  if [ $can_check = 0 ] && [ $FORCE = 0 ]; then
    say "kept $d: without bpftool, ip and node it cannot be told whether its program is still attached; --force removes it anyway"
    status=1
    continue
  fi
  rm -r -- "$d"
  say "removed $d"
done
[ $can_check = 1 ] && say "checked attachments in this network namespace only; a pinned program attached in another one keeps running there"
exit $status
