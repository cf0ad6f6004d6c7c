"""``edge doctor``: check the model, the microphone and the MQTT broker, one line each.

Every check prints ``PASS``, ``FAIL`` or ``SKIP`` then what it found::

    PASS  model: models/homesound-int8.onnx (homesound-1.0): 12 labels, 16000 Hz, ...
    PASS  config: config.yaml: as `edge run` checks it with this model: 12 of 12 labels on, a score every 0.24 s
    PASS  microphone: 'pulse' at 16000 Hz, 1 ch: level -43.2 dBFS (peak -30.1 dBFS) over 1.0 s
    FAIL  broker: connection refused: not authorised (check mqtt.username/password)
    PASS  alerts.earcon: 'pulse' opens and plays (20 ms of silence in 4 ms)

Exit status 0 when no enabled check failed, 1 otherwise (2 for a configuration
error, like every ``edge`` command). Nothing is published: the broker check
only connects (with its own client id, so a running listener is not kicked off)
and disconnects. Heavy modules are imported inside the checks so ``edge --help``
stays fast.

The ``config`` check runs what ``edge run`` checks before it listens
(:func:`edge.service.listener.check_setup`: the hop, labels and detector
settings against the model's own, the home background; the clips folder; the
outbox path), so doctor fails for every setup ``edge run`` would refuse. An
audio *file* named by ``audio.source`` is not checked (``edge run --source``
and ``edge detect`` name theirs on the command line).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import Any

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
FIRST_AUDIO_TIMEOUT_S = 5.0   # a sound server may take ~2 s to deliver the first block
CONNECT_TIMEOUT_S = 5.0


def register(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check the microphone, the model and the MQTT broker",
                       description="Check the microphone (opens it, measures the level), the model (loads it, "
                                   "runs it once on silence, prints its contract) and the MQTT broker (connects "
                                   "with the configured credentials/TLS). One PASS/FAIL/SKIP line per check; "
                                   "exit status 0 only if no check failed.")
    from edge.cli.common import add_config_and_model

    add_config_and_model(p)
    p.add_argument("--listen", metavar="SECONDS", type=float, default=1.0,
                   help="seconds of microphone audio to measure (default 1)")
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    from edge.service.config import load_config

    overrides: dict[str, Any] = {"model.path": args.model} if args.model else {}
    cfg = load_config(args.config, overrides)  # a bad file: one line, exit 2 (edge.cli.app)
    model_rate: int | None = None
    results: list[tuple[str, str, str]] = []

    status, msg, details, model_rate = check_model(cfg)
    results.append((status, "model", msg))
    _print(status, "model", msg, details)
    model_ok = status == PASS
    for name, check in (("config", lambda: check_config(cfg) if model_ok else (SKIP, "needs a model that loads")),
                        ("microphone", lambda: check_microphone(cfg, model_rate, args.listen)),
                        ("broker", lambda: check_broker(cfg))):
        status, msg = check()
        results.append((status, name, msg))
        _print(status, name, msg, [])
    for status, name, msg in check_alerts(cfg):
        results.append((status, name, msg))
        _print(status, name, msg, [])
    return 0 if all(r[0] != FAIL for r in results) else 1


def _print(status: str, name: str, msg: str, details: list[str]) -> None:
    print(f"{status}  {name}: {msg}", flush=True)
    for line in details:
        print(f"      {line}", flush=True)


def check_model(cfg: Any) -> tuple[str, str, list[str], int | None]:
    """Load the model, run it once on a window of silence; ``(status, message, contract lines, sample rate)``."""
    import numpy as np

    from edge.features.frontend import LogMelStream
    from edge.model.contract import ContractError
    from edge.service.listener import load_classifier

    try:
        clf = load_classifier(cfg)
    except ContractError as e:
        return FAIL, str(e), [], None
    c = clf.contract
    p = c.frontend
    mel = LogMelStream(p)
    t0 = time.perf_counter()
    frames = mel.push(np.zeros(int(round((c.window_seconds + c.block_seconds) * p.sample_rate)), np.float32))
    scores = None
    for b in range(frames.shape[0] // c.block_frames):
        scores, _ = clf.push_block(frames[b * c.block_frames : (b + 1) * c.block_frames])
    ms = 1000.0 * (time.perf_counter() - t0)
    if scores is None or not clf.ready:
        return FAIL, f"{clf.path}: one window of silence gave no scores", [], p.sample_rate
    if scores.shape != (len(c.labels),) or not np.all(np.isfinite(scores)):
        return FAIL, f"{clf.path}: scores of shape {scores.shape} or not finite on silence", [], p.sample_rate
    top = int(np.argmax(scores))
    labels = ", ".join(c.labels)
    details = [
        f"labels ({len(c.labels)}): {labels}",
        f"front end: {p.sample_rate} Hz, window {p.win_length} / hop {p.hop_length} samples, {p.n_mels} mels "
        f"({p.fmin:g}-{p.fmax:g} Hz)",
        f"blocks: {c.block_frames} frames ({c.block_seconds:.3f} s), window {c.window_blocks} blocks "
        f"({c.window_seconds:.3f} s)",
        f"license: {c.license}; training data: {c.training_data or 'unspecified'}",
    ]
    if c.detector:  # the tuned settings the listener uses where config.yaml says null
        tuned = ", ".join(f"{k} {v}" for k, v in c.detector.items() if k not in ("thresholds", "releases"))
        thr = ", ".join(f"{k} {v:g}" for k, v in dict(c.detector.get("thresholds") or {}).items())
        details.append(f"tuned detector defaults: {tuned}; thresholds: {thr or 'the clip thresholds'}; "
                       f"per-label releases: {c.detector.get('releases') or 'none'}")
    details.append(expected_false_alarms(cfg, c))
    protos = c.familiarity()
    if protos is None:
        details.append("familiarity check: off (the model carries no prototypes)")
    else:
        from edge.detect.familiarity import familiarity_threshold
        from edge.detect.settings import for_model

        thr_now = familiarity_threshold(for_model(cfg.detector, c))
        state = "off (detector.min_similarity: 0)" if thr_now < 0 else f"min_similarity {thr_now:.3f}"
        details.append(f"familiarity check: {state} (model: {protos.min_similarity:.3f}); labels checked: "
                       f"{', '.join(sorted(protos.vectors))}")
    home = cfg.detector.home_background
    if home is None:
        details.append("home background: none (edge learn-background learns one)")
    elif protos is not None:
        from edge.detect.home_background import BackgroundError, HomeBackground

        try:
            bank = HomeBackground.load(home, c)
        except BackgroundError as e:  # worded as `edge run` words it (OtherModelError: run listens without it)
            return FAIL, f"{cfg.source_file}: detector.home_background: {e}", details, p.sample_rate
        details.append(f"home background: {home}: {bank.vectors.shape[0]} windows from {bank.seconds:.0f} s "
                       "of audio, learnt with this model")
    else:
        return FAIL, (f"{cfg.source_file}: detector.home_background: the model carries no prototypes to compare it "
                      "with (set it to null)"), details, p.sample_rate
    from edge.detect.taught import TaughtError
    from edge.service.listener import open_taught, taught_path

    taught = taught_path(cfg)
    if taught is None:
        details.append("taught sounds: none (edge enroll NAME --source FILE ... teaches one)")
    else:
        try:  # worded as `edge run` words it (another model's: run listens without them)
            sounds = open_taught(taught, c)
        except TaughtError as e:
            return FAIL, f"{cfg.source_file}: detector.taught_sounds: {e}", details, p.sample_rate
        listed = ", ".join(f"{n} (threshold {t.threshold:.2f}, {t.examples} examples)"
                           for n, t in sounds.sounds.items())
        details.append(f"taught sounds: {listed or 'none'} ({taught}), taught with this model")
    msg = (f"{clf.path} ({c.model_version}) loads and runs: {len(c.labels)} labels, {p.sample_rate} Hz; "
           f"silence scored in {ms:.1f} ms (top: {c.labels[top]} {float(scores[top]):.2f})")
    return PASS, msg, details, p.sample_rate


def expected_false_alarms(cfg: Any, contract: Any) -> str:
    """One line: the false alarms per day the model's calibration expects from the enabled labels."""
    from edge.core.errors import EdgeError
    from edge.detect.settings import for_model

    try:
        s = for_model(cfg.detector, contract)
    except (EdgeError, ValueError):  # the config check says what is wrong with the settings
        return "expected false alarms: unknown (the detector settings do not fit this model)"
    rates = dict(dict(contract.detector.get("false_alarms_per_hour") or {}).get(s.sensitivity) or {})
    if not rates:
        return "expected false alarms: unknown (the model carries no calibrated operating points)"
    own = set(cfg.detector.thresholds) | ({*s.labels} if cfg.detector.threshold is not None else set())
    per_day = {lab: 24.0 * float(rates[lab]) for lab in s.labels if lab in rates and lab not in own}
    top = ", ".join(f"{k} {v:.2f}" for k, v in sorted(per_day.items(), key=lambda kv: -kv[1])[:4])
    mine = f"; not counted, your own thresholds: {', '.join(sorted(own & set(s.labels)))}" if own else ""
    return (f"expected false alarms per day at sensitivity {s.sensitivity}: {sum(per_day.values()):.1f} from "
            f"{len(per_day)} enabled labels (most: {top}){mine}")


def check_config(cfg: Any) -> tuple[str, str]:
    """What ``edge run`` checks of the configuration with this model before it listens; ``(status, message)``.

    The same code as the listener (:func:`edge.service.listener.check_setup`), the clips folder
    (:func:`edge.publish.clips.clips_folder`) and, with MQTT on, the outbox path: one FAIL line with
    the message ``edge run`` would print.
    """
    from edge.core.errors import EdgeError
    from edge.service.listener import check_setup, load_classifier

    try:
        clf = load_classifier(cfg)
        c = clf.contract
        hop, settings, _home = check_setup(cfg, c)
        from edge.publish.clips import clips_folder

        clips = clips_folder(cfg)
        if cfg.mqtt.enabled:
            from edge.publish.outbox import check_outbox_path
            from edge.service.config import ConfigError

            try:
                check_outbox_path(cfg.outbox.path, probe=True)
            except ConfigError as e:
                raise ConfigError(f"{cfg.source_file}: {e}") from None
    except EdgeError as e:
        return FAIL, str(e)
    off = [lab for lab in c.labels if lab not in settings.labels]
    msg = (f"{cfg.source_file}: as `edge run` checks it with this model: {len(settings.labels)} of {len(c.labels)} "
           f"labels on, a score every {hop * c.block_seconds:.2f} s")
    if off:
        msg += f"; off: {', '.join(off)}"
    if clips is not None:
        msg += f"; clips are saved in {clips}"
    return PASS, msg


def check_microphone(cfg: Any, model_rate: int | None, listen_s: float = 1.0) -> tuple[str, str]:
    """Open the configured input, read ``listen_s`` seconds, report rate and level (dBFS)."""
    a = cfg.audio
    if a.source != "mic":
        return SKIP, f"audio.source is a file ({a.source}), not the microphone"
    import numpy as np

    from edge.features.level import level_dbfs

    try:
        from edge.capture.sources import MicSource, SourceError
    except OSError as e:  # the PortAudio library itself is missing
        return FAIL, f"cannot load PortAudio ({e}); install libportaudio2"
    try:
        src = MicSource(a.device, a.sample_rate or model_rate or 16000, a.channel, a.block_s or 0.05,
                        max(a.buffer_s, listen_s + 2.0))
        src.start()
    except SourceError as e:
        msg = str(e)
        return FAIL, msg[len("microphone: "):] if msg.startswith("microphone: ") else msg
    try:
        if not src.wait_first_callback(FIRST_AUDIO_TIMEOUT_S):
            return FAIL, (f"{src.device_name!r} opened at {src.sample_rate} Hz but delivered no audio within "
                          f"{FIRST_AUDIO_TIMEOUT_S:g} s")
        src.ring.read()  # start measuring after the first block
        time.sleep(max(listen_s, 0.1))
        _, x = src.ring.read()
    finally:
        src.stop()
    if x.size == 0:
        return FAIL, f"{src.device_name!r} at {src.sample_rate} Hz stopped delivering audio"
    finite = np.isfinite(x)
    bad = int(x.size - np.count_nonzero(finite))
    x = np.where(finite, x, 0.0).astype(np.float64)
    where = f"{src.device_name!r} at {src.sample_rate} Hz, {src.open_channels} ch"
    if not np.any(x):
        return FAIL, f"{where}: only digital silence over {x.size / src.sample_rate:.1f} s (muted or disconnected?)"
    dbfs = level_dbfs(float(np.mean(x * x)))
    peak = level_dbfs(float(np.max(np.abs(x))) ** 2)
    extra = f", {bad} NaN/inf sample(s)" if bad else ""
    extra += f", {src.overflows} input overflow(s)" if src.overflows else ""
    return PASS, (f"{where}: level {dbfs:.1f} dBFS (peak {peak:.1f} dBFS) over {x.size / src.sample_rate:.1f} s"
                  f"{extra}")


def check_broker(cfg: Any) -> tuple[str, str]:
    """Connect with the configured credentials/TLS and disconnect; publishes nothing."""
    m = cfg.mqtt
    if not m.enabled:
        return SKIP, "mqtt.enabled is false"
    from edge.publish.discovery import default_device_id
    from edge.publish.mqtt import _configure_tls, describe_connect_error, describe_refusal, resolve_password
    from edge.publish.paho_client import CallbackAPIVersion, mqtt
    from edge.service.config import ConfigError

    where = f"{m.host}:{m.port}"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311, clean_session=True,
                         client_id=f"edge-doctor-{m.device_id or default_device_id()}-{os.getpid()}")
    try:
        password = resolve_password(m, cfg.source_file)
        if m.username is not None:
            client.username_pw_set(m.username, password)
        if m.tls.enabled:
            _configure_tls(client, m.tls, cfg.source_file)
    except ConfigError as e:
        return FAIL, str(e)
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def on_connect(c: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        outcome["reason"] = reason
        done.set()

    client.on_connect = on_connect
    t0 = time.monotonic()
    try:
        client.connect(m.host, m.port, keepalive=10)
    except Exception as e:  # refused, unresolvable, TLS verification: describe_connect_error says which
        return FAIL, _strip(describe_connect_error(e, m.host, m.port))
    client.loop_start()
    try:
        if not done.wait(CONNECT_TIMEOUT_S):
            return FAIL, f"{where} accepted the connection but sent no CONNACK within {CONNECT_TIMEOUT_S:g} s"
        reason = outcome["reason"]
        if reason.is_failure:
            return FAIL, _strip(describe_refusal(reason, m.host, m.port))
        ms = 1000.0 * (time.monotonic() - t0)
        who = f"user {m.username!r}" if m.username else "anonymously"
        tls = ", TLS verified" if m.tls.enabled and not m.tls.insecure else (
            ", TLS without verification" if m.tls.enabled else "")
        return PASS, f"connected to {where} {who}{tls} in {ms:.0f} ms"
    finally:
        client.disconnect()
        client.loop_stop()


def check_alerts(cfg: Any) -> list[tuple[str, str, str]]:
    """``(status, name, message)`` per alert output: the earcon's output opens and plays 20 ms of silence, the
    GPIO line can be claimed (and is released), the command is an executable file (it is not run)."""
    from edge.core.schema import ConfigError
    from edge.publish.alerts import enabled_outputs

    a = cfg.alerts
    if not enabled_outputs(a):
        return [(SKIP, "alerts", "no alert output enabled (alerts.earcon/haptic/led/command.enabled)")]
    from edge.detect.labels import ALARM_LABELS, SAFETY_LABELS
    from edge.model.contract import ContractError
    from edge.publish.alerts import build_alert_sinks
    from edge.publish.alerts.worker import OutputFailed
    from edge.service.listener import load_classifier

    labels: tuple[str, ...] = ()  # the model check reports a model that does not load
    try:
        labels = tuple(load_classifier(cfg).contract.labels)
    except ContractError:
        pass
    groups = {"safety": (*SAFETY_LABELS, *sorted(ALARM_LABELS)), "alarms": tuple(sorted(ALARM_LABELS))}
    try:
        sinks = build_alert_sinks(a, labels, groups, cfg.source_file)
    except ConfigError as e:
        return [(FAIL, "alerts", str(e))]
    out = []
    for sink in sinks:
        name, o = f"alerts.{sink.name}", sink.output
        try:
            t0 = time.monotonic()
            o.prepare()
            ms = 1000.0 * (time.monotonic() - t0)
        except OutputFailed as e:
            out.append((FAIL, name, str(e)))
            continue
        finally:
            o.close()
        if sink.name == "earcon":
            out.append((PASS, name, f"{getattr(o, 'device_name', '?')!r} opens and plays (20 ms of silence "
                        f"in {ms:.0f} ms)"))
        elif sink.name == "command":
            out.append((PASS, name, f"{getattr(o, 'argv', ['?'])[0]} is executable (not run)"))
        else:
            out.append((PASS, name, f"GPIO line {getattr(a, sink.name).pin} claimed and released"))
    return out


def _strip(msg: str) -> str:
    return msg[len("mqtt: "):] if msg.startswith("mqtt: ") else msg
