"""The ``edge`` command: ``run``, ``detect``, ``devices`` (+ subcommands registered by other modules).

Heavy modules (numpy, onnxruntime, sounddevice) are imported inside the
command functions so ``edge --help`` starts fast. Expected problems (config,
model, audio file, audio device) print ``edge: <message>`` on stderr and exit
with status 2 (1 for a device problem at run time), never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

# The listener's budget is a fraction of one core: BLAS thread pools only add
# spinning threads around the front end's small matrix products. This must be
# set before numpy is first imported; an explicit environment value wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from edge import __version__  # noqa: E402  (after the thread settings above)
from edge.cli.common import add_config_and_model, check_file_length  # noqa: E402
from edge.core.errors import EXIT_FAILURE, EXIT_USAGE, EdgeError  # noqa: E402
from edge.publish.sinks import BaseSink, SinkError  # noqa: E402

# Modules exposing ``register(subparsers)``; each adds its own subcommand(s).
EXTRA_COMMAND_MODULES: list[str] = [
    "edge.cli.train",
    "edge.cli.eval_clips",
    "edge.cli.eval_stream",
    "edge.cli.bench",
    "edge.cli.learn",
    "edge.cli.enroll",
]

def build_sinks(cfg: Any, contract: Any, stdout_only_offsets: bool = False) -> list[Any]:
    """Sinks from the config. ---- MQTT hookup ----

    JSON lines on stdout when ``output.stdout`` is true, or when it is null and
    MQTT is off. The MQTT publisher (:class:`edge.publish.mqtt.MqttPublisher`) is imported
    only when ``mqtt.enabled``.
    """
    from edge.publish.sinks import JsonLinesSink

    sinks: list[Any] = []
    # ---- local alerts (earcon, haptic, LED, command) ---- first: they hand off at once, and must not
    # wait behind the outbox's disk write or a slow stdout reader.
    from edge.publish.alerts import build_alert_sinks, enabled_outputs

    if enabled_outputs(cfg.alerts):
        from edge.detect.labels import ALARM_LABELS, SAFETY_LABELS

        groups = {"safety": (*SAFETY_LABELS, *sorted(ALARM_LABELS)), "alarms": tuple(sorted(ALARM_LABELS))}
        sinks.extend(build_alert_sinks(cfg.alerts, contract.labels, groups, cfg.source_file))
    if cfg.mqtt.enabled:
        try:
            from edge.publish.mqtt import MqttPublisher
        except ImportError:
            raise EdgeError(f"{cfg.source_file}: mqtt.enabled: the MQTT publisher is not available in this build") \
                from None
        sinks.append(MqttPublisher(cfg, contract))
    stdout = cfg.output.stdout if cfg.output.stdout is not None else not cfg.mqtt.enabled
    if stdout:
        sinks.append(JsonLinesSink(sys.stdout, only_offsets=stdout_only_offsets))
    return sinks


def _load(args: argparse.Namespace, overrides: dict[str, Any]) -> Any:
    from edge.service.config import load_config

    return load_config(args.config, overrides)


def cmd_run(args: argparse.Namespace) -> int:
    from edge.service.lifecycle import Lifecycle, hold_reloads_until_running

    hold_reloads_until_running()  # a SIGHUP while the model loads is applied once listening, not fatal
    from edge.service.listener import Listener, load_classifier, make_source

    overrides: dict[str, Any] = {}
    if args.source:
        overrides["audio.source"] = args.source
    if args.realtime:
        overrides["audio.realtime"] = True
    if args.model:
        overrides["model.path"] = args.model
    if args.verbose:
        overrides["logging.verbose"] = True
    cfg = _load(args, overrides)
    clf = load_classifier(cfg)
    source = make_source(cfg, clf.contract.frontend.sample_rate, clf.contract.block_seconds)
    check_file_length(source, clf.contract.window_seconds)
    sinks = build_sinks(cfg, clf.contract)
    if cfg.logging.verbose:
        sinks.append(_StderrStatus())
    from edge.core.logutil import setup_logging

    setup_logging(cfg.logging.level)
    control = None
    if cfg.mqtt.enabled:  # settings from Home Assistant (edge.service.remote), on top of the file's
        from edge.service.remote import RemoteControl

        control = RemoteControl(cfg, clf.contract)
        cfg = control.overlay(cfg)
        sinks.append(control.sink)
    listener = Listener(cfg, clf, sinks, source)
    if control is not None:
        control.attach(listener)
    # SIGTERM/SIGINT stop cleanly, SIGHUP reloads the detector settings, systemd notification.
    Lifecycle(listener, (lambda: _load(args, overrides)) if args.config else None, control=control).run()
    return 0


class _StderrStatus(BaseSink):
    """``--verbose``: health figures on stderr."""

    def status(self, health: dict[str, Any]) -> None:
        from edge.service.health import format_health_line

        print("edge: status " + format_health_line(health), file=sys.stderr, flush=True)


def cmd_detect(args: argparse.Namespace) -> int:
    from edge.capture.sources import FileSource, SourceError
    from edge.publish.sinks import JsonLinesSink
    from edge.service.listener import Listener, load_classifier

    overrides: dict[str, Any] = {"audio.source": args.file, "audio.realtime": False}
    if args.model:
        overrides["model.path"] = args.model
    cfg = _load(args, overrides)
    clf = load_classifier(cfg)
    a = cfg.audio
    try:
        source = FileSource(args.file, a.channel, False, max(a.block_s or 0.0, 0.25), a.buffer_s)
    except SourceError as e:  # a file's problem is bad input here (2), as for every other file command
        raise EdgeError(str(e)) from None
    check_file_length(source, clf.contract.window_seconds, code=EXIT_USAGE)
    # One line per completed sound, printed as soon as it ends.
    Listener(cfg, clf, [JsonLinesSink(sys.stdout, only_offsets=True)], source).run()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from edge.core.paths import demo_recording

    path = demo_recording()
    pace = "as fast as possible" if args.fast else "in real time"
    print(f"edge: demo: listening to {path.name} (30 s of a room with a smoke alarm and a CO alarm) {pace}; "
          "events appear below as they are detected", file=sys.stderr, flush=True)
    args.source, args.realtime, args.verbose = str(path), not args.fast, False
    return cmd_run(args)


def cmd_devices(args: argparse.Namespace) -> int:
    try:
        from edge.capture.sources import list_input_devices

        devices = list_input_devices()
    except OSError as e:  # PortAudio library missing
        raise EdgeError(f"cannot list audio devices: {e}", exit_code=EXIT_FAILURE) from None
    if not devices:
        print("No audio input devices found.")
        return 0
    import sounddevice as sd

    try:
        default_in = sd.default.device[0]
    except Exception:  # no default device configured
        default_in = -1
    for d in devices:
        mark = "*" if d["index"] == default_in else " "
        print(f"{mark} {d['index']:3d}  {d['name']}  ({d['channels']} ch, {d['default_samplerate']:g} Hz, "
              f"{d['hostapi']})")
    return 0


def build_parser() -> tuple[argparse.ArgumentParser, Any]:
    parser = argparse.ArgumentParser(prog="edge", description="Always-on household sound listener.")
    parser.add_argument("--version", action="version", version=f"edge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="listen continuously (microphone or a recording) and emit events",
                       description="The always-on job: audio source -> classifier -> events on stdout/MQTT.")
    add_config_and_model(p)
    p.add_argument("--source", metavar="mic|FILE", help="'mic' or an audio file (overrides audio.source)")
    p.add_argument("--realtime", action="store_true", help="pace a file source at real time")
    p.add_argument("--verbose", action="store_true", help="print health figures on stderr")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("detect", help="detect sound events in an audio file as fast as possible",
                       description="Print one JSON object per detected sound (label, onset, offset in seconds "
                                   "from the start of the file, score, ...).")
    p.add_argument("file", metavar="FILE", help="audio file (WAV; FLAC etc. when soundfile is installed)")
    add_config_and_model(p)
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("demo", help="run the listener on the bundled demo recording",
                       description="Run the always-on job on the bundled demo recording (generated room noise "
                                   "with a T3 smoke alarm and a T4 CO alarm), printing events as they are detected.")
    p.add_argument("--fast", action="store_true", help="as fast as possible instead of real time")
    add_config_and_model(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("devices", help="list audio input devices", description="List audio input devices.")
    p.set_defaults(func=cmd_devices)

    from edge.cli.doctor import register as register_doctor

    register_doctor(sub)
    return parser, sub


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null so that the interpreter's final flush of stdout cannot fail."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    parser, sub = build_parser()
    for name in EXTRA_COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except EdgeError as e:  # the one place an expected problem becomes one line and an exit status
        if isinstance(e, SinkError):
            _silence_stdout()  # what is still buffered for stdout would fail again at exit
        print(f"{getattr(args, 'error_prefix', 'edge')}: {e}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:
        # The reader went away (e.g. `edge detect f.wav | head`): not an error, and no noise at exit.
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
