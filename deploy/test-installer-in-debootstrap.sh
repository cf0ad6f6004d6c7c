#!/usr/bin/env bash
# End-to-end check of deploy/install.sh on a fresh Debian bookworm root made
# with debootstrap: install, install again (idempotent, config kept), verify the
# unit inside the root, run the unit's exact ExecStart line by hand as the
# service user, uninstall (config kept), uninstall --purge (all gone).
#
# Opt-in and slow (network: Debian mirror + PyPI; a few minutes). Needs root,
# debootstrap, chroot. Run directly, or through pytest with
#   EDGE_SLOW_DEPLOY_TEST=1 pytest tests/test_deploy.py -k debootstrap
#
# Environment:
#   EDGE_DEBIAN_MIRROR      default http://deb.debian.org/debian
#   EDGE_DEBOOTSTRAP_CACHE  a tar file: reused as the fresh root if it exists,
#                           written after debootstrap if it does not
#   EDGE_KEEP_ROOT=1        keep the root directory afterwards (path is printed)
#   EDGE_INSTALL_SOURCE     project directory or wheel to install (default: this checkout)
#   EDGE_HOST_PYTHON        host Python with onnx, to build the tiny test model when
#                           the source has no models/homesound-int8.onnx (default .venv/bin/python)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="${HERE%/*}"
MIRROR="${EDGE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CACHE="${EDGE_DEBOOTSTRAP_CACHE:-}"
SRC="${EDGE_INSTALL_SOURCE:-$REPO}"
UNIT=/etc/systemd/system/edge-listener.service

say() { printf '\n=== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

[[ "$(id -u)" -eq 0 ]] || fail "needs root (debootstrap, chroot)"
command -v debootstrap >/dev/null || fail "debootstrap not installed (apt-get install debootstrap)"

ROOT="$(mktemp -d /var/tmp/edge-debootstrap.XXXXXX)"
chmod 0755 "$ROOT"   # it becomes /; mktemp makes it 0700, which locks out every user but root
cleanup() {
    local m
    for m in dev sys proc; do
        if mountpoint -q "$ROOT/$m"; then umount -l "$ROOT/$m" || true; fi
    done
    if [[ "${EDGE_KEEP_ROOT:-0}" == 1 ]]; then
        echo "kept $ROOT"
    else
        rm -rf --one-file-system "$ROOT"
    fi
}
trap cleanup EXIT
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }
t0=$SECONDS

if [[ -n "$CACHE" && -f "$CACHE" ]]; then
    say "unpacking cached bookworm root $CACHE"
    tar -C "$ROOT" -xf "$CACHE"
    chmod 0755 "$ROOT"
else
    say "debootstrap bookworm (minbase) from $MIRROR"
    debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >"$ROOT.debootstrap.log" 2>&1 \
        || { tail -20 "$ROOT.debootstrap.log"; fail "debootstrap failed"; }
    rm -f "$ROOT.debootstrap.log"
    # A real Debian / Raspberry Pi OS install has systemd; minbase does not.
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
    in_root apt-get update -q >/dev/null
    in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends systemd >/dev/null
    in_root apt-get clean
    if [[ -n "$CACHE" ]]; then
        tar -C "$ROOT" -cf "$CACHE" .
        echo "cached the root in $CACHE"
    fi
fi
echo "root ready after $((SECONDS - t0)) s"

# Networks that intercept TLS (a company proxy) need their CA inside the root
# too: hand pip the host's CA bundle, copied into the root (requests prefers
# REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE over pip's --cert, so set them all).
host_bundle="${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
if [[ -f "$host_bundle" ]]; then
    cp "$host_bundle" "$ROOT/etc/edge-test-ca-bundle.crt"
    export PIP_CERT=/etc/edge-test-ca-bundle.crt REQUESTS_CA_BUNDLE=/etc/edge-test-ca-bundle.crt \
        CURL_CA_BUNDLE=/etc/edge-test-ca-bundle.crt SSL_CERT_FILE=/etc/edge-test-ca-bundle.crt
fi
# The host's pip settings name paths that do not exist in the root.
unset PIP_FIND_LINKS PIP_CONSTRAINT

say "install (first run)"
t1=$SECONDS
"$REPO/deploy/install.sh" --root "$ROOT" "$SRC"
echo "first install: $((SECONDS - t1)) s"

[[ -f "$ROOT$UNIT" ]] || fail "unit not installed at $UNIT"
[[ -L "$ROOT/etc/systemd/system/multi-user.target.wants/edge-listener.service" ]] || fail "unit not enabled"
[[ -x "$ROOT/opt/edge-listener/venv/bin/edge" ]] || fail "no edge command in the venv"
[[ -f "$ROOT/etc/edge-listener/config.yaml" ]] || fail "config not installed"
in_root id edge | grep -q '(audio)' || fail "user edge is not in group audio"
cmp -s "$REPO/deploy/edge-listener.service" "$ROOT$UNIT" || fail "installed unit differs from deploy/edge-listener.service"

say "install again (idempotent; the config must survive)"
echo "# local edit made by test-installer-in-debootstrap.sh" >>"$ROOT/etc/edge-listener/config.yaml"
cfg_sum="$(sha256sum <"$ROOT/etc/edge-listener/config.yaml")"
t2=$SECONDS
"$REPO/deploy/install.sh" --root "$ROOT" "$SRC"
echo "second install: $((SECONDS - t2)) s"
[[ "$(sha256sum <"$ROOT/etc/edge-listener/config.yaml")" == "$cfg_sum" ]] || fail "second run overwrote the config"
[[ "$(grep -c '^edge:' "$ROOT/etc/passwd")" -eq 1 ]] || fail "user edge duplicated"

say "systemd-analyze verify inside the root"
in_root systemd-analyze verify "$UNIT" 2>&1 | tee "$ROOT/tmp/verify.log"
[[ ! -s "$ROOT/tmp/verify.log" ]] || fail "systemd-analyze verify reported problems"

say "the unit's exact ExecStart line, by hand, as user edge"
exec_line="$(sed -n 's/^ExecStart=//p' "$ROOT$UNIT")"
echo "ExecStart: $exec_line"
mkdir -p "$ROOT/var/lib/edge-listener"
in_root chown edge:edge /var/lib/edge-listener
# As on a booted system (onnxruntime reads /proc/cpuinfo); cleanup unmounts it.
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
# --help appended to the exact line: the venv entry point, its imports and the
# argument parser for 'run --config ...' all load as the unprivileged user.
# shellcheck disable=SC2086  # word-split the ExecStart line like systemd does (no quotes in it)
in_root runuser -u edge -- $exec_line --help >"$ROOT/tmp/help.log" 2>&1 \
    || { cat "$ROOT/tmp/help.log"; fail "ExecStart line with --help failed"; }
head -5 "$ROOT/tmp/help.log"
# A short real run on a WAV file instead of the microphone: the config in /etc
# is pointed at a generated file (a file source ends at end of file).
model_yaml=""
installed_model="$ROOT/opt/edge-listener/venv/share/edge-listener/models/homesound-int8.onnx"
if [[ -f "$SRC/models/homesound-int8.onnx" || -f "$SRC" ]]; then
    [[ -f "$installed_model" ]] || fail "the installed package lacks its bundled model ($installed_model)"
else
    # No bundled model in this checkout yet: use the test suite's tiny model, built on the host.
    host_python="${EDGE_HOST_PYTHON:-$REPO/.venv/bin/python}"
    echo "NOTE: no models/homesound-int8.onnx in the checkout; running with tests/tinymodel.py's model"
    PYTHONPATH="$REPO/tests:$REPO" "$host_python" -c \
        'import sys; from tinymodel import build_tiny_model; build_tiny_model(sys.argv[1])' \
        "$ROOT/var/lib/edge-listener/tiny.onnx" || fail "could not build the tiny model with $host_python"
    model_yaml=$'model:\n  path: /var/lib/edge-listener/tiny.onnx\n'
fi
in_root /opt/edge-listener/venv/bin/python - <<'PY'
import math, struct, wave
with wave.open("/var/lib/edge-listener/probe.wav", "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
    w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 1000 * i / 16000)))
                           for i in range(16000 * 3)))
PY
in_root chown -R edge:edge /var/lib/edge-listener
cp "$ROOT/etc/edge-listener/config.yaml" "$ROOT/tmp/config.yaml.orig"
printf 'audio:\n  source: /var/lib/edge-listener/probe.wav\n%smqtt:\n  enabled: false\noutput:\n  stdout: true\n' \
    "$model_yaml" >"$ROOT/etc/edge-listener/config.yaml"
set +e
# shellcheck disable=SC2086
in_root timeout 60 runuser -u edge -- env STATE_DIRECTORY=/var/lib/edge-listener $exec_line \
    >"$ROOT/tmp/run.log" 2>&1
run_rc=$?
set -e
cp "$ROOT/tmp/config.yaml.orig" "$ROOT/etc/edge-listener/config.yaml"
tail -5 "$ROOT/tmp/run.log"
[[ $run_rc -eq 0 ]] || fail "ExecStart line on a WAV file exited with status $run_rc"
if [[ -n "$model_yaml" ]]; then
    grep -q mid_tone "$ROOT/tmp/run.log" || fail "the 1 kHz tone was not reported as mid_tone"
fi

umount -l "$ROOT/proc"

say "uninstall (keeps config and state)"
"$REPO/deploy/install.sh" --root "$ROOT" --uninstall
[[ ! -e "$ROOT$UNIT" && ! -e "$ROOT/opt/edge-listener" ]] || fail "uninstall left the unit or venv"
[[ -f "$ROOT/etc/edge-listener/config.yaml" ]] || fail "uninstall removed the config"

say "uninstall --purge"
"$REPO/deploy/install.sh" --root "$ROOT" --uninstall --purge
[[ ! -e "$ROOT/etc/edge-listener" && ! -e "$ROOT/var/lib/edge-listener" ]] || fail "purge left config or state"
! grep -q '^edge:' "$ROOT/etc/passwd" || fail "purge left the user"

say "PASS in $((SECONDS - t0)) s"
