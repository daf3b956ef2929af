#!/usr/bin/env bash
# Install everything the project needs on Debian 12, as root: Debian packages and a venv in .venv.
# Safe to run again; it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  python3 python3-venv gcc libc6-dev
  runc crun runsc conmon containerd containernetworking-plugins
  docker-registry busybox-static skopeo umoci
  iproute2 iptables util-linux procps
  apparmor   # apparmor_parser, for the AppArmor specs on hosts with AppArmor enabled
  tmux zsh fish   # crictl's terminal and completion tests
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (it installs Debian packages and runs containers)" >&2
  exit 1
fi

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install.sh: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Debian's own python3, not a shim: start-up time matters for a CLI.
[ -x .venv/bin/python ] || /usr/bin/python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
