#!/usr/bin/env bash
# Installs the system packages otk's build, tests and demo need, through apt, only when missing.
# Swift itself is expected on PATH (see README).
set -euo pipefail

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
# libseccomp-dev and pkg-config: the seccomp compiler's headers; gcc/libc6-dev: C targets.
for pkg in libseccomp-dev pkg-config gcc libc6-dev; do
  have_pkg "$pkg" || need+=("$pkg")
done
# Toolchains the tests run inside the strict sandbox: make, python3 with venv, node,
# g++ and cmake, Go, a JDK and Maven, npm and cargo (otk execute's end-to-end tests; a cargo
# from rustup counts, and otk follows its proxy to the real toolchain).
for pkg in make python3-venv g++ cmake golang-go maven; do
  have_pkg "$pkg" || need+=("$pkg")
done
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v cargo >/dev/null 2>&1 || need+=(cargo)
command -v javac >/dev/null 2>&1 || need+=(default-jdk-headless)
# python3: test fixtures and the benchmark; setpriv/unshare (util-linux): tests that switch users or remove layers.
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v setpriv >/dev/null 2>&1 && command -v unshare >/dev/null 2>&1 || need+=(util-linux)

if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "otk: missing packages: ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v swift >/dev/null 2>&1 || { echo "otk: swift is not on PATH (Swift 6.0 or newer is needed)" >&2; exit 1; }
