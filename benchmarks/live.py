"""What listening costs when it is live: the real-time path beside the batch path, in one run.

Run from the repository root (needs pulseaudio, pactl, paplay and mosquitto; ``scripts/setup.sh --dev``)::

    python -m benchmarks.live                    # 300 s live + 300 s paced file + batch (~11 min)
    edge bench --live                            # the same
    python -m benchmarks.live --seconds 20       # a quick look
    python -m benchmarks.live --code /work/main  # the same benchmark against another checkout's edge package
    python -m benchmarks.live --json out.json

Not part of the test suite: it prints figures and asserts nothing
(``tests/test_bench_smoke.py`` checks that it runs and prints them).

Three modes, each in a fresh child process built as ``edge run`` builds it
(:func:`edge.cli.app.build_sinks` with the MQTT publisher to a real mosquitto and the
Home Assistant control, :class:`~edge.service.listener.Listener`,
:class:`~edge.service.lifecycle.Lifecycle` on its ``on_tick``; 1 onnxruntime thread,
single-thread BLAS), on the same recording (``edge/data/demo.wav`` looped, 16 kHz mono)
and the same model:

* **live**: a private PulseAudio (:mod:`benchmarks.pulse`) with a null sink ``edge_room``;
  the recording is played into it with ``paplay`` and the listener's microphone is the
  sink's monitor, through PortAudio's ALSA ``pulse`` device at the model's rate
  (:class:`~edge.capture.sources.MicSource`: PortAudio callback -> ring -> consumer).
  Measured over ``--seconds`` after a ``WARMUP_S`` warm-up.
* **paced file**: the same recording as ``audio.source`` with ``audio.realtime: true``
  (:class:`~edge.capture.sources.FileSource`'s reader thread paces it), measured the same
  way over ``--paced-s``.
* **batch**: ``--seconds`` of the recording as fast as possible (``audio.realtime: false``),
  the whole run measured.

Figures, over the measured window: process CPU seconds (user + system, all threads,
``getrusage``) per audio second; per thread (``/proc/self/task/*``) CPU seconds per audio
second (``utime + stime`` of ``stat``) and wake-ups per audio second (voluntary +
involuntary context switches of ``status``: each is the thread going to sleep or being
preempted); peak RSS (``VmHWM``). Python threads are named by their ``threading`` name,
others (PortAudio's callback thread, the ALSA pulse plugin's main loop) by their
``comm`` and ``(native)``. Threads that ended before the end of the window (the batch
reader) are read as they end. PulseAudio's and mosquitto's own CPU is not counted.
Audio seconds: samples written into the ring in the window / source rate (live, paced),
audio processed (batch).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
JSON_TAG = "LIVE_JSON "
WARMUP_S = 3.0
RATE = 16000  # the recording's rate and the microphone's: the model's, so no resampler in any mode
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # as `edge` does
    os.environ.setdefault(_var, "1")

# Bar of issue 23.
TARGET_RATIO = 1.5
TARGET_LIVE = 0.005
TARGET_RSS_MB = 64.0


def say(line: str = "") -> None:
    print(line, flush=True)


# ----------------------------------------------------------------------------- per-thread figures

def _read_task(task: Path) -> tuple[str, int, float] | None:
    """``(comm, context switches, CPU s)`` of one task directory of /proc (None if it is gone)."""
    try:
        fields = dict(line.split(":", 1) for line in (task / "status").read_text().splitlines() if ":" in line)
        n = int(fields["voluntary_ctxt_switches"]) + int(fields["nonvoluntary_ctxt_switches"])
        stat = (task / "stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
        comm = (task / "comm").read_text().strip()
    except (OSError, KeyError, ValueError, IndexError):
        return None
    return comm, n, cpu


class Threads:
    """Per-thread ``[context switches, CPU s]`` of this process, keyed ``name#tid``; ended threads kept."""

    def __init__(self) -> None:
        self.ended: dict[str, list[float]] = {}

    @staticmethod
    def _key(tid: int, comm: str, names: dict[int, str]) -> str:
        name = names.get(tid)
        return f"{name}#{tid}" if name is not None else f"{comm} (native)#{tid}"

    def snapshot(self) -> dict[str, list[float]]:
        names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
        out = dict(self.ended)
        for task in Path("/proc/self/task").iterdir():
            got = _read_task(task)
            if got is not None:
                out[self._key(int(task.name), got[0], names)] = [got[1], got[2]]
        return out

    def on_end(self, obj: Any, attr: str) -> None:
        """Wrap the thread target ``obj.attr`` so its figures are read just before the thread ends."""
        orig = getattr(obj, attr)

        def target(*args: Any, **kw: Any) -> Any:
            try:
                return orig(*args, **kw)
            finally:
                tid = threading.get_native_id()
                got = _read_task(Path(f"/proc/self/task/{tid}"))
                if got is not None:
                    self.ended[f"{threading.current_thread().name}#{tid}"] = [got[1], got[2]]

        setattr(obj, attr, target)


def _diff(a: dict[str, list[float]], b: dict[str, list[float]]) -> dict[str, list[float]]:
    """Per thread name (tids merged) ``[switches, CPU s]`` between snapshots ``a`` and ``b``."""
    out: dict[str, list[float]] = {}
    for k, (n, c) in b.items():
        n0, c0 = a.get(k, [0, 0.0])
        name = k.rsplit("#", 1)[0]
        got = out.setdefault(name, [0, 0.0])
        got[0] += n - n0
        got[1] += c - c0
    return out


def _vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


# ----------------------------------------------------------------------------- child: one mode

def child(a: argparse.Namespace) -> None:
    """Build what ``edge run`` builds for ``a.child`` (live | paced | batch), measure, print one JSON line."""
    import edge
    from edge.cli.app import build_sinks
    from edge.service.config import load_config
    from edge.service.lifecycle import Lifecycle
    from edge.service.listener import Listener, load_classifier, make_source

    mode = a.child
    overrides: dict[str, Any] = {"model.path": a.model, "model.threads": 1, "output.stdout": False}
    if mode == "live":
        overrides.update({"audio.source": "mic", "audio.device": "pulse"})
    else:
        overrides.update({"audio.source": a.wav, "audio.realtime": mode == "paced"})
    if a.port:
        overrides.update({"mqtt.enabled": True, "mqtt.host": "127.0.0.1", "mqtt.port": a.port,
                          "mqtt.device_id": "bench", "outbox.path": str(Path(a.workdir) / f"outbox-{mode}.sqlite")})
    cfg = load_config(None, overrides)
    clf = load_classifier(cfg)
    try:  # the model's block as the capture callback (where the checkout under test takes it)
        source = make_source(cfg, clf.contract.frontend.sample_rate, clf.contract.block_seconds)
    except TypeError:
        source = make_source(cfg, clf.contract.frontend.sample_rate)
    sinks = build_sinks(cfg, clf.contract)
    control = None
    if cfg.mqtt.enabled:
        from edge.service.remote import RemoteControl

        control = RemoteControl(cfg, clf.contract)
        cfg = control.overlay(cfg)
        sinks.append(control.sink)
    lis = Listener(cfg, clf, sinks, source)
    if control is not None:
        control.attach(lis)
    life = Lifecycle(lis, None, control=control)
    threads = Threads()
    if hasattr(source, "_produce"):
        threads.on_end(source, "_produce")
    for s in sinks:
        if hasattr(s, "_run"):  # the MQTT network thread ends with the run (batch)
            threads.on_end(s, "_run")
    marks: dict[str, Any] = {}

    def mark(tag: str) -> None:
        marks[tag] = {"t": time.monotonic(), "ru": resource.getrusage(resource.RUSAGE_SELF),
                      "written": source.ring.written, "audio_s": lis.stats.audio_s, "threads": threads.snapshot(),
                      "blocks": lis.stats.blocks, "events": lis.stats.events}

    def timer() -> None:
        time.sleep(WARMUP_S)
        mark("0")
        time.sleep(a.seconds)
        mark("1")
        lis.stop()

    if mode == "batch":
        mark("0")
        try:
            life.run()
        finally:
            if control is not None:
                control.close()
        mark("1")
    else:
        th = threading.Thread(target=timer, name="bench-timer", daemon=True)
        th.start()
        life.run()
        th.join()
    m0, m1 = marks["0"], marks["1"]
    r0, r1 = m0["ru"], m1["ru"]
    if mode == "batch":
        audio = m1["audio_s"] - m0["audio_s"]
    else:
        audio = (m1["written"] - m0["written"]) / source.sample_rate
    per_thread = _diff(m0["threads"], m1["threads"])
    per_thread.pop("bench-timer", None)
    print(JSON_TAG + json.dumps({
        "mode": mode, "edge": str(Path(edge.__file__).resolve().parent.parent),
        "wall_s": m1["t"] - m0["t"], "audio_s": audio,
        "cpu_s": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
        "switches": (r1.ru_nvcsw - r0.ru_nvcsw) + (r1.ru_nivcsw - r0.ru_nivcsw),
        "minor_faults": r1.ru_minflt - r0.ru_minflt,
        "threads": per_thread, "peak_rss_mb": _vm_hwm_mb(), "blocks": m1["blocks"] - m0["blocks"],
        "events": lis.stats.events, "lost": source.ring.lost, "source_rate": source.sample_rate,
        "callbacks": getattr(source, "callbacks", None),
        "capture_block": getattr(source, "block", None),
    }), flush=True)


# ----------------------------------------------------------------------------- parent

def run_child(a: argparse.Namespace, mode: str, wav: Path, seconds: float, port: int, tmp: Path,
              env: dict[str, str]) -> dict[str, Any] | None:
    code = Path(a.code).resolve() if a.code else REPO
    cenv = dict(env, PYTHONPATH=str(code), STATE_DIRECTORY=str(tmp / "state"))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--seconds", str(seconds),
           "--model", str(a.model_path), "--wav", str(wav), "--port", str(port), "--workdir", str(tmp)]
    p = subprocess.run(cmd, env=cenv, capture_output=True, text=True, cwd=str(tmp), timeout=seconds * 3 + 180)
    lines = [x for x in p.stdout.splitlines() if x.startswith(JSON_TAG)]
    if p.returncode != 0 or not lines:
        say(f"   {mode}: child failed (rc {p.returncode}): {p.stderr.strip()[-1500:]}")
        return None
    return json.loads(lines[-1][len(JSON_TAG):])


def run_bench(a: argparse.Namespace) -> int:
    if a.child:
        child(a)
        return 0
    from benchmarks.bench import DEFAULT_MODEL, Mosquitto, base_recording, machine_line, write_long_wav
    from benchmarks.pulse import missing_tools, private_pulseaudio

    missing = missing_tools()
    if missing:
        say(f"live benchmark: needs {', '.join(missing)} (apt: pulseaudio pulseaudio-utils libasound2-plugins)")
        return 2
    a.model_path = Path(a.model) if a.model else DEFAULT_MODEL
    say(f"machine     : {machine_line()}")
    say(f"code        : {Path(a.code).resolve() if a.code else REPO}; model {a.model_path}")
    base, desc = base_recording(RATE)
    results: dict[str, Any] = {"seconds": a.seconds, "paced_s": a.paced_s}
    with tempfile.TemporaryDirectory(prefix="edge-live-") as td:
        tmp = Path(td)
        (tmp / "state").mkdir()
        play = tmp / "play.wav"
        write_long_wav(play, base, RATE, a.seconds + WARMUP_S + 30)
        batch = tmp / "batch.wav"
        write_long_wav(batch, base, RATE, a.seconds)
        say(f"recording   : {desc}, 16-bit mono {RATE} Hz (the model's rate: no resampler in any mode)")
        broker = Mosquitto(tmp / "mosquitto")
        port = broker.port if broker.start() else 0
        say(f"MQTT        : {f'mosquitto on 127.0.0.1:{port}, publisher on' if port else 'no mosquitto: off'}")
        try:
            with private_pulseaudio(tmp / "pa", ("edge_room",)) as env:
                env = dict(env, PULSE_SOURCE="edge_room.monitor")
                modes = [m for m in ("batch", "live", "paced") if m in a.modes]
                for mode in modes:
                    say(f"   running {mode} ...")
                    if mode == "live":
                        player = subprocess.Popen(["paplay", "--device=edge_room", str(play)], env=env)
                        try:
                            r = run_child(a, mode, play, a.seconds, port, tmp, env)
                        finally:
                            player.terminate()
                            player.wait(5)
                    elif mode == "paced":
                        r = run_child(a, mode, play, a.paced_s, port, tmp, env)
                    else:
                        r = run_child(a, mode, batch, a.seconds, port, tmp, env)
                    if r is not None:
                        results[mode] = r
        finally:
            broker.stop()
    report(results)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
        say(f"\nall figures written to {a.json}")
    return 0


NAMES = {"live": "live (PulseAudio microphone)", "paced": "paced file (audio.realtime)",
         "batch": "batch (as fast as possible)"}


def report(res: dict[str, Any]) -> None:
    modes = [m for m in ("live", "paced", "batch") if m in res]
    if not modes:
        return
    batch = res.get("batch")
    b_rtf = batch["cpu_s"] / batch["audio_s"] if batch else None
    say(f"\n{'mode':<32}{'audio s':>9}{'CPU s':>9}{'CPU s/audio s':>15}{'x batch':>9}{'wake-ups/audio s':>18}"
        f"{'faults/audio s':>16}{'peak RSS':>10}{'events':>8}{'lost':>6}")
    for m in modes:
        r = res[m]
        rtf = r["cpu_s"] / max(r["audio_s"], 1e-9)
        x = f"{rtf / b_rtf:.2f}" if b_rtf else "-"
        say(f"{NAMES[m]:<32}{r['audio_s']:9.1f}{r['cpu_s']:9.3f}{rtf:15.6f}{x:>9}"
            f"{r['switches'] / max(r['audio_s'], 1e-9):18.1f}{r.get('minor_faults', 0) / max(r['audio_s'], 1e-9):16.1f}"
            f"{r['peak_rss_mb']:8.1f}MB{r['events']:8d}{r['lost']:6d}")
    names = sorted({k for m in modes for k in res[m]["threads"]},
                   key=lambda k: -max(res[m]["threads"].get(k, [0, 0.0])[1] for m in modes))
    say("\nper thread: CPU s per audio s / wake-ups per audio s (context switches, voluntary + involuntary)")
    say(f"{'thread':<34}" + "".join(f"{m:>24}" for m in modes))
    for k in names:
        cells = []
        for m in modes:
            v = res[m]["threads"].get(k)
            au = max(res[m]["audio_s"], 1e-9)
            cells.append(f"{v[1] / au:12.6f} /{v[0] / au:8.1f}" if v else f"{'-':>22}")
        say(f"{k:<34}" + "".join(f"{c:>24}" for c in cells))
    for m in modes:
        r = res[m]
        extra = f", {r['callbacks']} capture callbacks of {r['capture_block']} samples" if r.get("callbacks") else ""
        say(f"  {m}: {r['blocks']} model blocks in the window, wall {r['wall_s']:.1f} s, source {r['source_rate']} Hz"
            f"{extra}; edge from {r['edge']}")
    say("(per-thread CPU comes in clock ticks of 10 ms: small threads read coarse; the process total is exact)")
    live = res.get("live")
    if live and b_rtf:
        l_rtf = live["cpu_s"] / live["audio_s"]
        say("\n-- bar (issue 23)")
        say(f"  [{'PASS' if l_rtf <= TARGET_RATIO * b_rtf else 'FAIL'}] live <= {TARGET_RATIO}x batch"
            f"{'':<20} {l_rtf / b_rtf:.2f}x")
        say(f"  [{'PASS' if l_rtf <= TARGET_LIVE else 'FAIL'}] live <= {TARGET_LIVE} CPU s per audio s"
            f"{'':<12} {l_rtf:.6f}")
        peak = max(res[m]["peak_rss_mb"] for m in modes)
        say(f"  [{'PASS' if peak <= TARGET_RSS_MB else 'FAIL'}] peak RSS <= {TARGET_RSS_MB:.0f} MB (MQTT on), "
            f"every mode{'':<6} {peak:.1f} MB")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from edge.cli.argtypes import positive

    p.add_argument("--seconds", type=positive(float), default=300.0,
                   help="live audio measured, and batch audio (s, default 300)")
    p.add_argument("--paced-s", type=positive(float), default=None,
                   help="paced-file audio measured (s, default --seconds)")
    p.add_argument("--model", metavar="FILE", help="model (default models/homesound-int8.onnx)")
    p.add_argument("--code", metavar="DIR", help="run the children against the edge package in DIR "
                                                  "(another checkout: before/after figures)")
    p.add_argument("--modes", default="batch,live,paced", help="comma-separated subset of batch,live,paced")
    p.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    p.add_argument("--child", choices=("live", "paced", "batch"), help=argparse.SUPPRESS)
    p.add_argument("--wav", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.live", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    a = p.parse_args(argv)
    a.modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    if a.paced_s is None:
        a.paced_s = a.seconds
    return run_bench(a)


if __name__ == "__main__":
    if __package__ in (None, ""):  # a child, run as a script: `edge` comes from PYTHONPATH (--code)
        sys.path[:] = [p for p in sys.path if Path(p).resolve() != Path(__file__).resolve().parent]
    raise SystemExit(main())
