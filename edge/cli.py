"""The ``edge`` command: ``run``, ``detect``, ``devices`` (+ subcommands registered by other modules).

Heavy modules (numpy, onnxruntime, sounddevice) are imported inside the
command functions so ``edge --help`` starts fast. Expected problems (config,
model, audio file, audio device) print ``edge: <message>`` on stderr and exit
with status 2 (1 for a device problem at run time), never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from typing import Any

from edge import __version__

# Modules exposing ``register(subparsers)``; each adds its own subcommand(s).
EXTRA_COMMAND_MODULES: list[str] = []

EXIT_USAGE = 2


class UserError(Exception):
    """A one-line problem for the user; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def _expected_errors() -> tuple[type[BaseException], ...]:
    from edge.audiofile import AudioFileError
    from edge.config import ConfigError
    from edge.contract import ContractError

    return (ConfigError, ContractError, AudioFileError)


def build_sinks(cfg: Any, contract: Any, stdout_only_offsets: bool = False) -> list[Any]:
    """Sinks from the config. ---- MQTT hookup ----

    JSON lines on stdout when ``output.stdout`` is true, or when it is null and
    MQTT is off. The MQTT publisher (:class:`edge.mqtt.MqttPublisher`) is imported
    only when ``mqtt.enabled``.
    """
    from edge.sinks import JsonLinesSink

    sinks: list[Any] = []
    if cfg.mqtt.enabled:
        try:
            from edge.mqtt import MqttPublisher  # type: ignore[attr-defined]
        except ImportError:
            raise UserError(f"{cfg.source_file}: mqtt.enabled: the MQTT publisher is not available in this build") \
                from None
        sinks.append(MqttPublisher(cfg, contract))
    stdout = cfg.output.stdout if cfg.output.stdout is not None else not cfg.mqtt.enabled
    if stdout:
        sinks.append(JsonLinesSink(sys.stdout, only_offsets=stdout_only_offsets))
    return sinks


def _load(args: argparse.Namespace, overrides: dict[str, Any]) -> Any:
    from edge.config import load_config

    return load_config(args.config, overrides)


def cmd_run(args: argparse.Namespace) -> int:
    from edge.pipeline import Listener, load_classifier, make_source
    from edge.sources import SourceError

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
    try:
        source = make_source(cfg, clf.contract.frontend.sample_rate)
    except SourceError as e:
        raise UserError(str(e), code=1) from None
    sinks = build_sinks(cfg, clf.contract)
    if cfg.logging.verbose:
        sinks.append(_StderrStatus())
    listener = Listener(cfg, clf, sinks, source)

    def _stop(signum: int, frame: Any) -> None:
        listener.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        listener.run()
    except SourceError as e:
        raise UserError(str(e), code=1) from None
    return 0


class _StderrStatus:
    """``--verbose``: health figures on stderr."""

    def start(self) -> None:
        pass

    def event(self, ev: Any) -> None:
        pass

    def level(self, dbfs: float, top: list[tuple[str, float]], t: float) -> None:
        pass

    def status(self, health: dict[str, Any]) -> None:
        import json

        print("edge: status " + json.dumps(health, separators=(",", ":")), file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


def cmd_detect(args: argparse.Namespace) -> int:
    from edge.pipeline import Listener, load_classifier
    from edge.sinks import JsonLinesSink
    from edge.sources import FileSource, SourceError

    overrides: dict[str, Any] = {"audio.source": args.file, "audio.realtime": False}
    if args.model:
        overrides["model.path"] = args.model
    cfg = _load(args, overrides)
    clf = load_classifier(cfg)
    a = cfg.audio
    try:
        source = FileSource(args.file, a.channel, False, max(a.block_s, 0.25), a.buffer_s)
    except SourceError as e:
        raise UserError(str(e)) from None
    # One line per completed sound, printed as soon as it ends.
    Listener(cfg, clf, [JsonLinesSink(sys.stdout, only_offsets=True)], source).run()
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    try:
        from edge.sources import list_input_devices

        devices = list_input_devices()
    except OSError as e:  # PortAudio library missing
        raise UserError(f"cannot list audio devices: {e}", code=1) from None
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
    p.add_argument("--config", metavar="FILE", help="configuration file (YAML; default: built-in defaults)")
    p.add_argument("--source", metavar="mic|FILE", help="'mic' or an audio file (overrides audio.source)")
    p.add_argument("--realtime", action="store_true", help="pace a file source at real time")
    p.add_argument("--model", metavar="FILE", help="ONNX model file (overrides model.path)")
    p.add_argument("--verbose", action="store_true", help="print health figures on stderr")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("detect", help="detect sound events in an audio file as fast as possible",
                       description="Print one JSON object per detected sound (label, onset, offset in seconds "
                                   "from the start of the file, score, ...).")
    p.add_argument("file", metavar="FILE", help="audio file (WAV; FLAC etc. when soundfile is installed)")
    p.add_argument("--model", metavar="FILE", help="ONNX model file (overrides model.path)")
    p.add_argument("--config", metavar="FILE", help="configuration file (detector settings etc.)")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("devices", help="list audio input devices", description="List audio input devices.")
    p.set_defaults(func=cmd_devices)
    return parser, sub


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
    except UserError as e:
        print(f"edge: {e}", file=sys.stderr)
        return e.code
    except _expected_errors() as e:
        print(f"edge: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (e.g. `edge detect f.wav | head`): not an error, and no noise at exit.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
