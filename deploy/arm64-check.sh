#!/usr/bin/env bash
# Arm64 check: does the listener install from its wheels and give the same
# events on arm64 (Raspberry Pi OS / Debian bookworm, aarch64) as on this x86 host?
#
# 1. builds an arm64 Debian bookworm root (debootstrap --foreign + qemu-user-static),
# 2. installs python3-venv and libportaudio2 inside,
# 3. builds the project wheel on the host (pip wheel --no-deps) and installs it
#    inside with pip (aarch64 wheels of numpy/onnxruntime/soxr come from PyPI),
# 4. runs `edge detect` on the demo recording inside the root and on the host,
#    and compares the events: same labels in the same order, onsets and offsets
#    within EDGE_ARM64_TOL_S seconds.
#
# Emulated timings are NOT performance figures (qemu is 10-50x slower than a Pi);
# the point is that the arm64 wheels and code paths work and agree with x86.
#
# Needs root, debootstrap, qemu-user-static, binfmt-support, network (Debian
# mirror + PyPI). Takes 15-30 minutes. Exit status 0 = ran to the end and the
# events matched; 1 = a step failed or the events differ.
#
# Inputs: models/homesound-int8.onnx (or EDGE_ARM64_MODEL) and edge/data/demo.wav
# when they exist (synthetic T3/T4 alarms over room noise when the demo is absent).
# Without a shipped model: the tiny contract-honouring test model (tests/tinymodel.py)
# on a generated WAV of the tones it knows. No third-party audio.
# Besides the events, the per-hop scores of both runs are compared (max |difference|).
#
# Environment:
#   EDGE_DEBIAN_MIRROR   default http://deb.debian.org/debian
#   EDGE_ARM64_CACHE     a tar file: reused as the arm64 root if it exists, written after debootstrap if not
#   EDGE_ARM64_TOL_S     onset/offset tolerance in seconds (default 0.05)
#   EDGE_ARM64_MODEL     model file to check instead of models/homesound-int8.onnx
#   EDGE_KEEP_ROOT=1     keep the root directory afterwards (path is printed)
#   PYTHON               host Python with the project's dependencies (default .venv/bin/python)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="${HERE%/*}"
MIRROR="${EDGE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CACHE="${EDGE_ARM64_CACHE:-}"
TOL="${EDGE_ARM64_TOL_S:-0.05}"
PY="${PYTHON:-$REPO/.venv/bin/python}"

say() { printf '\n=== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

[[ "$(id -u)" -eq 0 ]] || fail "needs root (binfmt_misc, debootstrap, chroot)"
command -v debootstrap >/dev/null || fail "debootstrap not installed (apt-get install debootstrap)"
QEMU="$(command -v qemu-aarch64-static || true)"
[[ -n "$QEMU" ]] || fail "qemu-aarch64-static not installed (apt-get install qemu-user-static binfmt-support)"
command -v update-binfmts >/dev/null || fail "update-binfmts not installed (apt-get install binfmt-support)"
[[ -x "$PY" ]] || fail "host python $PY not found (set PYTHON=...)"

say "binfmt_misc: register qemu-aarch64"
if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || fail "cannot mount binfmt_misc"
fi
update-binfmts --enable qemu-aarch64 || fail "update-binfmts --enable qemu-aarch64 failed"
[[ -f /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] || fail "qemu-aarch64 is not registered in binfmt_misc"
# Without the F (fix-binary) flag the kernel looks the interpreter up inside the chroot.
INTERP="$(sed -n 's/^interpreter //p' /proc/sys/fs/binfmt_misc/qemu-aarch64)"
grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64 || fail "qemu-aarch64 binfmt entry is disabled"

ROOT="$(mktemp -d /var/tmp/edge-arm64.XXXXXX)"
WORK="$(mktemp -d /var/tmp/edge-arm64-work.XXXXXX)"
cleanup() {
    local m
    for m in dev/pts dev sys proc; do
        if mountpoint -q "$ROOT/$m"; then umount -l "$ROOT/$m" || true; fi
    done
    if [[ "${EDGE_KEEP_ROOT:-0}" == 1 ]]; then
        echo "kept $ROOT and $WORK"
    else
        rm -rf --one-file-system "$ROOT" "$WORK"
    fi
}
trap cleanup EXIT
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 ${PIP_CERT_IN_ROOT:+PIP_CERT=$PIP_CERT_IN_ROOT} "$@"; }
put_qemu() {
    install -D -m 0755 "$QEMU" "$ROOT/usr/bin/qemu-aarch64-static"
    [[ -z "$INTERP" ]] || install -D -m 0755 "$QEMU" "$ROOT$INTERP"
}
t0=$SECONDS

if [[ -n "$CACHE" && -f "$CACHE" ]]; then
    say "unpacking cached arm64 root $CACHE"
    tar -C "$ROOT" -xf "$CACHE"
    put_qemu
else
    say "debootstrap --foreign --arch arm64 bookworm (minbase) from $MIRROR"
    debootstrap --foreign --arch=arm64 --variant=minbase \
        --include=python3-venv,libportaudio2,ca-certificates bookworm "$ROOT" "$MIRROR" \
        >"$WORK/debootstrap1.log" 2>&1 || { tail -20 "$WORK/debootstrap1.log"; fail "debootstrap (first stage) failed"; }
    put_qemu
    say "debootstrap --second-stage under qemu-aarch64 (slow)"
    chroot "$ROOT" /debootstrap/debootstrap --second-stage >"$WORK/debootstrap2.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap2.log"; fail "debootstrap (second stage) failed"; }
    in_root apt-get clean
    if [[ -n "$CACHE" ]]; then
        tar -C "$ROOT" -cf "$CACHE" .
        echo "cached the root in $CACHE"
    fi
fi
[[ "$(in_root uname -m)" == aarch64 ]] || fail "the root does not run as aarch64 (uname -m: $(in_root uname -m))"
in_root python3 -c 'import platform, sys; print("arm64 root:", platform.machine(), sys.version.split()[0])'
echo "root ready after $((SECONDS - t0)) s"

# Networks that intercept TLS need their CA inside the root too.
host_bundle="${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
if [[ -f "$host_bundle" ]]; then
    cp "$host_bundle" "$ROOT/etc/edge-arm64-ca-bundle.crt"
    PIP_CERT_IN_ROOT=/etc/edge-arm64-ca-bundle.crt
fi
resolv="$(readlink -f /etc/resolv.conf)"
[[ -f "$resolv" ]] && cp "$resolv" "$ROOT/etc/resolv.conf"
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
# /sys stays unmounted: onnxruntime's cpuinfo then warns (harmless); with the host's /sys it
# segfaults under qemu-aarch64 (x86 CPU topology seen by an emulated arm64 process).
mountpoint -q "$ROOT/dev" || mount --bind /dev "$ROOT/dev"

say "host: pick the model and the recording"
mkdir -p "$WORK/wheels" "$WORK/in" "$WORK/src"
(cd "$REPO" && "$PY" - "$WORK/in" "${EDGE_ARM64_MODEL:-models/homesound-int8.onnx}" <<'PY') \
    || fail "could not prepare the model/recording"
import shutil, sys
from pathlib import Path

import numpy as np

out = Path(sys.argv[1])
model = Path(sys.argv[2])
if model.is_file():
    shutil.copy(model, out / "model.onnx")
    print(f"model: {model}")
    real = True
else:
    sys.path.insert(0, "tests")
    from tinymodel import build_tiny_model

    build_tiny_model(out / "model.onnx")
    print(f"model: {model} not there -> tiny test model (tests/tinymodel.py)")
    real = False
demo = Path("edge/data/demo.wav")
if demo.is_file() and real:
    shutil.copy(demo, out / "demo.wav")
    print(f"recording: {demo}")
else:
    from edge.capture.audiofile import write_wav
    from edge.synth.alarms import colored_noise, synth_alarm

    sr, rng = 16000, np.random.default_rng(6)
    x = 0.01 * colored_noise(40 * sr, rng, 1.0)
    if real:  # room noise with a T3 smoke alarm and a T4 CO alarm
        x[5 * sr:17 * sr] += synth_alarm("T3", 12.0, sr, rng)
        x[22 * sr:34 * sr] += synth_alarm("T4", 12.0, sr, rng)
    else:     # tones the tiny model knows: 500, 1000, 2000 Hz
        t = np.arange(4 * sr) / sr
        for k, f in enumerate((500.0, 1000.0, 2000.0)):
            s = (5 + 10 * k) * sr
            x[s:s + t.size] += 0.3 * np.sin(2 * np.pi * f * t)
    write_wav(out / "demo.wav", np.clip(x, -1, 1), sr)
    print("recording: generated 40 s WAV (" + ("T3/T4 alarms" if real else "tones the tiny model knows") + ")")
PY

say "host: build the project wheel (pip wheel --no-deps) from a snapshot of the tree"
# A snapshot (tracked + untracked, not ignored files) keeps build/ and *.egg-info out of the
# working tree. Files the wheel's data-files list but the tree lacks yet (the shipped models
# before training has produced them) get the checked model as a stand-in, said out loud.
(cd "$REPO" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -C "$WORK/src" -xf - \
    || fail "could not snapshot the tree"
"$PY" - "$WORK/src" "$WORK/in/model.onnx" <<'PY' || fail "could not read pyproject.toml"
import shutil, sys, tomllib
from pathlib import Path

src, model = Path(sys.argv[1]), Path(sys.argv[2])
cfg = tomllib.loads((src / "pyproject.toml").read_text())
files = cfg.get("tool", {}).get("setuptools", {}).get("data-files", {})
for group in files.values():
    for f in group:
        p = src / f
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            if p.suffix == ".onnx":
                shutil.copy(model, p)
            else:
                p.write_text("")
            print(f"note: {f} is not in the tree yet: the wheel carries a stand-in (the checked model / empty file)")
PY
(cd "$WORK/src" && "$PY" -m pip wheel --no-deps -q -w "$WORK/wheels" .) >"$WORK/wheel.log" 2>&1 \
    || { tail -20 "$WORK/wheel.log"; fail "pip wheel failed on the host"; }
WHEEL="$(find "$WORK/wheels" -name 'edge_listener-*.whl' -print -quit)"
[[ -n "$WHEEL" ]] || fail "no edge_listener wheel was built"
echo "wheel: ${WHEEL##*/}"

# Per-hop scores through the same streaming path (edge.service.listener.detect_file), one row per hop.
cat >"$WORK/in/scores.py" <<'PY'
import sys

import numpy as np

from edge.service.listener import detect_file

rows = []
detect_file(sys.argv[1], model=sys.argv[2], on_scores=lambda s, e, sc: rows.append(np.asarray(sc, np.float32).copy()))
np.save(sys.argv[3], np.stack(rows) if rows else np.zeros((0, 0), np.float32))
PY

say "host (x86_64): edge detect"
(cd "$REPO" && "$PY" -m edge detect "$WORK/in/demo.wav" --model "$WORK/in/model.onnx") >"$WORK/x86.jsonl" \
    || fail "edge detect failed on the host"
(cd "$REPO" && PYTHONPATH="$REPO" "$PY" "$WORK/in/scores.py" "$WORK/in/demo.wav" "$WORK/in/model.onnx" "$WORK/x86-scores.npy") \
    || fail "scoring failed on the host"
echo "$(wc -l <"$WORK/x86.jsonl") event(s) on x86_64"

say "arm64: python3 -m venv + pip install the wheel (aarch64 wheels from PyPI)"
mkdir -p "$ROOT/opt/edge-check"
cp "$WHEEL" "$WORK/in/model.onnx" "$WORK/in/demo.wav" "$WORK/in/scores.py" "$ROOT/opt/edge-check/"
t1=$SECONDS
in_root python3 -m venv /opt/edge-check/venv || fail "python3 -m venv failed inside the arm64 root"
in_root /opt/edge-check/venv/bin/pip install -q --only-binary=:all: "/opt/edge-check/${WHEEL##*/}" \
    >"$WORK/pip.log" 2>&1 || { tail -20 "$WORK/pip.log"; fail "pip install of the wheel failed inside the arm64 root"; }
in_root /opt/edge-check/venv/bin/python -c \
    'import platform, numpy, onnxruntime, soxr; print(platform.machine(), "numpy", numpy.__version__, "onnxruntime", onnxruntime.__version__, "soxr", soxr.__version__)'
echo "arm64 install: $((SECONDS - t1)) s"

say "arm64: edge detect (emulated; the time is not a performance figure)"
t2=$SECONDS
in_root /opt/edge-check/venv/bin/edge detect /opt/edge-check/demo.wav --model /opt/edge-check/model.onnx \
    >"$WORK/arm64.jsonl" 2>"$WORK/arm64.err" || { tail -20 "$WORK/arm64.err"; fail "edge detect failed inside the arm64 root"; }
echo "$(wc -l <"$WORK/arm64.jsonl") event(s) on aarch64 (emulated run took $((SECONDS - t2)) s)"
in_root sh -c 'cd /opt/edge-check && venv/bin/python scores.py demo.wav model.onnx arm64-scores.npy' \
    || fail "scoring failed inside the arm64 root"
cp "$ROOT/opt/edge-check/arm64-scores.npy" "$WORK/"

say "compare events: x86_64 vs aarch64 (tolerance $TOL s)"
"$PY" - "$WORK/x86.jsonl" "$WORK/arm64.jsonl" "$TOL" "$WORK/x86-scores.npy" "$WORK/arm64-scores.npy" <<'PY' \
    || fail "arm64 events differ from the x86_64 run"
import json, sys

import numpy as np

def load(p):
    with open(p) as f:
        return [json.loads(line) for line in f if line.strip()]

a, b, tol = load(sys.argv[1]), load(sys.argv[2]), float(sys.argv[3])
print(f"{'label':<16} {'x86 onset':>9} {'arm onset':>9} {'x86 off':>8} {'arm off':>8} {'x86 sc':>7} {'arm sc':>7}")
ok = len(a) == len(b)
for i in range(max(len(a), len(b))):
    ea = a[i] if i < len(a) else {}
    eb = b[i] if i < len(b) else {}
    row_ok = bool(ea) and bool(eb) and ea["label"] == eb["label"] \
        and abs(ea["onset"] - eb["onset"]) <= tol and abs((ea["offset"] or 0) - (eb["offset"] or 0)) <= tol
    ok &= row_ok
    f = lambda e, k: f"{e[k]:.3f}" if e.get(k) is not None else "-"
    print(f"{ea.get('label', eb.get('label', '?')):<16} {f(ea, 'onset'):>9} {f(eb, 'onset'):>9} {f(ea, 'offset'):>8} "
          f"{f(eb, 'offset'):>8} {f(ea, 'score'):>7} {f(eb, 'score'):>7} {'ok' if row_ok else 'MISMATCH'}")
if not a:
    print("note: no events on either side; the comparison only shows that both runs agree on silence")
print(f"{len(a)} x86_64 event(s), {len(b)} aarch64 event(s): {'MATCH' if ok else 'DIFFER'}")
sa, sb = np.load(sys.argv[4]), np.load(sys.argv[5])
if sa.shape != sb.shape:
    print(f"scores: different numbers of hops/labels {sa.shape} vs {sb.shape}")
    ok = False
elif sa.size:
    print(f"scores: {sa.shape[0]} hops x {sa.shape[1]} labels, max |x86_64 - aarch64| = {np.max(np.abs(sa - sb)):.2e}")
sys.exit(0 if ok else 1)
PY

say "PASS in $((SECONDS - t0)) s: arm64 install ran to the end and its events match x86_64"
