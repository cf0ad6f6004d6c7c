"""``profile: hearable`` against the default: CPU per audio second, wake-ups per second, and smoke/CO recall.

Run from the repository root (needs pulseaudio, pactl, parec, paplay; scripts/setup.sh --dev installs them)::

    python -m benchmarks.hearable_profile                 # 30 s live per configuration, 2 rounds (~8 min)
    python -m benchmarks.hearable_profile --seconds 10 --rounds 1 --hops 0.48 --clips 5   # a quick look
    python -m benchmarks.hearable_profile --json out.json

Not part of the test suite; it prints figures and asserts nothing.

1. **Live, side by side, in one run.** A private PulseAudio with two null sinks:
   ``edge_room`` (the "room": ``--room ordinary``, generated room tone with speech-like
   babble a third of the time and nothing to report, the always-on steady state; or
   ``--room demo``, the demo recording with its alarms, looped; played with paplay) whose
   monitor is the microphone, and ``edge_ear`` (the earpiece: earcons go there). Each
   configuration runs in a fresh child process as ``edge run`` would build it
   (:func:`edge.cli.app.build_sinks`, a :class:`~edge.capture.sources.MicSource` through
   PortAudio's ALSA ``pulse`` device, the :class:`~edge.service.listener.Listener`) for
   ``--seconds`` after a 3 s warm-up; the rounds alternate the order of the configurations,
   so load on the shared machine falls on each alike. Figures, over the measured window only:
   process CPU (user + system, all threads, ``getrusage``) per second of audio, and context
   switches per second (voluntary + involuntary, all threads: each is the process going to
   sleep or being woken, i.e. wake-ups), with a per-thread split (Python threads by name,
   PortAudio's and the sound library's as ``native``). The earpiece's monitor is recorded at
   5 ms latency meanwhile, so that null sink plays earcons at a sound card's pace
   (benchmarks/pulse.py); PulseAudio's own CPU is not counted.
2. **Smoke/CO recall for every hop considered**: the synthetic alarm variants of
   ``tests/test_synth_alarms.py`` (T3 and T4 at the default tone, T3 at 2.9 and
   3.5 kHz, a continuously beeping smoke alarm, the random device/room training
   examples of ``synth_alarm_example`` (seed 5), the random device timings of
   ``random_timing`` (seed 3)), plus more random draws (T4 at 2.9/3.5 kHz, device/room
   seeds 6 and 7), each in synthetic room noise, through
   :func:`edge.service.listener.detect_file`, the default and the hearable profile, and
   the hearable profile at each longer ``--hops`` value: detected or not, and the decision
   delay (end of the hop that raised the onset - start of the alarm, in stream seconds).
3. **Real clips** of the hearable's labels (``--data``, ../shared/data/homesounds) in room
   noise, the same configurations: how many clips give an event of their label. The shipped
   model was trained on them (optimistic figures); it shows what a longer hop costs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
JSON_TAG = "HEARABLE_JSON "
WARMUP_S = 3.0
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # as `edge` does
    os.environ.setdefault(_var, "1")


def say(line: str = "") -> None:
    print(line, flush=True)


# ----------------------------------------------------------------------------- the child: one live run

def child(config: dict[str, Any], seconds: float) -> None:
    """Run the listener on the microphone for WARMUP_S + ``seconds``; print the measured window as JSON."""
    sys.path.insert(0, str(REPO))
    from edge.cli.app import build_sinks
    from edge.publish.sinks import BaseSink
    from edge.service.config import parse_config
    from edge.service.listener import Listener, load_classifier, make_source

    cfg = parse_config(config, "<bench>")
    clf = load_classifier(cfg)
    source = make_source(cfg, clf.contract.frontend.sample_rate, clf.contract.block_seconds)

    class Count(BaseSink):
        def __init__(self) -> None:
            self.onsets = 0

        def event(self, ev: Any) -> None:
            self.onsets += ev.state == "on"

    count = Count()
    sinks = [*build_sinks(cfg, clf.contract), count]
    lis = Listener(cfg, clf, sinks, source)
    marks: dict[str, Any] = {}

    def timer() -> None:
        time.sleep(WARMUP_S)
        marks["t0"], marks["r0"], marks["w0"] = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF), \
            source.ring.written
        marks["hops0"], marks["on0"] = lis.stats.hops, count.onsets
        marks["threads0"] = thread_switches()
        time.sleep(seconds)
        marks["t1"], marks["r1"], marks["w1"] = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF), \
            source.ring.written
        marks["hops1"], marks["on1"] = lis.stats.hops, count.onsets
        marks["threads"] = thread_switches()
        lis.stop()

    th = threading.Thread(target=timer, daemon=True)
    th.start()
    devnull = open(os.devnull, "w")  # noqa: SIM115 - the JSON-lines sink prints events; keep stdout for the result
    real_stdout, sys.stdout = sys.stdout, devnull
    try:
        lis.run()
    finally:
        sys.stdout = real_stdout
    th.join()
    r0, r1 = marks["r0"], marks["r1"]
    wall = marks["t1"] - marks["t0"]
    audio = (marks["w1"] - marks["w0"]) / source.sample_rate
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    ctx = (r1.ru_nvcsw - r0.ru_nvcsw) + (r1.ru_nivcsw - r0.ru_nivcsw)
    print(JSON_TAG + json.dumps({
        "wall_s": wall, "audio_s": audio, "cpu_s": cpu, "cpu_per_audio_s": cpu / max(audio, 1e-9),
        "wakeups_per_s": ctx / wall, "voluntary_per_s": (r1.ru_nvcsw - r0.ru_nvcsw) / wall,
        "hops": marks["hops1"] - marks["hops0"], "onsets": marks["on1"] - marks["on0"],
        "source_rate": source.sample_rate, "block_s": cfg.audio.block_s, "hop_s": cfg.model.hop_s,
        "labels": len(cfg.detector.labels) if cfg.detector.labels else len(clf.contract.labels),
        "sinks": [type(s).__name__ + (f"({s.name})" if hasattr(s, "name") else "") for s in sinks],
        "lost": source.ring.lost, "threads": {k: [round(v[0] - marks["threads0"].get(k, [0, 0.0])[0]),
                                                round(v[1] - marks["threads0"].get(k, [0, 0.0])[1], 3)]
                                            for k, v in marks["threads"].items()}}), flush=True)


def thread_switches() -> dict[str, list[float]]:
    """``[context switches, CPU s]`` so far per live thread of this process (``/proc/self/task``), by Python
    thread name (threads PortAudio or the sound library started: ``native``)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, list[float]] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            name = names.get(int(task.name), "native")
            fields = dict(line.split(":", 1) for line in (task / "status").read_text().splitlines() if ":" in line)
            n = int(fields["voluntary_ctxt_switches"]) + int(fields["nonvoluntary_ctxt_switches"])
            stat = (task / "stat").read_text().rsplit(")", 1)[1].split()
            cpu = (int(stat[11]) + int(stat[12])) / tick
        except (OSError, KeyError, ValueError, IndexError):
            continue
        got = out.setdefault(name, [0, 0.0])
        got[0] += n
        got[1] = round(got[1] + cpu, 3)
    return out


# ----------------------------------------------------------------------------- the parent

CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "hearable": {"profile": "hearable"},
    "hearable, hop 0.48 s": {"profile": "hearable", "model": {"hop_s": 0.48}},
    "hearable, 50 ms callbacks": {"profile": "hearable", "audio": {"block_s": 0.05}},
}


def ordinary_room(seconds: float = 60.0, sr: int = 48000) -> Any:
    """``seconds`` of a room with nothing to report: varied room tone (``room_noise_clip``, 10 s pieces) and,
    a third of the time, speech-like babble (the wearer talking). Generated, float32 mono at ``sr`` Hz."""
    import numpy as np
    import soxr

    from edge.synth.alarms import colored_noise, room_noise_clip

    rng = np.random.default_rng(27)
    parts = []
    for k in range(int(np.ceil(seconds / 10.0))):
        x = room_noise_clip(10.0, 16000, rng)
        if k % 3 == 1:
            b = colored_noise(x.shape[0], rng, 0.5)
            spec = np.fft.rfft(b)
            f = np.fft.rfftfreq(b.shape[0], 1 / 16000)
            spec[(f < 250) | (f > 3500)] = 0
            env = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * np.arange(b.shape[0]) / 16000)
            babble = np.fft.irfft(spec, b.shape[0]) * env
            x = x + (0.05 * babble / (np.std(babble) + 1e-9)).astype(np.float32)
        parts.append(x)
    y = soxr.resample(np.concatenate(parts), 16000, sr).astype(np.float32)
    return np.clip(y, -1.0, 1.0)


def live(a: argparse.Namespace, tmp: Path) -> dict[str, list[dict[str, Any]]]:
    from benchmarks.bench import base_recording, write_long_wav
    from benchmarks.pulse import MonitorRecorder, private_pulseaudio

    if a.room == "demo":
        base, desc = base_recording(48000)
    else:
        base, desc = ordinary_room(), ("an ordinary room (generated room tone, a third of the time speech-like "
                                       "babble; nothing to report)")
    extra = {n: json.loads(n) for n in a.configs if n.startswith("{")}  # a configuration given as JSON
    configs = {**CONFIGS, **extra}
    names = [n for n in configs if n in a.configs]
    total = (WARMUP_S + a.seconds + 10) * len(names) * a.rounds
    wav = tmp / "room.wav"
    write_long_wav(wav, base, 48000, total)
    say(f"-- live: {desc} played into a PulseAudio null sink whose monitor is the microphone; "
        f"{a.seconds:g} s measured per run after {WARMUP_S:g} s warm-up, {a.rounds} round(s), order alternating")
    out: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    with private_pulseaudio(tmp / "pa", ("edge_room", "edge_ear")) as env:
        # The earpiece's monitor is recorded at low latency, so the null sink plays earcons at a sound card's
        # pace (see benchmarks/pulse.py); the room's monitor is read only by the listener's microphone.
        recs = [MonitorRecorder(env, "edge_ear.monitor")]
        player = subprocess.Popen(["paplay", "--device=edge_room", str(wav)], env=env)
        try:
            for r in range(a.rounds):
                order = names if r % 2 == 0 else names[::-1]
                for n in order:
                    cenv = dict(env, PULSE_SINK="edge_ear", PULSE_SOURCE="edge_room.monitor",
                                STATE_DIRECTORY=str(tmp / "state"), PYTHONPATH=str(REPO))
                    cmd = [sys.executable, "-m", "benchmarks.hearable_profile", "--child", json.dumps(configs[n]),
                           "--seconds", str(a.seconds)]
                    p = subprocess.run(cmd, env=cenv, capture_output=True, text=True, cwd=REPO,
                                       timeout=a.seconds + 120)
                    lines = [x for x in p.stdout.splitlines() if x.startswith(JSON_TAG)]
                    if p.returncode != 0 or not lines:
                        say(f"   {n}: child failed (rc {p.returncode}): {p.stderr.strip()[-800:]}")
                        continue
                    res = json.loads(lines[-1][len(JSON_TAG):])
                    out[n].append(res)
                    say(f"   round {r + 1} {n:<28} CPU {res['cpu_per_audio_s']:.5f} s/s, "
                        f"{res['wakeups_per_s']:.1f} wake-ups/s, {res['hops']} hops, {res['onsets']} onsets, "
                        f"lost {res['lost']}")
        finally:
            player.terminate()
            player.wait(5)
            for rec in recs:
                rec.stop()
    return out


def variants() -> list[tuple[str, str, Any, bool]]:
    """``(name, expected label, signal 16 kHz, used by tests/test_synth_alarms.py)``: each alarm variant of the
    synthetic alarm tests, and a few more random draws, in synthetic room noise."""
    import numpy as np

    from edge.synth.alarms import AlarmVariant, random_timing, room_noise_clip, synth_alarm, synth_alarm_example

    sr = 16000
    lead, dur, tail = 3.0, 8.0, 3.0
    specs: list[tuple[str, str, Any, bool]] = []
    for kind, label in (("T3", "smoke_alarm"), ("T4", "co_alarm")):
        specs.append((f"{kind} standard 3150 Hz, dry", label,
                      synth_alarm(kind, dur, sr, np.random.default_rng(1), AlarmVariant(rt60_s=0.0)), True))
        for f0 in (2900.0, 3500.0):
            specs.append((f"{kind} {f0:g} Hz, no wobble, dry", label,
                          synth_alarm(kind, dur, sr, np.random.default_rng(0),
                                      AlarmVariant(f0=f0, wobble_hz=0.0, rt60_s=0.0)), kind == "T3"))
        for seed in (5, 6, 7):
            x, _ = synth_alarm_example(kind, dur, sr, np.random.default_rng(seed))
            specs.append((f"{kind} random device/room (seed {seed})", label, x, seed == 5))
    specs.append(("T3 continuous beeper 0.25/0.08 s, dry", "smoke_alarm",
                  synth_alarm("T3", dur, sr, np.random.default_rng(1), AlarmVariant(rt60_s=0.0),
                              timing=(0.25, 0.0, 1, 0.08)), True))
    rng = np.random.default_rng(3)  # the device timings of test_device_timings_stay_within_tolerance...
    seen: set[tuple[str, bool]] = set()
    while len(seen) < 3:
        kind = "T3" if len(seen) < 2 else "T4"
        timing = random_timing(kind, rng)
        key = (kind, timing[2] == 1)
        if key in seen:
            continue
        seen.add(key)
        what = "continuous" if timing[2] == 1 else "standard within 10 %"
        specs.append((f"{kind} device timing {what} {tuple(round(t, 2) for t in timing)}",
                      "smoke_alarm" if kind == "T3" else "co_alarm",
                      synth_alarm(kind, dur, sr, np.random.default_rng(2), AlarmVariant(rt60_s=0.0), timing=timing),
                      True))
    out = []
    for i, (name, label, alarm, tested) in enumerate(specs):
        rng_i = np.random.default_rng(100 + i)
        x = room_noise_clip(lead + dur + tail, sr, rng_i)
        s = int(lead * sr)
        x[s : s + alarm.shape[0]] += alarm
        out.append((name, label, np.clip(x, -1, 1).astype(np.float32), tested))
    return out


class FirstOnset:
    """A sink that keeps the stream time of the hop that raised the first onset of ``label``."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.hop_end = 0.0
        self.t: float | None = None

    def hop(self, start: float, end: float, scores: Any) -> None:  # Listener's on_scores: before the chain runs
        self.hop_end = end

    def start(self) -> None:
        pass

    def event(self, ev: Any) -> None:
        if ev.state == "on" and ev.label == self.label and self.t is None:
            self.t = self.hop_end

    def level(self, dbfs: float, top: Any, t: float) -> None:
        pass

    def status(self, health: Any) -> None:
        pass

    def health(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


def recall(a: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from edge.capture.audiofile import write_wav
    from edge.service.config import parse_config
    from edge.service.listener import detect_file, load_classifier

    lead = 3.0
    clf = load_classifier(parse_config({}))
    vs = variants()
    say(f"\n-- smoke/CO recall: {len(vs)} synthetic alarm variants (8 s of alarm after {lead:g} s of room noise), "
        "through detect_file; delay = end of the hop that raised the onset - alarm start (stream seconds)")
    paths = []
    for i, (_, _, x, _) in enumerate(vs):
        paths.append(write_wav(tmp / f"variant{i}.wav", x, 16000))
    res: dict[str, Any] = {}
    configs = [("default", {}), ("hearable", {"profile": "hearable"})]
    configs += [(f"hearable hop {h:g} s", {"profile": "hearable", "model": {"hop_s": h}}) for h in a.hops]
    for name, conf in configs:
        cfg = parse_config(conf, "<bench>")
        rows = []
        for (vname, label, _, tested), path in zip(vs, paths, strict=True):
            first = FirstOnset(label)
            events = detect_file(path, cfg, clf, sinks=[first], on_scores=first.hop)
            hit = [e for e in events if e.label == label and e.offset is not None and e.offset > lead
                   and e.onset < lead + 8.0]
            wrong = sorted({e.label for e in events if e.label != label})
            rows.append({"variant": vname, "label": label, "from_tests": tested, "detected": bool(hit),
                         "delay_s": None if first.t is None else round(first.t - lead, 3), "other_labels": wrong})
        n_hit = sum(r["detected"] for r in rows)
        tested = [r for r in rows if r["from_tests"]]
        delays = [r["delay_s"] for r in rows if r["delay_s"] is not None]
        res[name] = {"rows": rows, "detected": n_hit, "of": len(rows),
                     "tests_detected": sum(r["detected"] for r in tested), "tests_of": len(tested),
                     "median_delay_s": statistics.median(delays) if delays else None,
                     "max_delay_s": max(delays) if delays else None}
        say(f"   {name:<20} detected {res[name]['tests_detected']}/{len(tested)} of the tests' variants, "
            f"{n_hit}/{len(rows)} in all; decision delay median "
            f"{res[name]['median_delay_s']} s, max {res[name]['max_delay_s']} s")
        for r in rows:
            if not r["detected"] or a.verbose:
                say(f"      {'MISS' if not r['detected'] else 'ok  '} {r['variant']} ({r['label']}"
                    f"{', a test variant' if r['from_tests'] else ''}), "
                    f"delay {r['delay_s']}, other labels {r['other_labels']}")
    return res


def clip_recall(a: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Real clips of the hearable's other labels (../shared/data/homesounds, all folds: the shipped model was
    trained on them, so the figures are optimistic; what matters here is the hop's effect) in 2 s of room noise
    either side: detected or not, per hop."""
    import csv

    import numpy as np

    from edge.capture.audiofile import read_mono, write_wav
    from edge.service.config import HEARABLE_LABELS, parse_config
    from edge.service.listener import detect_file, load_classifier
    from edge.synth.alarms import room_noise_clip

    root = Path(a.data)
    if not (root / "manifest.csv").is_file():
        say(f"\n-- real clips: skipped ({root}/manifest.csv not found)")
        return {}
    rows = [r for r in csv.DictReader((root / "manifest.csv").open()) if r["label"] in HEARABLE_LABELS]
    by_label: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_label.setdefault(r["label"], []).append(r)
    rng = np.random.default_rng(27)
    items = []
    for label, rs in sorted(by_label.items()):
        for r in rs[: a.clips]:
            x = read_mono(root / r["path"], 16000)
            pad = room_noise_clip(2.0, 16000, rng)
            y = np.concatenate([pad, x + room_noise_clip(x.shape[0] / 16000, 16000, rng)[: x.shape[0]], pad])
            items.append((label, write_wav(tmp / f"clip{len(items)}.wav", np.clip(y, -1, 1), 16000)))
    clf = load_classifier(parse_config({}))
    say(f"\n-- real clips of the hearable's labels ({root}, at most {a.clips} per label; in-sample for the shipped "
        "model, so optimistic; the hop's effect is what counts): clips with an event of their label")
    out: dict[str, Any] = {}
    for hop in ["default", "hearable", *a.hops]:
        name = hop if isinstance(hop, str) else f"hearable hop {hop:g} s"
        conf = {} if hop == "default" else {"profile": "hearable"} if hop == "hearable" else \
            {"profile": "hearable", "model": {"hop_s": hop}}
        cfg = parse_config(conf, "<bench>")
        hits: dict[str, list[bool]] = {}
        for label, path in items:
            evs = detect_file(path, cfg, clf)
            hits.setdefault(label, []).append(any(e.label == label for e in evs))
        out[name] = {lab: [sum(h), len(h)] for lab, h in hits.items()}
        say(f"   {name:<20} " + ", ".join(f"{lab} {sum(h)}/{len(h)}" for lab, h in hits.items()))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.hearable_profile", description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=30.0, help="measured seconds per live run (default 30)")
    p.add_argument("--rounds", type=int, default=2, help="rounds of all configurations (default 2)")
    p.add_argument("--configs", nargs="+", default=list(CONFIGS),
                   help="which live configurations (names, or a configuration as JSON)")
    p.add_argument("--hops", type=float, nargs="*", default=[0.48, 0.72, 0.96],
                   help="longer model.hop_s values to compare in the recall checks (default 0.48 0.72 0.96)")
    p.add_argument("--room", choices=("ordinary", "demo"), default="ordinary",
                   help="live audio: an ordinary room with nothing to report (default; the always-on steady state) "
                        "or the demo recording (a smoke and a CO alarm every 30 s: earcons play)")
    p.add_argument("--no-live", action="store_true", help="only the recall check")
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "homesounds"),
                   help="real clips for the hop's effect on the other labels (default ../shared/data/homesounds)")
    p.add_argument("--clips", type=int, default=30, help="at most this many clips per label (default 30; 0 = skip)")
    p.add_argument("--verbose", action="store_true", help="every variant's row, not only the misses")
    p.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    p.add_argument("--child", metavar="CONFIG_JSON", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child is not None:
        child(json.loads(a.child), a.seconds)
        return 0
    from benchmarks.pulse import missing_tools

    say("== hearable profile vs default")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="edge-hearable-") as td:
        tmp = Path(td)
        if not a.no_live:
            if missing_tools():
                say(f"-- live: skipped (missing {', '.join(missing_tools())}; scripts/setup.sh --dev installs them)")
            else:
                results["live"] = live(a, tmp)
        results["recall"] = recall(a, tmp)
        if a.clips > 0:
            results["clips"] = clip_recall(a, tmp)
    if results.get("live"):
        say("\n-- summary (live, medians over rounds)")
        base = results["live"].get("default") or []
        b_cpu = statistics.median(r["cpu_per_audio_s"] for r in base) if base else None
        b_wk = statistics.median(r["wakeups_per_s"] for r in base) if base else None
        for n, runs in results["live"].items():
            if not runs:
                continue
            cpu = statistics.median(r["cpu_per_audio_s"] for r in runs)
            wk = statistics.median(r["wakeups_per_s"] for r in runs)
            ratio = f"{cpu / b_cpu:.2f}x" if b_cpu else "-"
            wratio = f"{wk / b_wk:.2f}x" if b_wk else "-"
            say(f"   {n:<28} CPU {cpu:.5f} s per audio s ({ratio} the default), {wk:.1f} wake-ups/s ({wratio})")
            split = {}
            for th in sorted({k for r in runs for k in r["threads"]}):
                per = [r["threads"].get(th, [0, 0.0]) for r in runs]
                split[th] = (statistics.median(p[1] for p in per) / a.seconds,
                             statistics.median(p[0] for p in per) / a.seconds)
            say("      by thread (CPU s/s, wake-ups/s): " + ", ".join(f"{k} {c:.5f} / {w:.1f}"
                                                             for k, (c, w) in split.items()))
        hear = results["live"].get("hearable") or []
        rec = results["recall"]
        h_name = "hearable" if "hearable" in rec else None
        if hear and b_cpu:
            cpu = statistics.median(r["cpu_per_audio_s"] for r in hear)
            ok = cpu <= 0.6 * b_cpu
            say(f"   [{'PASS' if ok else 'FAIL'}] hearable CPU <= 0.6x default: {cpu / b_cpu:.2f}x")
        if h_name:
            r = rec[h_name]
            ok = r["tests_detected"] == r["tests_of"]
            say(f"   [{'PASS' if ok else 'FAIL'}] smoke/CO detected in every variant the synthetic alarm tests use, "
                f"hearable profile: {r['tests_detected']}/{r['tests_of']} (all variants: "
                f"{r['detected']}/{r['of']}; default: {rec['default']['detected']}/{rec['default']['of']})")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
