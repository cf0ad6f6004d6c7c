"""Control from Home Assistant: commands from MQTT applied to the running listener.

Commands (:mod:`edge.publish.control`) arrive on paho's network thread, which only
puts them in a bounded, thread-safe queue (:meth:`RemoteControl.submit`). The
processing loop drains it between two reads of the ring (:meth:`RemoteControl.tick`,
called from :class:`edge.service.lifecycle.Lifecycle`, like a SIGHUP reload), so
detector state is only ever touched from the processing thread:

* ``listening`` -> :meth:`Listener.set_listening` (privacy: audio dropped before the ring);
* ``detect/<label>`` and ``sensitivity`` -> :meth:`Listener.reconfigure` with the
  configuration file's settings plus these (the SIGHUP path);
* ``learn_background`` -> a :class:`~edge.service.learning.BackgroundSession` fed from
  the listener's hop embeddings while it keeps listening; when it has enough, the
  file is written and put to use (``detector.home_background``);
* ``learn_seconds`` -> how long the next learning lasts;
* ``teach_name`` then ``teach`` -> the next seconds of the listener's hops (window
  embeddings and levels, never audio) are one example of that sound
  (:func:`edge.service.enrolment.example_from_hops`); after each example the sound
  is taught again from all of them (``edge enroll``'s calibration), written to the
  taught-sounds file and put to use at once (discovery adds its entities).

A bad command is logged in one line and ignored. Every change is saved to
:mod:`edge.service.runtime_settings` (it survives a restart and overrides
``config.yaml`` until changed again) and published, retained, on
``<base>/<device>/settings`` for the control entities.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from edge.core.events import Event
from edge.detect.settings import SENSITIVITIES
from edge.publish.control import (
    DETECT,
    LEARN,
    LEARN_SECONDS,
    LISTENING,
    SENSITIVITY,
    TEACH,
    TEACH_NAME,
    TEACH_SECONDS,
    Command,
    CommandError,
    parse_command,
)
from edge.publish.sinks import BaseSink
from edge.service.config import Config
from edge.service.learning import BackgroundSession
from edge.service.learning import default_path as default_background_path
from edge.service.runtime_settings import RuntimeSettings
from edge.service.runtime_settings import default_path as default_settings_path

log = logging.getLogger("edge.control")

#: Commands waiting at most; beyond, new ones are dropped (and logged once per burst): memory stays bounded.
QUEUE_MAX = 256
#: Commands applied per pass of the processing loop (the rest wait for the next pass, ~0.1 s).
PER_TICK = 32


class _LearningSink(BaseSink):
    """Onsets raised while learning go to the session (its meta data: what would be held back)."""

    def __init__(self, control: RemoteControl) -> None:
        self.control = control

    def event(self, ev: Event) -> None:
        if self.control.session is not None:
            self.control.session.note(ev)

    def level(self, dbfs: float, top: list[tuple[str, float]], t: float) -> None:
        self.control.teach_level(dbfs)  # right after the same hop's embedding (Listener._block)


class RemoteControl:
    """Home Assistant's settings for one listener.

    Args:
        cfg: the configuration as loaded from the file (before these settings).
        contract: the running model's contract (labels, embedding size).
        path: the settings file; default ``<state dir>/ha-settings.json``.
    """

    def __init__(self, cfg: Config, contract: Any, path: str | Path | None = None) -> None:
        self.base = cfg
        self.contract = contract
        self.labels: tuple[str, ...] = tuple(contract.labels)
        self.path = Path(path) if path is not None else default_settings_path()
        self.settings = RuntimeSettings.load(self.path, self.labels)
        bg = self.settings.home_background
        if bg is not None and not Path(bg).is_file():  # deleted to forget it: listen without, as before learning
            log.warning("%s: the background learnt from Home Assistant, %s, is gone; listening without it", self.path,
                        bg)
            self.settings.home_background = None
        self.sink = _LearningSink(self)
        self.listener: Any = None
        self.publishers: list[Any] = []
        self.session: BackgroundSession | None = None
        self.applied = 0  # commands applied
        self.rejected = 0  # commands ignored (bad payload, not applicable now)
        self._queue: queue.Queue[tuple[str, bytes]] = queue.Queue(QUEUE_MAX)
        self._overflow_logged = False
        self._learn_out: Path | None = None
        self._learn_step = -1  # last published tenth of the progress
        self._learning: dict[str, Any] = {"state": "idle", "progress": 0.0, "file": None, "windows": None,
                                          "finished": None, "error": None}
        # Teaching a sound from Home Assistant: the name, the hops of the example being listened to, and the
        # examples so far per name (embeddings only; kept in memory until a restart).
        self._teaching: dict[str, Any] = {"state": "idle", "name": None, "examples": 0, "threshold": None,
                                          "error": None}
        self._teach_hops: tuple[list[np.ndarray], list[float]] | None = None
        self._teach_want = 0
        self._teach_examples: dict[str, list[Any]] = {}
        if self.overrides():
            log.info("settings from Home Assistant in %s override config.yaml: %s", self.path,
                     ", ".join(self.overrides()))

    # -- set-up (before Listener.run) ----------------------------------------------------
    def overlay(self, cfg: Config) -> Config:
        """``cfg`` (as read from the file) with Home Assistant's settings on top."""
        return self.settings.overlay(cfg, self.labels)

    def overrides(self) -> list[str]:
        """The detector settings Home Assistant decides now instead of ``config.yaml``."""
        s = self.settings
        out = [f"detector.{k}" for k, v in (("sensitivity", s.sensitivity), ("home_background", s.home_background))
               if v is not None]
        if s.labels:
            out.append("detector.labels (" + ", ".join(f"{k} {'on' if v else 'off'}" for k, v in s.labels.items())
                       + ")")
        if not s.listening:
            out.append("listening off")
        return out

    def attach(self, listener: Any) -> None:
        """Take over ``listener``'s embedding hook and its MQTT publishers' commands; call before ``run``."""
        self.listener = listener
        self.publishers = [s for s in listener.sinks if callable(getattr(s, "enable_control", None))]
        for p in self.publishers:
            p.enable_control(self.submit, tuple(SENSITIVITIES))
        previous: Callable[[np.ndarray], None] | None = listener.on_embedding

        def on_embedding(emb: np.ndarray) -> None:
            if previous is not None:
                previous(emb)
            if self.session is not None:
                self.session.push(emb)
            if self._teach_hops is not None:
                self._teach_hops[0].append(np.asarray(emb, np.float32).copy())

        listener.on_embedding = on_embedding
        if not self.settings.listening:
            listener.set_listening(False)
        self.publish()

    # -- network thread ---------------------------------------------------------------------
    def submit(self, name: str, payload: bytes) -> None:
        """A command from MQTT (``name`` below ``<base>/<device>/set/``); returns at once, never raises."""
        try:
            self._queue.put_nowait((name, payload))
            self._overflow_logged = False
        except queue.Full:
            if not self._overflow_logged:
                self._overflow_logged = True
                log.warning("Home Assistant commands arrive faster than they are applied: %d waiting, dropping "
                            "new ones", QUEUE_MAX)

    # -- processing thread ------------------------------------------------------------------
    def tick(self) -> None:
        """Apply waiting commands and finish a learning session that has enough (processing thread)."""
        for _ in range(PER_TICK):
            try:
                name, payload = self._queue.get_nowait()
            except queue.Empty:
                break
            try:
                self.apply(parse_command(name, payload, self.labels, SENSITIVITIES))
            except CommandError as e:
                self.rejected += 1
                log.warning("Home Assistant command ignored: %s", e)
        if self._teach_hops is not None and len(self._teach_hops[1]) >= self._teach_want:
            self._finish_teaching()
        if self.session is not None:
            if self.session.done:
                self._finish_learning()
            elif int(self.session.progress * 10) != self._learn_step:
                self._learn_step = int(self.session.progress * 10)
                self._learning["progress"] = round(self.session.progress, 3)
                self.publish()

    def apply(self, cmd: Command) -> None:
        """Apply one parsed command (raises CommandError when it cannot be applied now)."""
        lis = self.listener
        s = self.settings
        if cmd.name == LISTENING:
            s.listening = bool(cmd.value)
            lis.set_listening(s.listening)
        elif cmd.name in (DETECT, SENSITIVITY):
            old_labels, old_sens = dict(s.labels), s.sensitivity
            if cmd.name == DETECT:
                assert cmd.label is not None
                s.labels[cmd.label] = bool(cmd.value)
            else:
                s.sensitivity = str(cmd.value)
            try:
                lis.reconfigure(self.overlay(self.base))
            except ValueError as e:  # ConfigError too; the running settings are kept
                s.labels, s.sensitivity = old_labels, old_sens
                raise CommandError(f"set/{cmd.name}: not applied ({e})") from None
            log.info("Home Assistant: %s", f"detect {cmd.label} {'on' if cmd.value else 'off'}"
                     if cmd.name == DETECT else f"sensitivity {cmd.value}")
        elif cmd.name == LEARN_SECONDS:
            assert isinstance(cmd.value, float)
            s.learn_seconds = cmd.value
        elif cmd.name == LEARN:
            self._start_learning(float(cmd.value) if cmd.value is not None else s.learn_seconds)
        elif cmd.name == TEACH_NAME:
            from edge.detect.taught import TaughtError, check_name

            try:
                self._teaching["name"] = check_name(str(cmd.value), self.labels)
            except TaughtError as e:
                raise CommandError(f"set/{TEACH_NAME}: {e}") from None
            self._teaching.update(examples=len(self._teach_examples.get(str(cmd.value), [])), error=None)
        elif cmd.name == TEACH:
            self._start_teaching(float(cmd.value) if cmd.value is not None else TEACH_SECONDS)
        self.applied += 1
        self._save()
        self.publish()

    def reloaded(self, raw: Config) -> None:
        """After a SIGHUP reload was applied (with :meth:`overlay`): ``raw`` is the new file's configuration."""
        self.base = raw
        if self.overrides():
            log.info("settings from Home Assistant still override config.yaml: %s (delete %s to go back)",
                     ", ".join(self.overrides()), self.path)
        self.publish()

    def close(self) -> None:
        """At shutdown: a learning session still running is dropped (nothing is written)."""
        if self.session is not None:
            log.warning("learning this room's background was interrupted after %.0f of %.0f s; nothing written",
                        self.session.hops * self.session.hop_s, self.session.seconds)
            self.session = None

    # -- learning ----------------------------------------------------------------------------
    def _start_learning(self, seconds: float) -> None:
        lis = self.listener
        if self.session is not None:
            raise CommandError(f"set/{LEARN}: already learning ({self.session.progress:.0%} done)")
        if self.contract.familiarity() is None:
            raise CommandError(f"set/{LEARN}: the model carries no prototypes, so a home background cannot be used")
        hop_s = lis.hop_blocks * self.contract.block_seconds
        self.session = BackgroundSession(self.contract, seconds, hop_s)
        self._learn_out = Path(self.settings.home_background or self.base.detector.home_background
                               or default_background_path())
        self._learn_step = 0
        self._learning.update(state="learning", progress=0.0, seconds=seconds, error=None)
        log.info("learning this room's background for %g s into %s while listening (window embeddings, never "
                 "audio)", seconds, self._learn_out)

    def _finish_learning(self) -> None:
        session, out = self.session, self._learn_out
        assert session is not None and out is not None
        self.session = None
        bank = session.result()
        try:
            bank.save(out)
        except OSError as e:
            self._learning.update(state="idle", error=f"cannot write {out}: {e.strerror or e}")
            log.error("learning this room's background: cannot write %s (%s); the old one stays in use", out,
                      e.strerror or e)
            self.publish()
            return
        self.settings.home_background = str(out)
        try:
            self.listener.reconfigure(self.overlay(self.base))
            error = None
        except ValueError as e:  # e.g. unreadable right after writing: keep listening as before
            error = str(e)
            log.error("learnt background %s not used: %s", out, e)
        held, kept = session.held_and_kept()
        self._learning.update(state="idle", progress=1.0, file=str(out), windows=int(bank.vectors.shape[0]),
                              finished=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                              error=error)
        log.info("learnt %d windows (%.0f s) of this room's background into %s, now in use; onsets raised meanwhile, "
                 "held back from now on when they sound like this: %s%s", bank.vectors.shape[0], bank.seconds, out,
                 held, f"; never held back (safety sounds): {kept}" if kept else "")
        self._save()
        self.publish()

    # -- teaching a sound ----------------------------------------------------------------------
    def teach_level(self, dbfs: float) -> None:
        """The level of the hop whose embedding was just pushed (processing thread)."""
        if self._teach_hops is not None:
            embs, levels = self._teach_hops
            if len(levels) < len(embs):
                levels.append(float(dbfs))

    def _start_teaching(self, seconds: float) -> None:
        name = self._teaching["name"]
        if name is None:
            raise CommandError(f"set/{TEACH}: no sound to teach: set its name first (set/{TEACH_NAME})")
        if self._teach_hops is not None:
            raise CommandError(f"set/{TEACH}: already listening for an example of {name}")
        hop_s = self.listener.hop_blocks * self.contract.block_seconds
        self._teach_want = max(2, int(round(seconds / hop_s)))
        self._teach_hops = ([], [])
        self._teaching.update(state="listening", error=None, seconds=seconds)
        log.info("teaching %s: listening %g s for one example (window embeddings, never audio)", name, seconds)

    def _finish_teaching(self) -> None:
        from edge.core.errors import EdgeError
        from edge.detect.home_background import fingerprint
        from edge.detect.taught import TaughtSounds
        from edge.detect.taught import default_path as default_taught_path
        from edge.service.enrolment import add_to_file, enrol, example_from_hops
        from edge.service.listener import taught_path

        assert self._teach_hops is not None
        embs, levels = self._teach_hops
        self._teach_hops = None
        name = str(self._teaching["name"])
        lis, c = self.listener, self.contract
        hop_s = lis.hop_blocks * c.block_seconds
        n = min(len(embs), len(levels))
        examples = self._teach_examples.setdefault(name, [])
        path = taught_path(self.base) or default_taught_path()
        added = False
        try:
            if n == 0:
                raise EdgeError(f"example {len(examples) + 1} of {name}: nothing was heard (listening off?)")
            examples.append(example_from_hops(np.stack(embs[:n]), np.array(levels[:n]),
                                              -(-c.window_blocks // lis.hop_blocks), hop_s,
                                              f"example {len(examples) + 1} of {name}"))
            added = True
            fp = fingerprint(c)
            before = TaughtSounds.load(path) if path.is_file() else None
            result = enrol(name, examples, lis.classifier, k=2, taught=before)
            add_to_file(before, result, fp).save(path)
            lis.reconfigure(self.overlay(self.base))  # loads the file: the sound is detected from now on
        except (EdgeError, OSError, ValueError) as e:
            msg = str(e) if not isinstance(e, OSError) else f"cannot write {path}: {e.strerror or e}"
            if added:
                examples.pop()  # the sound could not be taught with it: it does not count
            self._teaching.update(state="idle", error=msg, examples=len(examples))
            log.warning("teaching %s: %s", name, msg)
            self.publish()
            return
        self._teaching.update(state="idle", examples=len(examples), threshold=round(result.sound.threshold, 3),
                              error="; ".join(result.warnings) or None)
        log.info("taught %s from %d example(s) (threshold %.3f) into %s, now in use", name, len(examples),
                 result.sound.threshold, path)
        self.publish()

    # -- output ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The settings JSON the control entities show (what is in effect now)."""
        lis = self.listener
        enabled = set(lis.detector.cfg.labels) if lis is not None else set(self.labels)
        return {
            "listening": bool(lis.listening) if lis is not None else self.settings.listening,
            "sensitivity": lis.cfg.detector.sensitivity if lis is not None else self.base.detector.sensitivity,
            "labels": {lab: lab in enabled for lab in self.labels},
            "learn_seconds": self.settings.learn_seconds,
            "learning": dict(self._learning),
            "teaching": dict(self._teaching),
            "from_home_assistant": self.overrides(),
        }

    def publish(self) -> None:
        st = self.state()
        for p in self.publishers:
            p.settings(st)

    def _save(self) -> None:
        try:
            self.settings.save(self.path)
        except OSError as e:  # a read-only or full disk: the setting holds until the next restart
            log.error("cannot save the settings from Home Assistant to %s (%s); they apply until a restart",
                      self.path, e.strerror or e)
