"""What the listener costs, measured side by side in one run.

Run from the repository root::

    python -m benchmarks.bench                  # >= 10 min of audio, all comparisons
    python -m benchmarks.bench --seconds 8 --paced-s 4 --reps 1   # a quick look

(``edge bench`` runs the same from a source checkout.) Not part of the test suite:
it prints figures, it asserts nothing; ``tests/test_bench_smoke.py`` only checks
that it runs and prints them.

What it does, in order:

1. **Model**: file size, parameters and multiply-accumulates (MACs) per call and
   per second of audio, counted from the ONNX graph (Conv/Gemm/MatMul and their
   QLinear/Integer/QDQ int8 forms), for the int8 model and its fp32 twin.
2. **Long recording**: the demo recording (``edge/data/demo.wav``) looped, or
   synthetic household audio (room noise, T3/T4 alarms, knocks, tones, babble) when
   the demo is absent, written as a WAV at ``--source-rate`` (default 48 kHz, what a
   USB microphone delivers natively, so the resampler is part of the chain).
3. **Whole chain, as fast as possible, single thread**, in a fresh child process:
   the ``edge run --source FILE`` objects (:class:`edge.service.listener.Listener`, its
   ``FileSource``, onnxruntime with 1 thread) publishing to a real mosquitto through
   :class:`edge.publish.mqtt.MqttPublisher`. The pipeline has no timing hooks, so the child
   wraps the Listener's own stage objects (resampler, STFT, log-mel, classifier,
   detector, sinks) with thread-CPU timers: the loop that runs is the pipeline's
   loop, unchanged. Prints real-time factor (CPU seconds per audio second) overall
   and per stage, peak RSS, RSS drift, and time from process start to first inference.
4. **Side by side, same process, same audio** (ratios): incremental STFT vs
   recomputing the whole analysis window every hop; int8 vs fp32; onnxruntime
   threads 1 vs 2; our model vs YAMNet at its own 0.48 s hop (1 thread, via
   :mod:`edge.yamnet.scorer`; skipped with a reason when the file/package is absent).
5. **Publish latency, real-time paced**: a child plays the recording at real time
   through the same chain into mosquitto; a subscriber here timestamps each event
   message. Latency = arrival of the event message at the subscriber (it has left
   the publisher and crossed the broker) - arrival in the ring buffer of the last
   sample of the window whose scores triggered it. Both clocks are CLOCK_MONOTONIC.
6. A summary against the targets of issue 6.

Units: seconds (s), milliseconds (ms), bytes/MB (2**20), MACs = multiply-accumulates.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from edge.cli.argtypes import positive  # argparse only: safe before the BLAS thread settings

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / "models" / "homesound-int8.onnx"
DEFAULT_FP32 = REPO / "models" / "homesound-fp32.onnx"
DEMO_WAV = REPO / "edge" / "data" / "demo.wav"
JSON_TAG = "BENCH_JSON "
BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
MB = 2**20

# Targets of issue 6.
TARGET_RTF = 0.005
TARGET_YAMNET_RATIO = 20.0
TARGET_RSS_MB = 80.0
TARGET_FIRST_INFERENCE_S = 1.0
TARGET_LAT_MEDIAN_S = 0.300
TARGET_LAT_P95_S = 0.600


# ----------------------------------------------------------------------------- helpers

def say(line: str = "") -> None:
    print(line, flush=True)


def pct(values: list[float], q: float) -> float:
    """Percentile ``q`` (0-100) by linear interpolation (numpy's default)."""
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{platform.machine()}, {cpu}, {os.cpu_count()} cores, load average {load:.1f} at start "
            f"(shared machine: wall times are noisier than CPU times)")


# ----------------------------------------------------------------------------- model graph

def count_macs(path: str | Path) -> dict[str, Any]:
    """Multiply-accumulates per call of an ONNX graph, from its static shapes.

    Counts Conv / ConvInteger / QLinearConv (output elements x C_in/group x kernel),
    MatMul / MatMulInteger / QLinearMatMul and Gemm (output elements x K). QDQ int8
    graphs keep the float op types between Quantize/DequantizeLinear, so they count
    the same as their fp32 twin. Element-wise ops, pooling and activations are not
    MACs and are left out. Returns ``{"macs", "by_op", "params", "unknown"}``.
    """
    import onnx
    from onnx import shape_inference

    m = onnx.load(str(path))
    for vi in m.graph.input:  # batch/dynamic dims -> 1
        for d in vi.type.tensor_type.shape.dim:
            if not d.HasField("dim_value") or d.dim_value <= 0:
                d.dim_value = 1
    try:
        m = shape_inference.infer_shapes(m, data_prop=True)
    except Exception:  # older graphs: keep whatever shapes the file has
        pass
    shapes: dict[str, list[int | None]] = {}
    for vi in [*m.graph.input, *m.graph.value_info, *m.graph.output]:
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
    params = 0
    for init in m.graph.initializer:
        shapes[init.name] = list(init.dims)
        n = 1
        for d in init.dims:
            n *= d
        if n > 1:  # scales and zero points are scalars; per-channel ones are counted (tiny)
            params += n

    def prod(s: list[int | None] | None) -> int | None:
        if not s or any(d is None for d in s):
            return None
        out = 1
        for d in s:
            out *= int(d)  # type: ignore[arg-type]
        return out

    total, by_op, unknown = 0, Counter(), []
    for node in m.graph.node:
        op = node.op_type
        y = shapes.get(node.output[0])
        macs: int | None = None
        if op in ("Conv", "ConvInteger", "QLinearConv"):
            w = shapes.get(node.input[3] if op == "QLinearConv" else node.input[1])
            ny, nk = prod(y), prod(w[1:] if w else None)
            macs = ny * nk if ny is not None and nk is not None else None
        elif op in ("MatMul", "MatMulInteger", "QLinearMatMul", "Gemm"):
            a = shapes.get(node.input[0])
            k: int | None = None
            if a:
                if op == "Gemm":
                    trans_a = next((at.i for at in node.attribute if at.name == "transA"), 0)
                    k = a[0] if trans_a else a[-1]
                else:
                    k = a[-1]
            ny = prod(y)
            macs = ny * int(k) if ny is not None and k else None
        else:
            continue
        if macs is None:
            unknown.append(f"{op}:{node.name or node.output[0]}")
            continue
        total += macs
        by_op[op] += macs
    return {"macs": total, "by_op": dict(by_op), "params": params, "unknown": unknown}


def dequantized_weight(node: Any, inits: dict[str, Any]) -> Any:
    """The float32 initializer (named as ``node``'s output) that a DequantizeLinear ``node`` of a constant
    int8 weight in ``inits`` computes on every call: ``(q - zero_point) * scale``, per axis if per-channel."""
    import numpy as np
    from onnx import numpy_helper

    q = numpy_helper.to_array(inits[node.input[0]]).astype(np.float32)
    scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
    zp = (numpy_helper.to_array(inits[node.input[2]]).astype(np.float32)
          if len(node.input) > 2 and node.input[2] in inits else np.zeros_like(scale))
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    if scale.ndim == 1 and scale.size > 1:
        shape = [1] * q.ndim
        shape[axis] = scale.size
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return numpy_helper.from_array(((q - zp) * scale).astype(np.float32), node.output[0])


def dequantize_qdq(int8_path: str | Path, out_path: str | Path) -> Path:
    """An fp32 twin of a QDQ int8 graph: weights dequantized once, activation Q/DQ pairs made float clips.

    Same architecture and (dequantized) weights, float kernels: what the int8 model
    would cost without quantization. Used when no fp32 export is available.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(int8_path))
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    producers = {o: n for n in g.node for o in n.output}
    keep, new_inits, drop_inits = [], [], set()
    for n in g.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in inits:
            new_inits.append(dequantized_weight(n, inits))
            drop_inits.update(x for x in n.input if x in inits)
            continue
        if n.op_type == "DequantizeLinear":
            src = producers.get(n.input[0])
            if src is not None and src.op_type == "QuantizeLinear":
                # Not an Identity: the quantized range clips (the quantizer drops a Relu whose
                # output range starts at 0), so keep that clip, without the rounding.
                scale = numpy_helper.to_array(inits[src.input[1]]).astype(np.float32)
                zp_t = inits.get(src.input[2]) if len(src.input) > 2 else None
                zp = numpy_helper.to_array(zp_t) if zp_t is not None else np.zeros((), np.uint8)
                info = np.iinfo(zp.dtype)
                lo = ((info.min - zp.astype(np.float32)) * scale).astype(np.float32)
                hi = ((info.max - zp.astype(np.float32)) * scale).astype(np.float32)
                if lo.size != 1:  # per-channel activations (not produced by our quantizer): no clip
                    keep.append(helper.make_node("Identity", [src.input[0]], [n.output[0]]))
                    continue
                lo_name, hi_name = n.output[0] + "__clip_lo", n.output[0] + "__clip_hi"
                new_inits += [numpy_helper.from_array(lo.reshape(()), lo_name),
                              numpy_helper.from_array(hi.reshape(()), hi_name)]
                keep.append(helper.make_node("Clip", [src.input[0], lo_name, hi_name], [n.output[0]]))
                continue
        keep.append(n)
    used = {x for n in keep for x in n.input}
    keep = [n for n in keep if not (n.op_type == "QuantizeLinear" and all(o not in used for o in n.output))]
    used = {x for n in keep for x in n.input}
    del g.node[:]
    g.node.extend(keep)
    remaining = [i for i in g.initializer if i.name not in drop_inits or i.name in used]
    del g.initializer[:]
    g.initializer.extend(remaining + new_inits)
    onnx.save(m, str(out_path))
    return Path(out_path)


# ----------------------------------------------------------------------------- audio

def household_segment(seed: int, seconds: float = 30.0, sr: int = 16000) -> Any:
    """``seconds`` of synthetic household audio at ``sr`` Hz, float32 mono.

    Pink room noise (~-45 dBFS) with: a T3 smoke alarm and a T4 CO alarm
    (:mod:`edge.synth.alarms`), knocks (decaying noise bursts), three steady tones
    (500/1000/2000 Hz, which the tiny test model knows) and speech-like babble
    (band-limited noise with a 4 Hz syllable envelope). Generated, not recorded.
    """
    import numpy as np

    from edge.synth.alarms import colored_noise, synth_alarm

    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    x = (10 ** (-45 / 20) * colored_noise(n, rng, 1.0)).astype(np.float32)

    def put(sig: np.ndarray, at_s: float) -> None:
        s = int(at_s * sr)
        e = min(n, s + sig.shape[0])
        x[s:e] += sig[: e - s]

    slots = rng.permutation(6) * (seconds / 6.0)  # six 5 s slots, one sound each, random order
    put(synth_alarm("T3", 4.5, sr, rng), float(slots[0]))
    put(synth_alarm("T4", 4.5, sr, rng), float(slots[1]))
    knock = np.exp(-np.arange(int(0.06 * sr)) / (0.01 * sr)) * rng.standard_normal(int(0.06 * sr))
    for k in range(5):
        put((0.3 * knock).astype(np.float32), float(slots[2]) + 0.5 + 0.25 * k)
    t = np.arange(int(1.2 * sr)) / sr
    for k, f in enumerate((500.0, 1000.0, 2000.0)):
        put((0.2 * np.sin(2 * np.pi * f * t)).astype(np.float32), float(slots[3]) + 1.5 * k)
    b = colored_noise(int(4.0 * sr), rng, 0.5)
    spec = np.fft.rfft(b)
    f = np.fft.rfftfreq(b.shape[0], 1 / sr)
    spec[(f < 250) | (f > 3500)] = 0
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * np.arange(b.shape[0]) / sr + rng.uniform(0, 6.28))
    babble = np.fft.irfft(spec, b.shape[0]) * env
    put((0.1 * babble / (np.std(babble) + 1e-9)).astype(np.float32), float(slots[4]))
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def base_recording(sr: int) -> tuple[Any, str]:
    """The audio that is looped: the demo recording if present, else 60 s of synthetic household audio."""
    import numpy as np

    if DEMO_WAV.is_file():
        from edge.capture.audiofile import read_audio

        data, rate = read_audio(DEMO_WAV)
        mono = data.mean(axis=1).astype(np.float32)
        desc = f"{DEMO_WAV.relative_to(REPO)} ({mono.shape[0] / rate:.1f} s at {rate} Hz), looped"
        return resample(mono, rate, sr), desc
    x = np.concatenate([household_segment(seed) for seed in (1, 2)])
    return resample(x, 16000, sr), "synthetic household audio (60 s generated here: edge/data/demo.wav absent), looped"


def resample(x: Any, rate_in: int, rate_out: int) -> Any:
    import numpy as np

    if rate_in == rate_out:
        return x.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(x, rate_in, rate_out, quality="HQ").astype(np.float32)


def write_long_wav(path: Path, base: Any, sr: int, seconds: float) -> float:
    """Loop ``base`` into a 16-bit mono WAV of ``seconds`` (rounded up to whole samples), chunk by chunk."""
    import struct

    import numpy as np

    total = int(np.ceil(seconds * sr))
    pcm = np.clip(np.round(base * 32767.0), -32768, 32767).astype("<i2").tobytes()
    with open(path, "wb") as f:
        data_bytes = 2 * total
        f.write(b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE")
        f.write(b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sr, 2 * sr, 2, 16))
        f.write(b"data" + struct.pack("<I", data_bytes))
        left = data_bytes
        while left > 0:
            chunk = pcm[: min(left, len(pcm))]
            f.write(chunk)
            left -= len(chunk)
    return total / sr


# ----------------------------------------------------------------------------- mosquitto

class Mosquitto:
    """A throwaway mosquitto on 127.0.0.1 (the same start-up as tests/broker.py)."""

    def __init__(self, workdir: Path) -> None:
        sbin = Path("/usr/sbin/mosquitto")
        self.exe = shutil.which("mosquitto") or (str(sbin) if sbin.exists() else None)
        self.dir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> bool:
        if self.exe is None:
            return False
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "mosquitto.conf"
        lines = ["user root"] if os.geteuid() == 0 else []
        lines += [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "persistence false",
                  "log_dest none", "max_queued_messages 100000"]
        conf.write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen([self.exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                time.sleep(0.02)
        self.stop()
        return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


class EventSubscriber:
    """Timestamps (CLOCK_MONOTONIC) every message on the listener's ``event`` topic."""

    def __init__(self, port: int, topic: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.got: list[tuple[float, dict[str, Any]]] = []
        self._ready = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.c.on_connect = lambda c, u, f, r, p: (c.subscribe(topic, qos=1), self._ready.set())
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self._ready.wait(5)
        time.sleep(0.1)  # SUBACK

    def _on_message(self, c: Any, u: Any, msg: Any) -> None:
        t = time.monotonic()
        try:
            self.got.append((t, json.loads(msg.payload)))
        except ValueError:
            pass

    def stop(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


# ----------------------------------------------------------------------------- child: the chain

def child_chain(a: argparse.Namespace) -> None:
    """One run of the ``edge run --source FILE`` chain with per-stage timers; prints a JSON line."""
    spawn = a.spawn_time
    import resource

    from edge.model.classifier import Classifier
    from edge.publish.sinks import JsonLinesSink
    from edge.service.config import load_config
    from edge.service.health import cpu_seconds, peak_rss_bytes, rss_bytes
    from edge.service.listener import Listener, make_source

    t_imports = time.time() - spawn

    def peak_mb() -> float:
        return peak_rss_bytes() / MB

    peaks = {"imports": peak_mb()}
    overrides: dict[str, Any] = {"audio.source": a.wav, "audio.realtime": bool(a.realtime), "model.path": a.model,
                                 "model.threads": a.threads}
    if a.port:
        overrides.update({"mqtt.enabled": True, "mqtt.host": "127.0.0.1", "mqtt.port": a.port,
                          "mqtt.device_id": "bench", "outbox.path": str(Path(a.workdir) / "outbox.sqlite")})
    if a.threshold is not None:
        overrides["detector.threshold"] = a.threshold
    cfg = load_config(None, overrides)
    clf = Classifier(a.model, threads=a.threads)
    t_model = time.time() - spawn
    peaks["model loaded"] = peak_mb()
    source = make_source(cfg, clf.contract.frontend.sample_rate, clf.contract.block_seconds)
    if a.port:
        from edge.publish.mqtt import MqttPublisher

        sinks: list[Any] = [MqttPublisher(cfg, clf.contract)]
    else:
        sinks = [JsonLinesSink(open(os.devnull, "w"))]
    listener = Listener(cfg, clf, sinks, source)
    peaks["source + sinks + listener built"] = peak_mb()

    cpu: Counter[str] = Counter()
    wall: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    first_inference: list[float] = []
    first_cpu: list[float] = []
    first_ready: list[float] = []
    rss_samples: list[tuple[float, int]] = []
    emitted: list[dict[str, Any]] = []

    def timed(obj: Any, attr: str, name: str, after: Any = None) -> None:
        orig = getattr(obj, attr)

        def wrapper(*args: Any, **kw: Any) -> Any:
            c0, w0 = time.thread_time(), time.perf_counter()
            out = orig(*args, **kw)
            cpu[name] += time.thread_time() - c0
            wall[name] += time.perf_counter() - w0
            calls[name] += 1
            if after is not None:
                after(out, args)
            return out

        setattr(obj, attr, wrapper)

    def after_model(out: Any, args: Any) -> None:
        if not first_inference:
            first_inference.append(time.time() - spawn)
            first_cpu.append(cpu_seconds())
            peaks["first inference"] = peak_mb()
        if not first_ready and listener.classifier.ready:
            first_ready.append(time.time() - spawn)
        if calls["model"] % 500 == 1:
            rss_samples.append((listener.stats.audio_s, rss_bytes()))

    def after_detector(events: Any, args: Any) -> None:
        if events:
            now = time.monotonic()
            for ev in events:
                emitted.append({"id": ev.id, "state": ev.state, "label": ev.label, "window_end_s": float(args[2]),
                                "emitted": now})

    thread_cpu: Counter[str] = Counter()

    def thread_total(obj: Any, attr: str, name: str) -> None:
        """CPU of a whole background thread whose target is ``obj.attr`` (read when it returns)."""
        orig = getattr(obj, attr)

        def target(*args: Any, **kw: Any) -> Any:
            try:
                return orig(*args, **kw)
            finally:
                thread_cpu[name] += time.thread_time()

        setattr(obj, attr, target)

    if hasattr(source, "_produce"):
        thread_total(source, "_produce", "file reader thread")
    for s in listener.sinks:
        if hasattr(s, "_run"):
            thread_total(s, "_run", "MQTT network thread")
    timed(listener.source.ring, "read", "glue: ring read")
    timed(listener, "_levels", "glue: levels")
    timed(listener.resampler, "push", "resample")
    timed(listener.resampler, "flush", "resample")
    timed(listener.mel, "push", "frontend")         # STFT + mel; mel = frontend - stft
    timed(listener.mel.stft, "push", "stft")
    timed(listener.classifier, "push_block", "model", after_model)
    timed(listener.detector, "update", "detector", after_detector)
    timed(listener.detector, "flush", "detector")
    for s in listener.sinks:
        for attr in ("event", "level", "status"):
            timed(s, attr, "publish")

    # Arrival of samples in the ring (producer side): (monotonic time, samples written so far).
    arrivals: list[tuple[float, int]] = []
    ring = source.ring
    ring_write = ring.write

    def write(samples: Any) -> None:
        ring_write(samples)
        arrivals.append((time.monotonic(), ring.written))

    if a.realtime:  # only the paced run needs them (keeps the fast run's memory figure clean)
        ring.write = write  # type: ignore[method-assign]

    if a.duration:
        timer = threading.Timer(a.duration, listener.stop)
        timer.daemon = True
        timer.start()
    cpu0, th0, w0 = cpu_seconds(), time.thread_time(), time.perf_counter()
    stats = listener.run()
    cpu_total, th_total, w_total = cpu_seconds() - cpu0, time.thread_time() - th0, time.perf_counter() - w0
    rss_samples.append((stats.audio_s, rss_bytes()))
    peaks["end of run"] = peak_mb()

    # Latency bookkeeping: when did the last sample of each triggering window reach the ring?
    import bisect

    written = [w for _, w in arrivals]
    src_rate = source.sample_rate
    for e in emitted:
        last = int(-(-e["window_end_s"] * src_rate // 1)) - 1  # index of the window's last sample (source rate)
        i = bisect.bisect_right(written, last)
        e["arrived"] = arrivals[i][0] if i < len(arrivals) else None
    res = {
        "audio_s": stats.audio_s, "blocks": stats.blocks, "hops": stats.hops, "events": stats.events,
        "cpu_s": cpu_total, "main_thread_cpu_s": th_total, "wall_s": w_total,
        "stage_cpu_s": dict(cpu), "stage_wall_s": dict(wall), "stage_calls": dict(calls),
        "peak_rss_bytes": peak_rss_bytes(),
        "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "first_inference_cpu_s": first_cpu[0] if first_cpu else None,
        "first_window_score_s": first_ready[0] if first_ready else None, "thread_cpu_s": dict(thread_cpu),
        "rss_samples": rss_samples, "imports_s": t_imports, "model_loaded_s": t_model,
        "first_inference_s": first_inference[0] if first_inference else None,
        "source_rate": src_rate, "block_s": clf.contract.block_seconds, "model_rate": clf.contract.frontend.sample_rate,
        "ring_lost": ring.lost, "emitted": emitted, "peak_rss_mb_steps": peaks,
    }
    print(JSON_TAG + json.dumps(res), flush=True)


def run_child(a: argparse.Namespace, wav: Path, model: Path, threads: int, port: int, workdir: Path,
              realtime: bool = False, duration: float = 0.0, threshold: float | None = None,
              blas_default: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.bench", "--child", "chain", "--wav", str(wav), "--model", str(model),
           "--threads", str(threads), "--port", str(port), "--workdir", str(workdir),
           "--duration", str(duration)]
    if realtime:
        cmd.append("--realtime")
    if threshold is not None:
        cmd += ["--threshold", str(threshold)]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if blas_default:  # numpy's BLAS with its own default thread count (what `edge` pins to 1 at start)
        cmd.append("--blas-default")
        for var in BLAS_THREAD_VARS:
            env.pop(var, None)
    cmd += ["--spawn-time", repr(time.time())]
    p = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, text=True)
    for line in p.stdout.splitlines():
        if line.startswith(JSON_TAG):
            return json.loads(line[len(JSON_TAG):])
    raise RuntimeError(f"benchmark child failed (status {p.returncode}): {p.stderr.strip()[-800:]}")


# ----------------------------------------------------------------------------- in-process comparisons

def cpu_per_audio(fn: Any, audio_s: float, min_cpu_s: float = 0.3, max_reps: int = 50) -> tuple[float, float, int]:
    """Run ``fn()`` (which processes ``audio_s`` seconds) until ``min_cpu_s`` of CPU is spent.

    Returns (process CPU s per audio s, wall s per audio s, repetitions).
    """
    reps, cpu, w = 0, 0.0, 0.0
    while reps < max_reps and (cpu < min_cpu_s or reps == 0):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu += time.process_time() - c0
        w += time.perf_counter() - w0
        reps += 1
    return cpu / (reps * audio_s), w / (reps * audio_s), reps


def compare_frontends(x16: Any, contract: Any, chunk_s: float = 0.05) -> dict[str, float]:
    """Incremental log-mel on ``chunk_s`` chunks vs the whole window recomputed every model hop."""
    import numpy as np

    from edge.features.frontend import IncrementalSTFT, LogMelStream, logmel, power_spectrogram

    p = contract.frontend
    sr = p.sample_rate
    audio_s = x16.shape[0] / sr
    step = max(1, int(chunk_s * sr))
    hop = contract.block_samples
    win = int(round(contract.window_seconds * sr))

    def incremental(stream: Any, size: int) -> Any:
        """A run of ``stream`` (IncrementalSTFT or LogMelStream) fed ``size``-sample pushes."""
        def run() -> None:
            s = stream(p)
            for i in range(0, x16.shape[0], size):
                s.push(x16[i:i + size])
        return run

    def window_stft() -> None:
        for end in range(win, x16.shape[0] + 1, hop):
            power_spectrogram(x16[end - win:end], p)

    def window_logmel() -> None:
        for end in range(win, x16.shape[0] + 1, hop):
            logmel(x16[end - win:end], p)

    out: dict[str, float] = {"hop_s": hop / sr, "window_s": win / sr, "chunk_s": step / sr}
    for name, fn in (("inc_stft", incremental(IncrementalSTFT, step)), ("win_stft", window_stft),
                     ("inc_logmel", incremental(LogMelStream, step)), ("win_logmel", window_logmel),
                     ("inc_stft_blocks", incremental(IncrementalSTFT, hop)),
                     ("inc_logmel_blocks", incremental(LogMelStream, hop))):
        out[name] = cpu_per_audio(fn, audio_s)[0]
    out["frames_ratio"] = float(p.n_frames(win)) / (hop / p.hop_length)
    assert np.isfinite(out["inc_stft"])
    return out


def model_cost(path: Path, blocks: Any, block_s: float, threads: int, spinning: bool = True) -> dict[str, float]:
    """CPU and wall seconds per audio second of ``Classifier.push_block`` over ``blocks``.

    ``spinning=False`` swaps in a session whose thread pool sleeps instead of spinning
    between calls (``session.intra_op.allow_spinning = 0``).
    """
    from edge.model.classifier import Classifier

    clf = Classifier(path, threads=threads)
    if not spinning:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        clf.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    for b in blocks[:4]:
        clf.push_block(b)  # warm-up: first runs allocate the arena

    def run() -> None:
        clf.reset()
        for b in blocks:
            clf.push_block(b)

    cpu, w, reps = cpu_per_audio(run, len(blocks) * block_s)
    return {"cpu": cpu, "wall": w, "reps": reps, "ms_per_block": 1000 * w * block_s}


def model_scores(path: Path, blocks: Any) -> Any:
    import numpy as np

    from edge.model.classifier import Classifier

    clf = Classifier(path, threads=1)
    return np.stack([clf.push_block(b)[0] for b in blocks])


# ----------------------------------------------------------------------------- main

def resolve_model(a: argparse.Namespace, tmp: Path) -> tuple[Path, str]:
    if a.model:
        return Path(a.model), str(a.model)
    if DEFAULT_MODEL.is_file():
        return DEFAULT_MODEL, str(DEFAULT_MODEL.relative_to(REPO))
    sys.path.insert(0, str(REPO / "tests"))
    from tinymodel import build_tiny_model

    p = build_tiny_model(tmp / "tiny.onnx")
    return p, "tiny test model (tests/tinymodel.py): models/homesound-int8.onnx is not there yet"


def resolve_fp32(a: argparse.Namespace, int8: Path, tmp: Path) -> tuple[Path | None, str]:
    if a.fp32_model:
        return Path(a.fp32_model), str(a.fp32_model)
    if not a.model and DEFAULT_FP32.is_file():
        return DEFAULT_FP32, str(DEFAULT_FP32.relative_to(REPO))
    try:
        import onnx

        has_qdq = any(n.op_type == "DequantizeLinear" for n in onnx.load(str(int8)).graph.node)
    except ImportError:
        return None, "skipped: the onnx package is not installed (pip install onnx)"
    if not has_qdq:
        return None, "skipped: the model is not a QDQ int8 graph and no --fp32-model was given"
    p = dequantize_qdq(int8, tmp / "fp32-from-qdq.onnx")
    return p, "fp32 twin made here by dequantizing the QDQ graph (same weights; pass --fp32-model for an export)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    a = parser.parse_args(argv)
    # Single-thread settings for numpy's BLAS too (the mel matmul): must precede the numpy import.
    if not a.blas_default:
        for var in BLAS_THREAD_VARS:
            os.environ.setdefault(var, "1")
    if a.child == "chain":
        child_chain(a)
        return 0
    return run_bench(a)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="FILE", help="int8 ONNX model (default models/homesound-int8.onnx, "
                                                   "else a tiny test model)")
    p.add_argument("--fp32-model", metavar="FILE", help="fp32 ONNX model (default models/homesound-fp32.onnx, "
                                                        "else the int8 QDQ graph dequantized)")
    p.add_argument("--seconds", type=positive(float), default=600.0,
                   help="audio pushed through the chain (s, default 600)")
    p.add_argument("--source-rate", type=positive(int), default=48000,
                   help="sample rate of the recording (Hz, default 48000)")
    p.add_argument("--paced-s", type=float, default=60.0, help="length of the real-time paced run (s, default 60; "
                                                               "0 = skip)")
    p.add_argument("--paced-threshold", type=float, default=None, help="detector threshold for the paced run "
                                                                       "(default: the model's)")
    p.add_argument("--compare-s", type=positive(float), default=60.0, help="audio used by the side-by-side ratios (s)")
    p.add_argument("--yamnet", metavar="FILE", default=None, help="yamnet.tflite (default ../shared/models/yamnet)")
    p.add_argument("--quality", nargs=2, metavar=("OURS_JSON", "YAMNET_JSON"),
                   help="`edge eval-stream --json` results of our model and of YAMNet on the same scenes")
    p.add_argument("--no-mqtt", action="store_true", help="JSON lines to /dev/null instead of a real mosquitto")
    p.add_argument("--reps", type=positive(int), default=1, help="chain runs (the best CPU figure is reported)")
    p.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    # internal: the child process
    p.add_argument("--child", choices=["chain"], help=argparse.SUPPRESS)
    p.add_argument("--wav", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--workdir", default=".", help=argparse.SUPPRESS)
    p.add_argument("--realtime", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--duration", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--threshold", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--spawn-time", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--blas-default", action="store_true", help=argparse.SUPPRESS)


def run_bench(a: argparse.Namespace) -> int:
    import numpy as np
    import onnxruntime as ort

    from edge.features.frontend import LogMelStream
    from edge.model.contract import read_contract

    results: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="edge-bench-"))
    broker = Mosquitto(tmp / "broker")
    try:
        say("== edge listener benchmark")
        say(f"machine      : {machine_line()}")
        say(f"software     : Python {platform.python_version()}, numpy {np.__version__}, "
            f"onnxruntime {ort.__version__}")
        model, model_desc = resolve_model(a, tmp)
        c = read_contract(model)
        say(f"model        : {model_desc} (version {c.model_version}, {len(c.labels)} labels)")
        say(f"model timing : block {c.block_seconds:.3f} s ({c.block_frames} frames), window {c.window_seconds:.3f} s "
            f"({c.window_blocks} blocks): one model call per block, cost per second independent of the hop")

        # 1. model size and MACs
        say("\n-- model size and compute (MACs counted from the ONNX graph)")
        calls_per_s = 1.0 / c.block_seconds
        fp32, fp32_desc = resolve_fp32(a, model, tmp)
        info = {}
        for tag, path in (("int8", model), ("fp32", fp32)):
            if path is None:
                say(f"{tag:<5}: {fp32_desc}")
                continue
            mc = count_macs(path)
            size = path.stat().st_size
            info[tag] = {"bytes": size, "macs_per_call": mc["macs"], "macs_per_s": mc["macs"] * calls_per_s,
                         "params": mc["params"], "by_op": mc["by_op"], "unknown": mc["unknown"]}
            ops = ", ".join(f"{k} {v / 1e6:.3f} M" for k, v in sorted(mc["by_op"].items()))
            say(f"{tag:<5}: {size / 1024:8.1f} KB, {mc['params']:,} parameters, {mc['macs'] / 1e6:.3f} M MACs per call "
                f"x {calls_per_s:.2f} calls/s = {mc['macs'] * calls_per_s / 1e6:.3f} M MACs per second of audio "
                f"[{ops}]" + (f"; shapes unknown for {mc['unknown']}" if mc["unknown"] else ""))
            if tag == "fp32":
                say(f"       ({fp32_desc})")
        results["model"] = {"path": str(model), "desc": model_desc, "version": c.model_version, **info}

        # 2. long recording
        base, base_desc = base_recording(a.source_rate)
        wav = tmp / "long.wav"
        audio_s = write_long_wav(wav, base, a.source_rate, a.seconds)
        short_wav = tmp / "compare.wav"
        write_long_wav(short_wav, base, a.source_rate, a.compare_s)
        del base
        say(f"\n-- recording: {audio_s:.1f} s ({audio_s / 60:.1f} min) at {a.source_rate} Hz, 16-bit mono: {base_desc}")
        if a.source_rate != c.frontend.sample_rate:
            say(f"   resampled {a.source_rate} -> {c.frontend.sample_rate} Hz in the chain (soxr HQ), "
                "as for a microphone opened at its native rate")

        # 3. whole chain
        port = 0
        if not a.no_mqtt and broker.start():
            port = broker.port
            pub = f"MqttPublisher -> mosquitto on 127.0.0.1:{port} (QoS 1, durable SQLite outbox)"
        else:
            pub = "JSON lines to /dev/null (" + ("--no-mqtt" if a.no_mqtt else "mosquitto not installed") + ")"
        say(f"\n-- whole chain, as fast as possible, single thread (onnxruntime intra_op_num_threads=1), "
            f"fresh process; sink: {pub}")
        runs = [run_child(a, wav, model, 1, port, tmp) for _ in range(max(1, a.reps))]
        r = min(runs, key=lambda x: x["cpu_s"])
        results["chain"] = r
        au = r["audio_s"]
        st = r["stage_cpu_s"]
        frontend = st.get("frontend", 0.0)
        stft = st.get("stft", 0.0)
        stages = [("resample", st.get("resample", 0.0)), ("STFT", stft), ("mel + log", frontend - stft),
                  ("model", st.get("model", 0.0)), ("detector", st.get("detector", 0.0)),
                  ("publish (sinks)", st.get("publish", 0.0))]
        glue = r["main_thread_cpu_s"] - sum(v for _, v in stages)
        other = r["cpu_s"] - r["main_thread_cpu_s"]
        ring_read, levels = st.get("glue: ring read", 0.0), st.get("glue: levels", 0.0)
        tc = r["thread_cpu_s"]
        stages += [("pipeline glue (main thread, rest of the loop)", glue),
                   ("  of which ring read (copy out of the ring)", ring_read),
                   ("  of which block levels (dBFS)", levels),
                   ("other threads", other)]
        stages += [(f"  of which {k}", v) for k, v in sorted(tc.items())]
        say(f"audio {au:.1f} s, {r['blocks']} model calls, {r['hops']} hops, {r['events']} events, "
            f"{r['ring_lost']} samples lost; process CPU {r['cpu_s']:.3f} s, wall {r['wall_s']:.3f} s")
        say(f"{'stage':<44}{'CPU s':>9}{'RTF (CPU s/audio s)':>22}{'share':>8}")
        for name, v in stages:
            say(f"{name:<44}{v:9.3f}{v / au:22.6f}{100 * v / r['cpu_s']:7.1f}%")
        rtf = r["cpu_s"] / au
        say("(the publish stage is the sinks' calls on the processing thread: outbox write, level/status slots; "
            "sending happens on the MQTT network thread)")
        say(f"{'TOTAL (process CPU, all threads)':<44}{r['cpu_s']:9.3f}{rtf:22.6f}")
        say(f"RTF overall : {rtf:.6f} CPU s per audio s = {100 * rtf:.3f} % of one core "
            f"(wall RTF {r['wall_s'] / au:.6f})")
        peak = r["peak_rss_bytes"] / MB
        rs = r["rss_samples"]
        say(f"peak RSS    : {peak:.1f} MB; RSS {rs[0][1] / MB:.1f} MB after {rs[0][0]:.0f} s of audio, "
            f"{rs[-1][1] / MB:.1f} MB at the end ({rs[-1][0]:.0f} s)")
        say("  peak RSS by step: " + ", ".join(f"{k} {v:.1f} MB" for k, v in r["peak_rss_mb_steps"].items()))
        fi = r["first_inference_s"]
        say(f"start->first inference: {fi:.3f} s = first model call (imports {r['imports_s']:.3f} s, model loaded "
            f"{r['model_loaded_s']:.3f} s, then the first {c.block_seconds:.2f} s block of audio from the file; "
            f"process CPU by then {r['first_inference_cpu_s']:.3f} s); first full-window score "
            f"({c.window_seconds:.3f} s of audio) at {r['first_window_score_s']:.3f} s"
            if fi is not None else
            "start->first inference: no inference happened")
        results["summary"] = {"rtf": rtf, "peak_rss_mb": peak, "first_inference_s": fi}
        if fp32 is not None:
            rf = min((run_child(a, wav, fp32, 1, port, tmp) for _ in range(max(1, a.reps))), key=lambda x: x["cpu_s"])
            results["chain_fp32"] = rf
            say(f"same chain with the fp32 model: RTF {rf['cpu_s'] / rf['audio_s']:.6f} (model stage "
                f"{rf['stage_cpu_s'].get('model', 0.0) / rf['audio_s']:.6f} vs int8 {st.get('model', 0.0) / au:.6f}), "
                f"peak RSS {rf['peak_rss_bytes'] / MB:.1f} MB, {rf['events']} events (int8: {r['events']})")

        # 4. side by side
        say(f"\n-- side by side, same process, same audio ({a.compare_s:.0f} s)")
        from edge.capture.audiofile import open_audio

        with open_audio(wav) as rd:
            want = int(a.compare_s * rd.sample_rate)
            parts, got = [], 0
            for blk in rd.blocks(1 << 16):
                parts.append(blk[:, 0] if blk.ndim == 2 else blk)
                got += parts[-1].shape[0]
                if got >= want:
                    break
        x16 = resample(np.concatenate(parts)[:want], a.source_rate, c.frontend.sample_rate)
        fe = compare_frontends(x16, c)
        results["frontend"] = fe
        say(f"front end   : CPU s per audio s; incremental fed {fe['chunk_s'] * 1000:.0f} ms chunks (live callback "
            f"size) or one {fe['hop_s'] * 1000:.0f} ms block per push, vs the whole {fe['window_s']:.3f} s window "
            f"recomputed every {fe['hop_s']:.3f} s hop ({fe['frames_ratio']:.1f}x the frames)")
        for tag, name in (("stft", "STFT"), ("logmel", "log-mel")):
            i50, ib, w = fe[f"inc_{tag}"], fe[f"inc_{tag}_blocks"], fe[f"win_{tag}"]
            say(f"  {name:<9} : incremental {i50:.6f} ({fe['chunk_s'] * 1000:.0f} ms) / {ib:.6f} (block); "
                f"recompute {w:.6f} -> recompute/incremental {w / ib:.1f}x per block, {w / i50:.1f}x at "
                f"{fe['chunk_s'] * 1000:.0f} ms chunks")
        mel = LogMelStream(c.frontend).push(x16)
        bf = c.block_frames
        blocks = [np.ascontiguousarray(mel[i * bf:(i + 1) * bf]) for i in range(mel.shape[0] // bf)]
        m1 = model_cost(model, blocks, c.block_seconds, 1)
        results["int8_t1"] = m1
        say(f"int8 model  : {m1['cpu']:.6f} CPU s/audio s, {m1['ms_per_block']:.3f} ms per call (1 thread)")
        if fp32 is not None:
            mf = model_cost(fp32, blocks, c.block_seconds, 1)
            diff = float(np.max(np.abs(model_scores(model, blocks) - model_scores(fp32, blocks))))
            results["fp32_t1"] = {**mf, "max_abs_score_diff": diff}
            say(f"fp32 model  : {mf['cpu']:.6f} CPU s/audio s, {mf['ms_per_block']:.3f} ms per call -> "
                f"int8/fp32 CPU {m1['cpu'] / mf['cpu']:.2f}x, "
                f"size {info['int8']['bytes'] / info['fp32']['bytes']:.2f}x; "
                f"max |score int8 - fp32| {diff:.4f}")
        else:
            say(f"fp32 model  : {fp32_desc}")
        m2 = model_cost(model, blocks, c.block_seconds, 2)
        results["int8_t2"] = m2
        say(f"ORT threads : 2 threads {m2['cpu']:.6f} CPU s/audio s, {m2['ms_per_block']:.3f} ms per call -> "
            f"CPU 2/1 {m2['cpu'] / m1['cpu']:.2f}x, wall per call 2/1 {m2['wall'] / m1['wall']:.2f}x "
            "(the listener uses 1 thread)")
        m2s = model_cost(model, blocks, c.block_seconds, 2, spinning=False)
        results["int8_t2_nospin"] = m2s
        say(f"              2 threads, no spinning {m2s['cpu']:.6f} CPU s/audio s, {m2s['ms_per_block']:.3f} ms "
            f"per call -> CPU 2/1 {m2s['cpu'] / m1['cpu']:.2f}x")
        b1 = run_child(a, short_wav, model, 1, 0, tmp)
        bd = run_child(a, short_wav, model, 1, 0, tmp, blas_default=True)
        results["blas_threads"] = {"one": b1["cpu_s"] / b1["audio_s"], "default": bd["cpu_s"] / bd["audio_s"]}
        say(f"numpy BLAS  : whole chain (no MQTT) with BLAS threads=1 {b1['cpu_s'] / b1['audio_s']:.6f} vs library "
            f"default ({os.cpu_count()} cores) {bd['cpu_s'] / bd['audio_s']:.6f} CPU s/audio s -> default/1 "
            f"{bd['cpu_s'] / b1['cpu_s']:.2f}x (mel matmul; why `edge` pins BLAS to 1 thread)")
        yamnet_compare(a, c, info, m1, fe, r, results)

        # 5. paced latency
        if a.paced_s > 0:
            paced_latency(a, wav, model, broker, port, tmp, results)

        # 6. summary
        summary(results)
        if a.json:
            Path(a.json).write_text(json.dumps(results, indent=1, default=str))
            say(f"\nall figures written to {a.json}")
    finally:
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def yamnet_compare(a: argparse.Namespace, c: Any, info: dict[str, Any], m1: dict[str, float], fe: dict[str, float],
                   chain: dict[str, Any], results: dict[str, Any]) -> None:
    try:
        from edge.yamnet import scorer as Y
    except ImportError as e:
        say(f"YAMNet      : skipped (edge.yamnet.scorer not importable: {e})")
        return
    path = Path(a.yamnet) if a.yamnet else Y.DEFAULT_YAMNET_PATH
    reason = Y.yamnet_available(path)
    if reason:
        say(f"YAMNet      : skipped ({reason})")
        return
    scorer = Y.YamnetScorer(path, hop_s=Y.DEFAULT_HOP_S, threads=1)
    cost = Y.measure_cost(scorer, audio_s=a.compare_s)
    ours_macs = info["int8"]["macs_per_s"]
    y_macs = cost["macs_per_audio_s"]
    ours_fm = m1["cpu"] + fe["inc_logmel"]  # YAMNet's tflite includes its own front end
    chain_rtf = chain["cpu_s"] / chain["audio_s"]
    yam = {**cost, "macs_ratio": y_macs / ours_macs if ours_macs else None,
           "cpu_ratio_frontend_model": cost["cpu_s_per_audio_s"] / ours_fm,
           "cpu_ratio_chain": cost["cpu_s_per_audio_s"] / chain_rtf}
    results["yamnet"] = yam
    say(f"YAMNet      : {path} at its own {cost['hop_s']} s hop, 1 thread (ai-edge-litert): "
        f"{cost['cpu_s_per_audio_s']:.6f} CPU s/audio s ({cost['cpu_ms_per_patch']:.2f} ms per patch), "
        f"{y_macs / 1e6:.1f} M MACs/s (published 69.2 M per patch)")
    say(f"  ours/YAMNet: compute {ours_macs / 1e6:.3f} vs {y_macs / 1e6:.1f} M MACs per audio s -> "
        f"{y_macs / ours_macs:.0f}x less; measured CPU (front end + model) {ours_fm:.6f} vs "
        f"{cost['cpu_s_per_audio_s']:.6f} -> {yam['cpu_ratio_frontend_model']:.1f}x less; our whole chain "
        f"{chain_rtf:.6f} vs YAMNet's model alone -> {yam['cpu_ratio_chain']:.2f}x")
    if a.quality:
        try:
            ours, theirs = (json.loads(Path(p).read_text()) for p in a.quality)
            # `python -m edge.evaluate.yamnet_stream --json` nests YAMNet under the listener's
            # tuned detector ("tuned") and Frigate-style blocks ("frigate"): the first is the fair one.
            ours, theirs = (d.get("tuned", d) for d in (ours, theirs))
            f_o, f_y = ours.get("event_f1_500ms"), theirs.get("event_f1_500ms")
            if not isinstance(f_o, (int, float)) or not isinstance(f_y, (int, float)):
                raise ValueError("no event_f1_500ms in one of them")
            results["quality"] = {"ours_event_f1_500ms": f_o, "yamnet_event_f1_500ms": f_y}
            say(f"  quality   : event-F1 (500 ms collar) on the same scenes: ours {f_o}, YAMNet {f_y} "
                f"(from {a.quality[0]}, {a.quality[1]})")
        except (OSError, ValueError) as e:
            say(f"  quality   : could not read --quality files ({e})")
    else:
        say("  quality   : not measured here; pass --quality OURS.json YAMNET.json from `edge eval-stream --json` "
            "on the same scenes (see docs/performance.md)")


def paced_latency(a: argparse.Namespace, wav: Path, model: Path, broker: Mosquitto, port: int, tmp: Path,
                  results: dict[str, Any]) -> None:
    say(f"\n-- publish latency, real-time paced run ({a.paced_s:.0f} s of the recording at real time, "
        "fresh process, 1 thread)")
    if not port:
        say("skipped: no mosquitto (install the Debian package mosquitto)")
        return
    sub = EventSubscriber(port, "homesound/bench/event")
    try:
        r = run_child(a, wav, model, 1, port, tmp / "paced", realtime=True, duration=a.paced_s,
                      threshold=a.paced_threshold)
        deadline = time.monotonic() + 3.0
        want = {(e["id"], e["state"]) for e in r["emitted"]}
        while time.monotonic() < deadline and len({(m["id"], m["state"]) for _, m in sub.got if "id" in m}) < len(want):
            time.sleep(0.05)
    finally:
        sub.stop()
    got = {(m.get("id"), m.get("state")): t for t, m in sub.got}
    lat, lat_on, internal, missing = [], [], [], 0
    for e in r["emitted"]:
        t = got.get((e["id"], e["state"]))
        if t is None or e["arrived"] is None:
            missing += 1
            continue
        lat.append(t - e["arrived"])
        internal.append(e["emitted"] - e["arrived"])
        if e["state"] == "on":
            lat_on.append(t - e["arrived"])
    fi = r["first_inference_s"]
    say(f"audio {r['audio_s']:.1f} s, {len(r['emitted'])} event messages emitted by the detector "
        f"({missing} not matched at the subscriber), real-time RTF {r['cpu_s'] / max(r['audio_s'], 1e-9):.6f} "
        "(process CPU incl. idle MQTT polling and small live chunks), "
        f"peak RSS {r['peak_rss_bytes'] / MB:.1f} MB")
    st = r["stage_cpu_s"]
    au = max(r["audio_s"], 1e-9)
    say("  per stage (CPU s/audio s): " + ", ".join(
        f"{k} {v / au:.6f}" for k, v in (("resample", st.get("resample", 0.0)), ("STFT", st.get("stft", 0.0)),
                                         ("mel", st.get("frontend", 0.0) - st.get("stft", 0.0)),
                                         ("model", st.get("model", 0.0)), ("detector", st.get("detector", 0.0)),
                                         ("publish", st.get("publish", 0.0)),
                                         ("other threads", r["cpu_s"] - r["main_thread_cpu_s"]),
                                         *r["thread_cpu_s"].items())))
    if fi is not None:
        say(f"start->first inference when paced: first model call {fi:.3f} s (after one {r['block_s']:.2f} s block of "
            f"audio arrived in real time), first full-window score {r['first_window_score_s']:.3f} s")
    res: dict[str, Any] = {"n": len(lat), "missing": missing}
    if lat:
        res.update(median=statistics.median(lat), p95=pct(lat, 95), max=max(lat),
                   detector_median=statistics.median(internal))
        say(f"latency last window sample -> event at subscriber: median {1000 * res['median']:.0f} ms, "
            f"p95 {1000 * res['p95']:.0f} ms, max {1000 * res['max']:.0f} ms over {len(lat)} messages "
            f"(to the detector's output alone: median {1000 * res['detector_median']:.0f} ms)")
        if lat_on:
            say(f"  onsets only: median {1000 * statistics.median(lat_on):.0f} ms, p95 {1000 * pct(lat_on, 95):.0f} ms "
                f"over {len(lat_on)}")
    else:
        say("no event reached the subscriber: latency not measured (the recording had no detected sound in "
            "the paced part; try --paced-threshold or a longer --paced-s)")
    results["latency"] = res


def summary(results: dict[str, Any]) -> None:
    s = results.get("summary", {})
    y = results.get("yamnet")
    lat = results.get("latency", {})

    def row(name: str, value: str, ok: bool | None) -> None:
        mark = "n/a " if ok is None else ("PASS" if ok else "FAIL")
        say(f"  [{mark}] {name:<44} {value}")

    say("\n-- targets (issue 6)")
    row(f"whole chain RTF <= {TARGET_RTF}", f"{s['rtf']:.6f}", s["rtf"] <= TARGET_RTF)
    if y and y.get("macs_ratio"):
        row(f">= {TARGET_YAMNET_RATIO:.0f}x less compute than YAMNet (MACs/s)", f"{y['macs_ratio']:.0f}x",
            y["macs_ratio"] >= TARGET_YAMNET_RATIO)
    else:
        row(f">= {TARGET_YAMNET_RATIO:.0f}x less compute than YAMNet", "YAMNet skipped", None)
    row(f"peak RSS <= {TARGET_RSS_MB:.0f} MB", f"{s['peak_rss_mb']:.1f} MB", s["peak_rss_mb"] <= TARGET_RSS_MB)
    fi = s.get("first_inference_s")
    row(f"start -> first inference <= {TARGET_FIRST_INFERENCE_S} s", "none" if fi is None else f"{fi:.3f} s",
        None if fi is None else fi <= TARGET_FIRST_INFERENCE_S)
    if lat.get("n"):
        row(f"publish latency median <= {TARGET_LAT_MEDIAN_S * 1000:.0f} ms", f"{lat['median'] * 1000:.0f} ms",
            lat["median"] <= TARGET_LAT_MEDIAN_S)
        row(f"publish latency p95 <= {TARGET_LAT_P95_S * 1000:.0f} ms", f"{lat['p95'] * 1000:.0f} ms",
            lat["p95"] <= TARGET_LAT_P95_S)
    else:
        row("publish latency", "not measured", None)
    q = results.get("quality")
    if q:
        row("better event-F1 than YAMNet (same scenes)",
            f"{q['ours_event_f1_500ms']:.3f} vs {q['yamnet_event_f1_500ms']:.3f}",
            q["ours_event_f1_500ms"] > q["yamnet_event_f1_500ms"])
    else:
        row("better event-F1 than YAMNet (same scenes)", "not given (--quality)", None)


if __name__ == "__main__":
    raise SystemExit(main())
