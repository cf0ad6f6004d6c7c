#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine for the listener.
#   bash scripts/setup.sh          runtime only: system audio library + .venv with the package
#   bash scripts/setup.sh --dev    also what the tests and the training recipe need
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1

runtime_apt=(python3-venv libportaudio2)
# The tests start their own services: a real mosquitto broker, a PulseAudio
# null sink for the microphone tests, openssl for a throwaway CA, and the
# deployment checks (shellcheck, systemd-analyze).
dev_apt=(mosquitto mosquitto-clients pulseaudio pulseaudio-utils libasound2-plugins alsa-utils
         openssl shellcheck systemd)

apt_list=("${runtime_apt[@]}")
[ "$dev" = 1 ] && apt_list+=("${dev_apt[@]}")

missing=()
for pkg in "${apt_list[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing system packages: ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "$dev" = 1 ]; then
  # PyTorch CPU for the training recipe (a CPU build of this version is what the recipe is tested with).
  # On x86_64, PyPI's torch is a CUDA build of several GB: ask for the CPU build by its local version,
  # from a wheel directory pip already knows (as in CI) or else from PyTorch's CPU index. On arm64
  # (a Pi), PyPI's build is the CPU one.
  if ! .venv/bin/python -c 'import torch' 2>/dev/null; then
    if [ "$(uname -m)" = x86_64 ]; then
      .venv/bin/python -m pip install -q "torch==2.13.0+cpu" 2>/dev/null \
        || .venv/bin/python -m pip install -q "torch==2.13.0+cpu" \
             --extra-index-url https://download.pytorch.org/whl/cpu
    else
      .venv/bin/python -m pip install -q "torch==2.13.0"
    fi
  fi
  .venv/bin/python -m pip install -q -e ".[audio,train,eval,test]"
else
  .venv/bin/python -m pip install -q -e ".[audio]"
fi
echo "setup: ready (.venv/bin/edge)"
