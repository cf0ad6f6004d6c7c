"""The one processing path: source -> ring -> resample -> log-mel -> blocks -> classifier -> event chain -> sinks.

``edge run`` (microphone or file), ``edge detect FILE`` and evaluation tools all
use :class:`Listener`. Time is counted in samples at the model rate, so an
event's onset/offset in seconds from stream start is exact; audio lost to a
ring overrun is added as a gap so later events stay on the wall clock. Block
timing is the contract's (:meth:`~edge.model.contract.ModelContract.block_start_s`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.capture.resample import make_resampler
from edge.capture.sources import FileSource, MicSource, Source
from edge.capture.supervisor import MicSupervisor, SignalGuard, mic_state
from edge.core.events import Event
from edge.detect import settings as detector_settings
from edge.detect.alarm_pattern import AlarmGate
from edge.detect.chain import EventChain
from edge.detect.detector import Detector
from edge.detect.familiarity import FamiliarityGate
from edge.detect.home_background import BackgroundError, HomeBackground, OtherModelError
from edge.detect.settings import RESTART_DETECTOR_KEYS, DetectorSettings
from edge.detect.taught import TaughtError, TaughtSounds
from edge.features.frontend import LogMelStream
from edge.features.level import level_dbfs
from edge.model.classifier import Classifier
from edge.model.contract import ContractError
from edge.publish.clips import make_clip_recorder
from edge.publish.sinks import CollectSink, Sink
from edge.service.config import Config, ConfigError, load_config
from edge.service.health import Health, trim_heap

log = logging.getLogger("edge.pipeline")

_EMPTY = np.zeros(0, dtype=np.float32)
TICK_S = 0.5  # longest sleep of the processing loop without audio (s); see Listener.tick_s


def hop_blocks(cfg: Config, block_s: float) -> int:
    """Blocks per score hop; ``model.hop_s`` must be a whole number of model blocks."""
    hop = cfg.model.hop_s
    if hop is None:
        return 1
    ratio = hop / block_s
    n = round(ratio)
    if n < 1 or abs(ratio - n) > 1e-6:
        raise ConfigError(
            f"{cfg.source_file}: model.hop_s: expected a multiple of the model's block length ({block_s:g} s), "
            f"got {hop:g}"
        )
    return int(n)


def check_labels(cfg: Config, labels: Sequence[str]) -> None:
    """Every label named in the detector section must exist in the model."""
    known = ", ".join(labels)
    for i, lab in enumerate(cfg.detector.labels or []):
        if lab not in labels:
            raise ConfigError(f"{cfg.source_file}: detector.labels[{i}]: unknown label {lab!r} (model labels: {known})")
    for key in ("thresholds", "releases", "min_durations"):
        for lab in getattr(cfg.detector, key):
            if lab not in labels:
                raise ConfigError(f"{cfg.source_file}: detector.{key}.{lab}: unknown label (model labels: {known})")


#: capture callback (s) when neither ``audio.block_s`` nor the model's block is given
DEFAULT_CAPTURE_BLOCK_S = 0.05


def capture_block_s(cfg: Config, model_block_s: float | None = None) -> float:
    """Seconds of audio per capture callback: ``audio.block_s``, else the model's block (one callback, one
    wake-up of the processing thread, per block), else :data:`DEFAULT_CAPTURE_BLOCK_S`."""
    if cfg.audio.block_s is not None:
        return cfg.audio.block_s
    return model_block_s if model_block_s else DEFAULT_CAPTURE_BLOCK_S


def make_source(cfg: Config, model_rate: int, model_block_s: float | None = None) -> Source:
    """The source named by ``audio.source``: ``mic`` or an audio file path.

    ``model_block_s``: the model's block (s, :attr:`~edge.model.contract.ModelContract.block_seconds`),
    the capture callback's size when ``audio.block_s`` is null.
    """
    a = cfg.audio
    block_s = capture_block_s(cfg, model_block_s)
    if a.source == "mic":
        return MicSource(a.device, a.sample_rate or model_rate, a.channel, block_s, a.buffer_s)
    return FileSource(a.source, a.channel, a.realtime, block_s, a.buffer_s)


def load_home(cfg: Config, contract: Any) -> HomeBackground | None:
    """The home background named by ``detector.home_background`` (ConfigError if unusable)."""
    path = cfg.detector.home_background
    if path is None:
        return None
    where = f"{cfg.source_file}: detector.home_background"
    if contract.familiarity() is None:
        raise ConfigError(f"{where}: the model carries no prototypes to compare it with (set it to null)")
    try:
        return HomeBackground.load(path, contract)
    except OtherModelError as e:
        # After a model upgrade: keep listening (smoke alarms matter more than a few false
        # alarms), say so, and let `edge doctor` fail until it is learnt again.
        log.warning("%s: %s; listening without it", where, e)
        return None
    except BackgroundError as e:
        raise ConfigError(f"{where}: {e}") from None


def taught_path(cfg: Config) -> Path | None:
    """The taught-sounds file of ``cfg``: ``detector.taught_sounds``, else the state directory's if it exists."""
    from edge.detect.taught import default_path

    if cfg.detector.taught_sounds is not None:
        return Path(cfg.detector.taught_sounds)
    p = default_path()
    return p if p.is_file() else None


def open_taught(path: Path, contract: Any) -> TaughtSounds:
    """The taught-sounds file at ``path``, checked against the model of ``contract`` (``edge run`` and
    ``edge doctor`` both open it here). Raises :class:`~edge.detect.taught.OtherModelError` (taught with
    another model) or :class:`~edge.detect.taught.TaughtError` (unusable)."""
    from edge.detect.home_background import fingerprint

    sounds = TaughtSounds.load(path, fingerprint(contract))
    clash = [n for n in sounds.names if n in contract.labels]
    if clash:
        raise TaughtError(f"{path}: taught sound {clash[0]!r} has the name of a model label")
    dims = {s.prototypes.shape[1] for s in sounds.sounds.values()}
    if dims and dims != {int(contract.embedding_dim)}:
        raise TaughtError(f"{path}: prototypes of size {sorted(dims)}, the model's embedding has "
                          f"{contract.embedding_dim}")
    return sounds


def load_taught(cfg: Config, contract: Any) -> TaughtSounds | None:
    """The sounds taught with ``edge enroll`` (ConfigError if the file is unusable; None, with one warning
    line, when they were taught with another model: the listener keeps listening without them)."""
    from edge.detect.taught import OtherModelError as OtherTaughtModel

    path = taught_path(cfg)
    if path is None:
        return None
    where = f"{cfg.source_file}: detector.taught_sounds"
    try:
        return open_taught(path, contract)
    except OtherTaughtModel as e:
        log.warning("%s: %s; listening without them", where, e)
        return None
    except TaughtError as e:
        raise ConfigError(f"{where}: {e}") from None


def check_setup(cfg: Config, contract: Any) -> tuple[int, DetectorSettings, HomeBackground | None]:
    """Everything the listener checks of ``cfg`` against a model before it listens: the hop, the detector
    settings (labels, the model's tuned values), the home background. ``edge doctor`` runs the same, so it
    fails for every setup ``edge run`` refuses. Returns ``(hop_blocks, settings, home)``."""
    return hop_blocks(cfg, contract.block_seconds), detector_settings_for(cfg, contract), load_home(cfg, contract)


@dataclass
class Stats:
    """Figures of one run. Times in seconds."""

    audio_s: float = 0.0
    busy_s: float = 0.0
    blocks: int = 0
    hops: int = 0
    events: int = 0


ScoreHook = Callable[[float, float, np.ndarray], None]


def detector_settings_for(cfg: Config, contract: Any) -> DetectorSettings:
    """The resolved detector settings of ``cfg`` for a model: a ConfigError naming the file if they clash."""
    check_labels(cfg, contract.labels)
    try:
        return detector_settings.for_model(cfg.detector, contract)
    except ContractError:
        raise  # the model's own tuned values are wrong: the message names the model file
    except ValueError as e:  # settings valid alone but not with this model's defaults
        raise ConfigError(f"{cfg.source_file}: {e}") from None


class Listener:
    """Runs a source through the classifier and detector into sinks until the source ends or ``stop`` is set.

    Args:
        cfg: validated configuration.
        classifier: an open :class:`Classifier` (reused across runs; reset here).
        sinks: receive events, levels and status.
        source: a started-on-``run`` source (:class:`~edge.capture.sources.MicSource` or ``FileSource``).
        on_scores: optional ``(block_start_s, block_end_s, scores)`` hook called every hop
            once the classifier is ready (evaluation tools record score curves with it).
        on_embedding: optional hook called with the hop's window embedding ``(embedding_dim,)``
            right after ``on_scores``.
    """

    def __init__(self, cfg: Config, classifier: Classifier, sinks: Sequence[Sink], source: Source,
                 on_scores: ScoreHook | None = None,
                 on_embedding: Callable[[np.ndarray], None] | None = None) -> None:
        c = classifier.contract
        self.cfg = cfg
        self.classifier = classifier
        self.contract = c
        self.sinks = list(sinks)
        self.source = source
        self.on_scores = on_scores
        self.on_embedding = on_embedding
        self.hop_blocks, settings, home = check_setup(cfg, c)  # what `edge doctor` checks too
        # Detector -> familiarity gate -> alarm-pattern gate, as the tuner replays them.
        self.taught = load_taught(cfg, c)
        self.chain = EventChain(c, settings, home, taught=self.taught)
        self._t_frames = 0.0  # seconds from stream start up to the end of the newest log-mel frame
        self.rate = c.frontend.sample_rate
        self.mel = LogMelStream(c.frontend)
        self.resampler = make_resampler(source.sample_rate, self.rate)
        self.stats = Stats()
        self._frames = np.zeros((0, c.frontend.n_mels), dtype=np.float32)
        self._lvl_rest = np.zeros(0, dtype=np.float32)
        self._block_ms: deque[float] = deque()  # mean square per block, oldest trimmed each hop
        self._lvl_blocks = 0  # blocks whose mean square is known
        self._gap_s = 0.0  # audio lost to overruns, in seconds
        self._expected = 0  # next ring index the consumer expects
        self._t_start = 0.0
        self._started = False
        self._stop = threading.Event()
        classifier.reset()
        # Always-on: health counters, NaN/silence guard, microphone supervision, opt-in clips.
        self.health_state = Health(model_version=c.model_version)
        self.guard = SignalGuard(source.sample_rate, cfg.health.silent_after_s)
        self.supervisor = MicSupervisor(source, cfg.health, self.guard) if isinstance(source, MicSource) else None
        self.mic = "ok"
        # called every loop pass (edge.service.lifecycle: watchdog, reload)
        self.on_tick: Callable[[], None] | None = None
        # Longest sleep of the loop (s) while no whole block arrives (microphone lost, listening off):
        # on_tick, the microphone state and status still run this often. With audio, the loop wakes
        # once per block. edge.service.lifecycle lowers it under a short systemd watchdog.
        self.tick_s = TICK_S
        self.clips = make_clip_recorder(cfg, self.rate)
        # Privacy switch (set_listening, from Home Assistant): off = the source's samples are dropped
        # before the ring, nothing is inferred or sent.
        self.listening = True
        self._muted_at = 0.0
        # Sinks that want a fresh status now (the MQTT publisher at a connect): answered in the loop.
        self._status_wanted = [e for e in (getattr(s, "status_wanted", None) for s in self.sinks)
                               if isinstance(e, threading.Event)]

    # The chain's parts, by the names the listener always had.
    @property
    def detector(self) -> Detector:
        return self.chain.detector

    @property
    def familiar(self) -> FamiliarityGate | None:
        return self.chain.familiar

    @property
    def alarm_gate(self) -> AlarmGate | None:
        return self.chain.alarm_gate

    # -- control -----------------------------------------------------------------------
    def stop(self) -> None:
        """Ask :meth:`run` to finish (thread-safe; e.g. from a signal handler)."""
        self._stop.set()  # the loop only polls this event (is_set takes no lock)
        # Wake the loop out of its wait for the next block now. From another thread: stop() may run
        # in a signal handler on the processing thread itself, at a moment when that thread holds the
        # ring event's lock (inside wait_for), and taking it here would deadlock.
        threading.Thread(target=self.source.ring.wake, name="edge-stop", daemon=True).start()

    def health(self) -> dict[str, Any]:
        """:meth:`edge.service.health.Health.snapshot` of this run, plus source kind/rate and the active labels."""
        h = self.health_state
        h.processing_s, h.audio_s = self.stats.busy_s, self.stats.audio_s
        h.dropped_samples = self.source.ring.lost
        h.input_overflows = self.source.overflows
        h.nonfinite_samples = self.guard.nonfinite
        h.mic = self.mic
        h.mic_reopens = self.supervisor.reopens if self.supervisor is not None else 0
        h.onsets_held_back = self.chain.held_back
        for sink in self.sinks:
            d = sink.health()
            if d:  # the MQTT publisher: outbox depth and drops
                h.outbox_depth = int(d.get("outbox_depth") or 0)  # None: the outbox file is unreadable now
                h.outbox_dropped = int(d.get("outbox_dropped") or 0)
        out = h.snapshot()
        if not self._started:
            out["uptime_s"] = 0.0
        out.update(source=self.source.kind, source_rate=self.source.sample_rate,
                   active=self.chain.active_labels(), listening=self.listening, taught=list(self.chain.taught_names))
        return out

    def set_listening(self, on: bool) -> None:
        """Listening on/off (privacy; call on the processing thread, e.g. from ``on_tick``).

        Off: the source keeps running (the microphone stays supervised) but its samples are
        dropped before the ring (:attr:`~edge.capture.ring.RingBuffer.muted`); what the ring
        already held is discarded unheard; open events end now. On again: the time it was off
        counts as a gap, so later events stay on the wall clock.
        """
        if on == self.listening:
            return
        ring = self.source.ring
        if not on:
            ring.muted = True
            self._muted_at = time.monotonic()
            while ring.read(max(1, int(self.source.sample_rate)))[1].size:
                pass  # unheard; counted as a gap by the next feed (its start index jumps ahead)
            self._emit(self.chain.flush(self._t_frames))
        else:
            if self._started:
                off_s = time.monotonic() - max(self._muted_at, self._t_start)
                self.source.gaps.append((ring.written, off_s))
            ring.muted = False
        self.listening = on
        log.info("listening %s", "on" if on else "off (audio is dropped before processing)")
        if self._started:
            self._status()

    def reconfigure(self, new: Config) -> None:
        """Apply the detector section of a reloaded configuration (SIGHUP) between two reads.

        Except :data:`RESTART_DETECTOR_KEYS` (the alarm gate), which need a restart.

        Raises :class:`ConfigError` (labels unknown to the model) and changes nothing then.
        Offsets of events whose label is no longer enabled are emitted now.
        """
        # The alarm gate holds onsets it has not confirmed yet; swapping it mid-event could
        # drop an onset or an offset, so its two settings keep their running values.
        running = self.cfg.detector
        det = dataclasses.replace(new.detector, **{k: getattr(running, k) for k in RESTART_DETECTOR_KEYS})
        new = dataclasses.replace(new, detector=det)
        settings = detector_settings_for(new, self.contract)
        home = self._load_home(new)  # re-read: it may have been learnt again at the same path
        taught = load_taught(new, self.contract)  # re-read: sounds may have been taught or removed
        self._emit(self.chain.reconfigure(settings, home, self._t_frames, taught))
        self.taught = taught
        self._announce_taught()
        self.cfg = dataclasses.replace(self.cfg, detector=det)

    def _announce_taught(self) -> None:
        """Tell the sinks which taught sounds there are (Home Assistant discovery adds and removes them)."""
        names = self.chain.taught_names
        removed = tuple(self.taught.removed) if self.taught is not None else ()
        for s in self.sinks:
            hook = getattr(s, "taught", None)  # optional: sinks that only implement the Sink protocol lack it
            if hook is not None:
                hook(names, removed)

    def _load_home(self, cfg: Config) -> HomeBackground | None:
        return load_home(cfg, self.contract)

    def _check_mic(self) -> None:
        """Follow the microphone state; a change is logged and reported at once."""
        state = mic_state(self.supervisor, self.guard)
        if state == self.mic:
            return
        old, self.mic = self.mic, state
        if state == "silent":
            log.warning("microphone silent: only zeros/NaN for %g s", self.cfg.health.silent_after_s)
        elif state == "ok" and old == "silent":
            log.info("microphone: sound again")
        if state == "lost":
            self._emit(self.chain.flush(self._t_frames))  # nothing can be heard now: end what was sounding
        self._status()

    # -- main loop ---------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None) -> Stats:
        """Process until the source is exhausted or ``stop``/:meth:`stop` is set; then flush.

        Every open event is ended before this returns, and every sink is closed.
        """
        stop_ev = stop or self._stop
        ring = self.source.ring
        status_every = self.cfg.mqtt.status_interval_s
        for s in self.sinks:
            s.start()
        self._announce_taught()
        self._t_start = time.monotonic()
        self.health_state.started_mono = self._t_start
        self._started = True
        try:
            self.source.start()
            self.detector.start_wall = self.source.start_wall
            if self.supervisor is not None:
                self.supervisor.start()
            next_status = time.monotonic() + status_every
            max_read = max(1, int(self.source.sample_rate))  # at most 1 s per step keeps latency low
            # A block cannot be scored before all its samples are in, so reading
            # less than a block only multiplies per-call overhead; latency is unchanged.
            min_read = max(1, int(self.contract.block_samples * self.source.sample_rate
                                  / self.contract.frontend.sample_rate))
            while not (stop_ev.is_set() or self._stop.is_set()):
                have = ring.available
                if have < min_read and not ring.closed:
                    # Sleep until a write completes the block (the producer wakes us then, not on
                    # every write), stop(), the next status, or tick_s: no polling.
                    ring.wait_for(min_read, max(0.0, min(self.tick_s, next_status - time.monotonic())))
                    have = ring.available
                if have >= min_read or ring.closed or (stop_ev.is_set() or self._stop.is_set()):
                    start, x = ring.read(max_read)
                else:
                    x = _EMPTY
                if x.size:
                    if self.listening:
                        self.feed(start, x)
                    # else: written as Listening went off; dropped unheard (a gap, like the rest)
                elif ring.closed:
                    break
                self._check_mic()
                if self.on_tick is not None:
                    self.on_tick()
                now = time.monotonic()
                if now >= next_status or any(e.is_set() for e in self._status_wanted):
                    next_status = now + status_every
                    self._status()
            err = self.source.error
            if err is not None:
                raise err
            if not ring.closed:
                # Stopped (SIGTERM): stop capture, then process what was already captured.
                if self.supervisor is not None:
                    self.supervisor.stop()
                self.source.stop()
                # In reads of at most max_read, like the loop: one read of a full ring (seconds
                # of audio) would be the largest allocation of the whole run.
                while True:
                    start, x = ring.read(max_read)
                    if not x.size:
                        break
                    self.feed(start, x)
            # End of stream: drain the resampler's tail too.
            t0 = time.perf_counter()
            self._process(self.resampler.flush())
            self.stats.busy_s += time.perf_counter() - t0
        finally:
            if self.supervisor is not None:
                self.supervisor.stop()
            self.source.stop()
            self._emit(self.chain.flush(self._t_frames))
            self._status()
            for s in self.sinks:
                s.close()
        return self.stats

    def feed(self, start_index: int, x: np.ndarray) -> None:
        """Process source-rate samples whose first sample has ring index ``start_index``."""
        t0 = time.perf_counter()
        gaps = self.source.gaps  # microphone outages: (ring index, seconds missing)
        while gaps and gaps[0][0] < start_index + x.shape[0]:
            self._gap_s += gaps.popleft()[1]
        if start_index > self._expected:
            self._gap_s += (start_index - self._expected) / self.source.sample_rate
        self._expected = start_index + x.shape[0]
        x = self.guard.clean(x)  # NaN/inf never reach the model
        self._process(self.resampler.push(x))
        self.stats.busy_s += time.perf_counter() - t0

    # -- signal path -------------------------------------------------------------------
    def _process(self, y: np.ndarray) -> None:
        if y.size == 0:
            return
        c = self.contract
        self.stats.audio_s += y.shape[0] / self.rate
        if self.clips is not None:
            self.clips.feed(y)
        self._levels(y)
        new = self.mel.push(y)
        if new.shape[0]:
            self._t_frames = c.frames_end_s(self.mel.frames_emitted) + self._gap_s
            self.chain.push_frames(new, self._t_frames)
            self._frames = np.concatenate((self._frames, new)) if self._frames.shape[0] else new
        bf = c.block_frames
        n_blocks = self._frames.shape[0] // bf
        for i in range(n_blocks):
            self._block(self._frames[i * bf : (i + 1) * bf])
        if n_blocks:
            self._frames = self._frames[n_blocks * bf :].copy()

    def _levels(self, y: np.ndarray) -> None:
        """Mean square of each block's own (non-overlapping) ``block_samples`` of audio."""
        bs = self.contract.block_samples
        buf = np.concatenate((self._lvl_rest, y)) if self._lvl_rest.size else y
        m = buf.shape[0] // bs
        if m:
            seg = buf[: m * bs].reshape(m, bs)
            # float64 accumulation without a float64 copy of the audio
            self._block_ms.extend((np.einsum("ij,ij->i", seg, seg, dtype=np.float64) / bs).tolist())
            self._lvl_blocks += m
        self._lvl_rest = buf[m * bs :].copy()

    def _block(self, block: np.ndarray) -> None:
        c = self.contract
        b = self.stats.blocks
        scores, emb = self.classifier.push_block(block)
        self.health_state.note_inference()
        self.stats.blocks = b + 1
        if not self.classifier.ready or (b + 1) % self.hop_blocks:
            return
        self.stats.hops += 1
        start = c.block_start_s(b) + self._gap_s
        end = c.block_end_s(b) + self._gap_s
        # Mean square over the hop's own blocks. Levels run ahead of the mel frames (a block's
        # samples arrive before its last frame completes), so index them by block number.
        first_known = self._lvl_blocks - len(self._block_ms)
        while self._block_ms and first_known < b + 1 - self.hop_blocks:
            self._block_ms.popleft()
            first_known += 1
        lo = max(b + 1 - self.hop_blocks - first_known, 0)
        hi = min(b + 1 - first_known, len(self._block_ms))
        ms = sum(self._block_ms[i] for i in range(lo, hi)) / (hi - lo) if hi > lo else 0.0
        dbfs = level_dbfs(ms)
        if self.on_scores is not None:
            self.on_scores(start, end, scores)
        if self.on_embedding is not None:
            self.on_embedding(emb)
        self._emit(self.chain.push_hop(scores, emb, start, end, dbfs, now=self._t_frames))
        order = np.argsort(scores)[::-1][:3]
        top = [(c.labels[i], round(float(scores[i]), 4)) for i in order]
        ts = self.chain.last_taught_scores
        if ts.size and self.chain.taught is not None:
            # A taught sound's score is a similarity (unrelated sounds score 0.5-0.8 too): it joins the top 3
            # only while at or above its threshold.
            thr = self.chain.taught.thresholds
            heard = [(n, round(float(v), 4)) for n, v in zip(self.chain.taught_names, ts, strict=True) if v >= thr[n]]
            if heard:
                top = sorted(top + heard, key=lambda t: -t[1])[:3]
        for s in self.sinks:
            s.level(dbfs, top, end)

    def _emit(self, events: list[Event]) -> None:
        """Events that passed the chain: counted, clipped (opt-in) and handed to every sink."""
        for ev in events:
            if ev.state == "off":
                self.stats.events += 1
            else:
                self.health_state.note_event(ev.label, ev.onset_time)
                if self.clips is not None:
                    self.clips.trigger(dataclasses.replace(ev, onset=ev.onset - self._gap_s))
            for s in self.sinks:
                s.event(ev)

    def _status(self) -> None:
        trim_heap()
        h = self.health()
        for s in self.sinks:
            s.status(h)


def load_classifier(cfg: Config, model: str | Path | None = None) -> Classifier:
    """Open the model named by ``model``, else ``model.path``, else the bundled model."""
    from edge.core.paths import bundled_model

    path = model or cfg.model.path or bundled_model()
    clf = Classifier(path, threads=cfg.model.threads)
    detector_settings.check_model_detector(clf.contract)  # the model's tuned values, before anything runs
    return clf


def detect_file(path: str | Path, cfg: Config | str | Path | None = None,
                model: Classifier | str | Path | None = None, *, sinks: Sequence[Sink] = (),
                on_scores: ScoreHook | None = None,
                on_embedding: Callable[[np.ndarray], None] | None = None) -> list[Event]:
    """Run one audio file through the listener as fast as possible.

    Args:
        path: audio file (WAV; FLAC etc. with soundfile).
        cfg: a :class:`Config`, a config file path, or None for defaults.
        model: an already-open :class:`Classifier` (cheapest for many files), a model path,
            or None for ``cfg.model.path`` / the bundled model.
        sinks: extra sinks that also receive everything.
        on_scores: per-hop score hook, see :class:`Listener`.
        on_embedding: per-hop window-embedding hook, called right after ``on_scores``.

    Returns one completed event per detected sound (the ``state == "off"`` events:
    onset, offset, peak and mean score), in the order they ended. Times are seconds
    from the start of the file.
    """
    from edge.capture.sources import FileSource

    if not isinstance(cfg, Config):
        cfg = load_config(cfg)
    clf = model if isinstance(model, Classifier) else load_classifier(cfg, model)
    a = cfg.audio
    source = FileSource(path, channel=a.channel, realtime=False, block_s=a.block_s or DEFAULT_CAPTURE_BLOCK_S,
                        buffer_s=a.buffer_s)
    collect = CollectSink()
    Listener(cfg, clf, [collect, *sinks], source, on_scores=on_scores, on_embedding=on_embedding).run()
    return [e for e in collect.events if e.state == "off"]
