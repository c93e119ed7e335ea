#!/usr/bin/env bash
# Installs what xdplinkd needs to build, run and test on Debian (12 bookworm with Node >= 20, or 13 trixie),
# skipping what is already there. Run as root.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have node || need+=(nodejs)
have npm || need+=(npm)
have clang || need+=(clang)
have llc || need+=(llvm)
have make || need+=(make)
[ -e /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
ldconfig -p | grep -q 'libbpf.so.1 ' || need+=(libbpf1)
[ -e /usr/include/asm/types.h ] || [ -e "/usr/include/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/asm/types.h" ] || need+=(linux-libc-dev)
have bpftool || need+=(bpftool)
have ip || need+=(iproute2)
# for the tests: strace decodes netlink, ping sends real packets, pgrep finds traced processes, systemd-analyze
# checks the unit
have strace || need+=(strace)
have ping || need+=(iputils-ping)
have pgrep || need+=(procps)
have systemd-analyze || need+=(systemd)
# for the container image (scripts/build-image.sh) and its test: podman with runc, and mmdebstrap for the bases;
# with their recommended packages (podman's network and storage helpers, mmdebstrap's gpg), as they were tried
with_recommends=()
have podman || with_recommends+=(podman)
have runc || with_recommends+=(runc)
have mmdebstrap || with_recommends+=(mmdebstrap)
if [ ${#need[@]} -gt 0 ] || [ ${#with_recommends[@]} -gt 0 ]; then
  echo "installing: ${need[*]} ${with_recommends[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  [ ${#need[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  [ ${#with_recommends[@]} -eq 0 ] || apt-get install -y -qq "${with_recommends[@]}" >/dev/null
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "xdplinkd needs Node.js >= 20; this machine has $(node --version)" >&2
  exit 1
fi
