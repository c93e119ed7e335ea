#!/usr/bin/env bash
# Installs xdplinkd from this checkout and starts it under systemd:
#
#   sudo scripts/install.sh
#
#   PREFIX/lib/xdplinkd/          the program: package.json, package-lock.json, dist/, bpf/ (sources and .o),
#                                 systemd/ (unit and drop-ins), examples/, schema/, node_modules/ (production only)
#   PREFIX/bin/xdplinkd           symlink to ../lib/xdplinkd/dist/cli.js
#   /etc/xdplinkd/config.yaml     written only when there is none: it attaches nothing until the operator says so
#   /etc/systemd/system/xdplinkd.service
#
# then `systemctl daemon-reload && systemctl enable --now xdplinkd`. Running it again is an upgrade: the program
# files are replaced as a whole, the configuration is kept, a running service is restarted. scripts/uninstall.sh
# undoes it (and leaves the configuration). systemd/README.md in the repository describes the layout.
set -euo pipefail
shopt -s nullglob
umask 022

usage() {
  cat <<'EOF'
usage: sudo scripts/install.sh [--prefix DIR] [--destdir DIR] [--no-systemctl] [--no-build] [--offline]

  --prefix DIR     where the program goes: DIR/lib/xdplinkd and DIR/bin/xdplinkd (default /usr/local); the unit's
                   ExecStart= follows it
  --destdir DIR    stage everything below DIR (DIR/usr/local/..., DIR/etc/...) instead of /, as a package build or a
                   test does; paths written into files stay the final ones; implies --no-systemctl
  --no-systemctl   do not run systemctl (daemon-reload, enable --now); print the commands instead
  --no-build       install the dist/ and bpf/*.o already in the checkout; never run npm ci or npm run build there
  --offline        production dependencies from npm's cache only (never the registry), else from the checkout's
                   node_modules/, pruned
EOF
}

die() { echo "install: $*" >&2; exit 1; }
say() { echo "install: $*"; }

PREFIX=/usr/local
DESTDIR=
SYSTEMCTL=1
BUILD=1
OFFLINE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX=$2; shift 2 ;;
    --prefix=*) PREFIX=${1#*=}; shift ;;
    --destdir) [ $# -ge 2 ] || die "--destdir needs a directory"; DESTDIR=$2; shift 2 ;;
    --destdir=*) DESTDIR=${1#*=}; shift ;;
    --no-systemctl) SYSTEMCTL=0; shift ;;
    --no-build) BUILD=0; shift ;;
    --offline) OFFLINE=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

# The prefix ends up in the unit's ExecStart= and in the config file: keep it to characters that need no quoting
# there (and none that sed would read as syntax).
[[ $PREFIX =~ ^/[A-Za-z0-9._+/-]*$ ]] || die "--prefix must be an absolute path of letters, digits and ._+-/, got '$PREFIX'"
while [[ $PREFIX == */ ]]; do PREFIX=${PREFIX%/}; done # "/" becomes "": /bin, /lib
if [ -n "$DESTDIR" ]; then
  DESTDIR=$(realpath -m -- "$DESTDIR")
  [ "$DESTDIR" = / ] && DESTDIR=
fi
[ -n "$DESTDIR" ] && SYSTEMCTL=0

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ -f "$SRC/package.json" ] && grep -q '"name": "xdplinkd"' "$SRC/package.json" || die "$SRC is not an xdplinkd checkout"

ROOT=0
[ "$(id -u)" -eq 0 ] && ROOT=1
[ $ROOT = 1 ] || [ -n "$DESTDIR" ] || die "run as root (sudo scripts/install.sh), or stage the files with --destdir DIR"

command -v node >/dev/null || die "node is not installed (Node.js 20 or later; scripts/install-deps.sh installs it on Debian)"
command -v npm >/dev/null || die "npm is not installed"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || die "xdplinkd needs Node.js 20 or later; this machine has $(node --version)"

LIB=$PREFIX/lib/xdplinkd
BIN=$PREFIX/bin/xdplinkd
ETC=/etc/xdplinkd
CONF=$ETC/config.yaml
UNIT=/etc/systemd/system/xdplinkd.service
VERSION=$(node -p 'require(process.argv[1]).version' "$SRC/package.json")

# ---- build --------------------------------------------------------------------------------------------------------

# Is anything the build makes missing, or older than what it is made from?
stale() {
  [ -f "$SRC/dist/cli.js" ] || { echo "dist/cli.js is missing"; return 0; }
  local c o newer
  for c in "$SRC"/bpf/*.c; do
    o=${c%.c}.o
    [ -f "$o" ] || { echo "bpf/$(basename "$o") is missing"; return 0; }
    newer=$(find "$c" "$SRC"/bpf/*.h "$SRC/bpf/Makefile" -newer "$o" -print -quit)
    [ -z "$newer" ] || { echo "${newer#"$SRC"/} is newer than bpf/$(basename "$o")"; return 0; }
  done
  newer=$(find "$SRC/src" "$SRC/tsconfig.json" "$SRC/package-lock.json" -newer "$SRC/dist/cli.js" -print -quit)
  [ -z "$newer" ] || { echo "${newer#"$SRC"/} is newer than dist/"; return 0; }
  return 1
}

# Builds as the checkout's owner when root runs this in someone's checkout: files written by the build stay theirs.
as_owner() {
  local uid name home
  uid=$(stat -c %u "$SRC")
  if [ $ROOT = 1 ] && [ "$uid" != 0 ] && name=$(getent passwd "$uid" | cut -d: -f1) && [ -n "$name" ]; then
    home=$(getent passwd "$uid" | cut -d: -f6)
    (cd "$SRC" && runuser -u "$name" -- env HOME="$home" "$@")
  else
    (cd "$SRC" && "$@")
  fi
}

if why=$(stale); then
  [ $BUILD = 1 ] || {
    objs=("$SRC"/bpf/*.o)
    [ -f "$SRC/dist/cli.js" ] && [ ${#objs[@]} -gt 0 ] || die "nothing built in $SRC (dist/cli.js, bpf/*.o): run npm ci && npm run build there, or leave out --no-build"
    say "warning: $why; installing it as it is (--no-build)"
  }
  if [ $BUILD = 1 ]; then
    say "building ($why)"
    if [ ! -f "$SRC/node_modules/.package-lock.json" ] || [ "$SRC/package-lock.json" -nt "$SRC/node_modules/.package-lock.json" ]; then
      as_owner npm ci --no-audit --no-fund
    fi
    as_owner npm run build
  fi
else
  say "dist/ and bpf/*.o are up to date"
fi
for f in dist/cli.js bpf/xdp_pass.o; do [ -f "$SRC/$f" ] || die "$SRC/$f is missing after the build"; done

# ---- the program: staged next to its final place, checked, then swapped in ---------------------------------------

D_LIB=$DESTDIR$LIB
D_BIN=$DESTDIR$BIN
install -d -m 0755 "$DESTDIR$PREFIX/lib" "$DESTDIR$PREFIX/bin"
is_ours() { [ -f "$1/package.json" ] && grep -q '"name": "xdplinkd"' "$1/package.json"; }
if [ -e "$D_LIB" ] && ! is_ours "$D_LIB"; then
  die "$D_LIB exists and is not an xdplinkd installation; not replacing it"
fi

STAGE=$(mktemp -d "$DESTDIR$PREFIX/lib/.xdplinkd-new.XXXXXX")
OLD=
npm_log=
cleanup() {
  [ -z "$STAGE" ] || rm -rf -- "$STAGE"
  [ -z "$OLD" ] || rm -rf -- "$OLD"
  [ -z "$npm_log" ] || rm -f -- "$npm_log"
}
trap cleanup EXIT

cp -R "$SRC/package.json" "$SRC/package-lock.json" "$SRC/dist" "$SRC/systemd" "$SRC/examples" "$SRC/schema" "$STAGE/"
mkdir "$STAGE/bpf"
cp "$SRC"/bpf/*.c "$SRC"/bpf/*.h "$SRC/bpf/Makefile" "$SRC"/bpf/*.o "$STAGE/bpf/"

# Production dependencies. `npm ci --omit=dev` installs exactly the locked versions; npm's cache is tried before the
# registry. Where neither can supply them (an offline host with a cold cache), the checkout's node_modules/ (made by
# `npm ci` from the same lock file) is copied and pruned to the production dependencies, which needs no network.
npm_in_stage() {
  # An npm lifecycle (`npm test` running this) exports npm_config_local_prefix and friends; the stage is the project.
  (cd "$STAGE" && env -u npm_config_local_prefix -u npm_config_global -u npm_config_workspace -u npm_config_workspaces \
    npm "$@" --prefix "$STAGE" --no-audit --no-fund --loglevel=error)
}
npm_log=$(mktemp)
cache_mode=--prefer-offline
[ $OFFLINE = 1 ] && cache_mode=--offline
if npm_in_stage ci --omit=dev "$cache_mode" >"$npm_log" 2>&1; then
  say "production dependencies installed with npm ci --omit=dev"
else
  say "npm ci --omit=dev $cache_mode failed ($(grep -m1 -i 'error' "$npm_log" || tail -n1 "$npm_log")); using the checkout's node_modules instead"
  [ -f "$SRC/node_modules/.package-lock.json" ] || { die "the checkout has no node_modules either: run npm ci in $SRC (with network access), then again"; }
  rm -rf "$STAGE/node_modules"
  cp -R "$SRC/node_modules" "$STAGE/"
  npm_in_stage prune --omit=dev --offline >"$npm_log" 2>&1 || { cat "$npm_log" >&2; die "npm prune --omit=dev failed"; }
  find "$STAGE/node_modules" -mindepth 1 -maxdepth 1 -type d -empty -delete # scope directories prune emptied
  say "production dependencies copied from $SRC/node_modules and pruned with npm prune --omit=dev"
fi
rm -f "$npm_log"
npm_log=

chmod 0755 "$STAGE" "$STAGE/dist/cli.js"
# Root's, and writable by root alone: the daemon refuses object files that others could change (and so does
# `check`), down to every directory above them.
[ $ROOT = 1 ] && chown -R 0:0 "$STAGE"
chmod -R u+rwX,go+rX,go-w "$STAGE"

# Does what was staged run? Every production dependency must load (koffi's native part included).
got=$("$STAGE/dist/cli.js" --version) || die "the staged $STAGE/dist/cli.js does not run"
[ "$got" = "$VERSION" ] || die "the staged xdplinkd says version '$got', package.json $VERSION"
(cd "$STAGE" && node --input-type=module -e '
  import { readFileSync } from "node:fs"
  for (const d of Object.keys(JSON.parse(readFileSync("package.json", "utf8")).dependencies ?? {})) await import(d)
') || die "a production dependency does not load from $STAGE/node_modules"

if [ -e "$D_LIB" ]; then
  OLD="$DESTDIR$PREFIX/lib/.xdplinkd-old.$$"
  mv -T -- "$D_LIB" "$OLD"
  say "replacing the installed program files in $LIB"
fi
mv -T -- "$STAGE" "$D_LIB"
STAGE=
rm -rf -- "$OLD"
OLD=

# A relative link works at the final place and inside a --destdir alike.
if [ -e "$D_BIN" ] && [ ! -L "$D_BIN" ]; then
  die "$BIN exists and is not a symlink; remove it first (the program files are in place in $LIB)"
fi
if [ -L "$D_BIN" ] && [ "$(readlink "$D_BIN")" != ../lib/xdplinkd/dist/cli.js ]; then
  say "$BIN pointed at $(readlink "$D_BIN"); replacing it"
fi
ln -sfn ../lib/xdplinkd/dist/cli.js "$D_BIN"
say "installed xdplinkd $VERSION in $LIB, command $BIN"

# ---- configuration --------------------------------------------------------------------------------------------------

D_ETC=$DESTDIR$ETC
D_CONF=$DESTDIR$CONF
if [ -d "$D_ETC" ]; then
  mode=$(stat -c %a "$D_ETC")
  owner=$(stat -c %u "$D_ETC")
  if [ "$owner" != 0 ] || [ $((0$mode & 022)) -ne 0 ]; then
    say "warning: $ETC is owned by uid $owner with mode $mode; xdplinkd refuses a config that others than root can change"
  fi
else
  install -d -m 0755 "$D_ETC"
fi

if [ -e "$D_CONF" ] || [ -L "$D_CONF" ]; then
  say "$CONF exists: kept as it is (never overwritten; the example is $LIB/examples/config.yaml)"
else
  tmp=$(mktemp "$D_ETC/.config.yaml.XXXXXX")
  sed "s|@LIB@|$LIB|g" >"$tmp" <<'YAML'
# yaml-language-server: $schema=@LIB@/schema/config.schema.json
#
# xdplinkd configuration, written by scripts/install.sh, which never overwrites it: edit freely. Every key is
# described in docs/reference.md in the repository and in @LIB@/schema/config.schema.json;
# @LIB@/examples/config.yaml is a fuller example.
#
# As installed, `attach: []` attaches nothing: xdplinkd touches no interface until an entry names it. To start:
#   1. add an entry under attach: (the commented ones below are a start);
#   2. xdplinkd check              validates this file and loads each program (attaches nothing) and lists the
#                                  links each entry would get;
#   3. systemctl reload xdplinkd   or `xdplinkd reload`, which says whether the new config was taken.
#
# This file, the object files it names and every directory above them must belong to root and be writable by
# nobody else: xdplinkd refuses them otherwise, as sshd does.

# How long a link must be quiet before xdplinkd looks at it, and how long a busy link may be put off at most.
# settle: 50ms
# max-settle: 1s

# Where programs and their maps are pinned. The unit creates and unlocks only this directory: another one needs a
# drop-in (@LIB@/systemd/README.md).
# bpffs: /sys/fs/bpf/xdplinkd

# When xdplinkd stops: keep its programs attached (protection stays up across restarts and upgrades), or detach
# the ones it attached.
on-exit: keep

# control-socket: /run/xdplinkd/control.sock

# Prometheus metrics on localhost. The unit allows no IP sockets: first install the drop-in
#   install -D -m 0644 @LIB@/systemd/dropins/metrics.conf /etc/systemd/system/xdplinkd.service.d/metrics.conf
#   systemctl daemon-reload && systemctl restart xdplinkd
# metrics: 127.0.0.1:9477

# For each link, the first entry that matches it decides. To use the examples, replace "attach: []" with
# "attach:" and uncomment an entry.
attach: []
#  # veth links named veth*: a program that passes every packet (a harmless first test).
#  - name: test-veths
#    interfaces: ["veth*"]
#    kinds: [veth]
#    object: @LIB@/bpf/xdp_pass.o
#    mode: generic
#
#  # A NIC (a link without a kind): drops packets from the source prefixes in its pinned maps; the comment at the
#  # top of @LIB@/bpf/xdp_blocklist.c says how to fill them with bpftool.
#  - name: uplink-blocklist
#    interfaces: ["eth0"]
#    kinds: [device]
#    object: @LIB@/bpf/xdp_blocklist.o
#    mode: auto
YAML
  chmod 0644 "$tmp"
  [ $ROOT = 1 ] && chown 0:0 "$tmp"
  # A hard link does not replace an existing file: whatever appeared meanwhile is kept too.
  if ln -- "$tmp" "$D_CONF" 2>/dev/null; then
    say "wrote $CONF (attach: [] - nothing is attached until you add an entry)"
  else
    say "$CONF exists: kept as it is"
  fi
  rm -f -- "$tmp"
fi

# ---- unit ---------------------------------------------------------------------------------------------------------

D_UNIT=$DESTDIR$UNIT
install -d -m 0755 "$(dirname "$D_UNIT")"
tmp=$(mktemp "$(dirname "$D_UNIT")/.xdplinkd.service.XXXXXX")
sed -e "s|/usr/local/bin/xdplinkd|$BIN|g" -e "s|/usr/local/lib/xdplinkd|$LIB|g" "$SRC/systemd/xdplinkd.service" >"$tmp"
grep -q "^ExecStart=$BIN run --config $CONF\$" "$tmp" || { rm -f "$tmp"; die "systemd/xdplinkd.service has no ExecStart=$BIN run --config $CONF line"; }
chmod 0644 "$tmp"
[ $ROOT = 1 ] && chown 0:0 "$tmp"
if [ -f "$D_UNIT" ] && cmp -s "$tmp" "$D_UNIT"; then
  rm -f "$tmp"
  say "$UNIT is up to date"
else
  mv -f -- "$tmp" "$D_UNIT"
  say "installed $UNIT (local changes belong in drop-ins: $UNIT.d/*.conf)"
fi
say "drop-ins to copy into $UNIT.d/ when needed: $LIB/systemd/dropins/ (metrics.conf, netns.conf, sys-admin.conf)"

case "$(command -v node)" in
  /usr/local/sbin/* | /usr/local/bin/* | /usr/sbin/* | /usr/bin/*) ;;
  *) say "warning: node is $(command -v node), outside systemd's PATH (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin); the unit needs a drop-in with ExecStart=$(command -v node) $LIB/dist/cli.js run --config $CONF (systemd/README.md)" ;;
esac

# ---- systemd ------------------------------------------------------------------------------------------------------

next="systemctl daemon-reload && systemctl enable --now xdplinkd"
if [ $SYSTEMCTL = 0 ]; then
  if [ -n "$DESTDIR" ]; then say "staged below $DESTDIR; once in place: $next"; else say "not running systemctl (--no-systemctl); to start: $next"; fi
  exit 0
fi
if [ ! -d /run/systemd/system ] || ! command -v systemctl >/dev/null; then
  say "systemd is not running as PID 1 here; under systemd, run: $next"
  exit 0
fi
was_active=0
systemctl is-active --quiet xdplinkd.service && was_active=1
systemctl daemon-reload
if ! systemctl enable --now xdplinkd.service; then
  die "xdplinkd did not start: see systemctl status xdplinkd and journalctl -u xdplinkd -n 50"
fi
if [ $was_active = 1 ]; then
  # The running daemon still runs the previous version. Programs stay attached across the restart unless the
  # config says on-exit: detach.
  say "restarting xdplinkd to run $VERSION"
  systemctl restart xdplinkd.service || die "xdplinkd did not restart: see systemctl status xdplinkd and journalctl -u xdplinkd -n 50"
fi
say "xdplinkd is $(systemctl is-active xdplinkd.service) and enabled; systemctl status xdplinkd, xdplinkd status"
