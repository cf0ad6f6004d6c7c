"""``edge enroll`` and ``edge sounds``: teach the listener a sound of this home, on the device.

* ``edge enroll NAME --source FILE [FILE ...]`` - every file is one example;
* ``edge enroll NAME --source mic [--examples 5] [--seconds 4]`` - press Enter, then make the sound;
* ``edge sounds list`` / ``edge sounds remove NAME`` / ``edge sounds test NAME FILE``.

Only window embeddings are stored (:mod:`edge.detect.taught`), never audio, in
``detector.taught_sounds`` (default ``<state dir>/taught-sounds.json``). A
running listener picks a change up on reload (SIGHUP); Home Assistant discovery
then adds (or removes) the sound's binary sensor and event type.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``enroll`` and ``sounds`` to an argparse ``subparsers`` object."""
    from edge.cli.argtypes import positive
    from edge.cli.common import add_config_and_model

    p = subparsers.add_parser(
        "enroll", help="teach the listener a sound of this home from a few examples",
        description="Teach a sound (a doorbell, the microwave's beep, the gate latch) from a few examples: files "
        "(each one example) or the microphone (press Enter, then make the sound). The sound is found in each "
        "example by level; only the model's window embeddings are kept (never audio), under the state directory. "
        "A running listener uses it after a reload (SIGHUP).")
    add_config_and_model(p)
    p.add_argument("name", help="the sound's name: lower-case letters, digits, '_' (e.g. microwave_beep)")
    p.add_argument("--source", nargs="+", metavar="mic|FILE", required=True,
                   help="'mic', or one audio file per example")
    p.add_argument("--examples", type=positive(int), default=5, help="with --source mic: examples to record (5)")
    p.add_argument("--seconds", type=positive(float), default=4.0,
                   help="with --source mic: seconds recorded per example (4)")
    p.add_argument("--out", metavar="FILE", help="taught-sounds file (default: detector.taught_sounds, else "
                   "<state dir>/taught-sounds.json)")
    p.set_defaults(func=cmd_enroll)

    s = subparsers.add_parser("sounds", help="list, remove or test the sounds taught with `edge enroll`",
                              description="The sounds taught on this device.")
    add_config_and_model(s)
    s.add_argument("--file", metavar="FILE", help="taught-sounds file (default as for edge enroll --out)")
    sub = s.add_subparsers(dest="action", required=True, metavar="list|remove|test")
    sub.add_parser("list", help="the taught sounds, their examples and thresholds")
    r = sub.add_parser("remove", help="forget a taught sound (and remove it from Home Assistant)")
    r.add_argument("name")
    t = sub.add_parser("test", help="run an audio file through the listener and say when NAME is heard")
    t.add_argument("name")
    t.add_argument("audio", metavar="FILE")
    s.set_defaults(func=cmd_sounds)


def _setup(args: argparse.Namespace) -> tuple[Any, Any, Path]:
    from edge.detect.taught import default_path
    from edge.service.config import load_config
    from edge.service.listener import load_classifier, taught_path

    overrides: dict[str, Any] = {"model.path": args.model} if args.model else {}
    cfg = load_config(args.config, overrides)
    out = getattr(args, "out", None) or getattr(args, "file", None)
    path = Path(out) if out else (taught_path(cfg) or default_path())
    return cfg, load_classifier(cfg), path


def _read(path: Path) -> Any:
    """The taught sounds at ``path`` (whatever model they were taught with), None if there is no file yet;
    a bad file raises :class:`~edge.detect.taught.TaughtError` (an EdgeError: one line, exit 2)."""
    from edge.detect.taught import TaughtSounds

    return TaughtSounds.load(path) if path.exists() else None


def _save(sounds: Any, path: Path) -> None:
    from edge.core.errors import EXIT_FAILURE, EdgeError

    try:
        sounds.save(path)
    except OSError as e:
        raise EdgeError(f"{path}: cannot write ({e.strerror or e})", exit_code=EXIT_FAILURE) from None


def record_examples(cfg: Any, clf: Any, n: int, seconds: float) -> list[Any]:
    """``n`` examples from the microphone: Enter, then ``seconds`` of audio each."""
    import numpy as np

    from edge.capture.sources import MicSource
    from edge.service.enrolment import EnrolError, example_from_audio
    from edge.service.listener import capture_block_s

    a = cfg.audio
    rate = clf.contract.frontend.sample_rate
    out = []
    block_s = capture_block_s(cfg, clf.contract.block_seconds)
    source = MicSource(a.device, a.sample_rate or rate, a.channel, block_s, max(a.buffer_s, seconds + 2.0))
    source.start()
    try:
        i = 0
        while i < n:
            print(f"example {i + 1} of {n}: press Enter, then make the sound ({seconds:g} s)", file=sys.stderr,
                  flush=True)
            if not sys.stdin.readline():
                break  # end of input: stop with what was recorded
            ring = source.ring
            while ring.read(1 << 16)[1].size:
                pass  # what came before Enter
            want = int(seconds * source.sample_rate)
            parts, got = [], 0
            while got < want:
                ring.wait(0.1)
                _, x = ring.read(want - got)
                parts.append(x.copy())
                got += x.shape[0]
            y = np.concatenate(parts) if parts else np.zeros(0, np.float32)
            if source.sample_rate != rate:
                import soxr

                y = soxr.resample(y, source.sample_rate, rate).astype(np.float32)
            try:
                out.append(example_from_audio(clf, y, f"microphone example {i + 1}"))
                i += 1
            except EnrolError as e:
                print(f"edge: {e}; again", file=sys.stderr, flush=True)
    finally:
        source.stop()
    return out


def cmd_enroll(args: argparse.Namespace) -> int:
    from edge.core.errors import EdgeError
    from edge.detect.home_background import fingerprint
    from edge.detect.taught import check_name
    from edge.service.enrolment import add_to_file, enrol, example_from_file

    cfg, clf, path = _setup(args)
    c = clf.contract
    name = check_name(args.name, c.labels)  # TaughtError: one line, exit 2
    fp = fingerprint(c)
    before = _read(path)
    if before is not None and before.model != fp and before.sounds:
        print(f"edge: the sounds in {path} were taught with another model and are replaced: "
              f"{', '.join(before.names)} (teach them again)", file=sys.stderr)
    if args.source == ["mic"]:
        examples = record_examples(cfg, clf, args.examples, args.seconds)
    else:
        if "mic" in args.source:
            raise EdgeError("--source: 'mic' or audio files, not both")
        examples = [example_from_file(clf, f) for f in args.source]
    if not examples:
        raise EdgeError(f"{name}: no example was recorded: nothing taught")
    result = enrol(name, examples, clf, k=2, taught=before)
    sounds = add_to_file(before, result, fp)
    _save(sounds, path)
    s = result.sound
    for note in result.notes:
        print(f"edge: {note}", file=sys.stderr)
    for w in result.warnings:
        print(f"edge: warning: {w}", file=sys.stderr)
    print(f"taught {name!r} from {s.examples} example(s): {s.prototypes.shape[0]} prototypes, threshold "
          f"{s.threshold:.3f} ({s.calibration['method']}) into {path.resolve()}")
    print("a running listener uses it after a reload: systemctl kill -s HUP edge-listener (or restart it)")
    return 0


def cmd_sounds(args: argparse.Namespace) -> int:
    from edge.core.errors import EdgeError
    from edge.detect.home_background import fingerprint

    cfg, clf, path = _setup(args)
    fp = fingerprint(clf.contract)
    sounds = _read(path)
    if args.action == "list":
        if sounds is None or not sounds.sounds:
            print(f"no taught sounds ({path}); teach one with: edge enroll NAME --source FILE ...")
            return 0
        other = sounds.model != fp
        for name, s in sounds.sounds.items():
            print(f"{name}: {s.examples} examples, {s.prototypes.shape[0]} prototypes, threshold {s.threshold:.3f} "
                  f"({s.calibration.get('method', '?')})")
        if other:
            print(f"taught with another model: not used by this one ({clf.path}); teach them again")
        return 0
    if sounds is None or args.name not in sounds.sounds:
        known = ", ".join(sounds.names) if sounds is not None and sounds.sounds else "none"
        raise EdgeError(f"{path}: no taught sound {args.name!r} (taught: {known})")
    if args.action == "remove":
        sounds.remove(args.name)
        _save(sounds, path)
        print(f"removed {args.name!r} from {path}; a running listener forgets it (and removes it from Home "
              "Assistant) after a reload: systemctl kill -s HUP edge-listener")
        return 0
    return _test(args, cfg, clf, path)


def _test(args: argparse.Namespace, cfg: Any, clf: Any, path: Path) -> int:
    """``edge sounds test NAME FILE``: the file through the real listener; NAME's events and best score."""
    import dataclasses

    from edge.capture.sources import FileSource, SourceError
    from edge.cli.common import check_file_length
    from edge.core.errors import EdgeError
    from edge.publish.sinks import CollectSink
    from edge.service.listener import Listener, capture_block_s

    det = dataclasses.replace(cfg.detector, taught_sounds=str(path))
    cfg = dataclasses.replace(cfg, detector=det)
    a = cfg.audio
    try:
        source = FileSource(args.audio, a.channel, False, max(capture_block_s(cfg, clf.contract.block_seconds), 0.25),
                            a.buffer_s)
    except SourceError as e:
        raise EdgeError(str(e)) from None
    check_file_length(source, clf.contract.window_seconds)
    collect = CollectSink()
    listener = Listener(cfg, clf, [collect], source)
    if args.name not in listener.chain.taught_names:
        raise EdgeError(f"{path}: {args.name!r} is not usable with this model (taught with another one)")
    i = listener.chain.taught_names.index(args.name)
    best = [0.0]

    def hop(_e: Any) -> None:
        ts = listener.chain.last_taught_scores
        if ts.size:
            best[0] = max(best[0], float(ts[i]))

    listener.on_embedding = hop
    listener.run()
    # on_embedding runs before the chain's hop: the last hop's score is read once more at the end
    ts = listener.chain.last_taught_scores
    if ts.size:
        best[0] = max(best[0], float(ts[i]))
    evs = [e for e in collect.events if e.label == args.name and e.state == "off"]
    for ev in evs:
        print(f"{args.name}: {ev.onset:.2f}-{ev.offset:.2f} s (score {ev.score:.3f})")
    thr = listener.chain.taught.thresholds[args.name] if listener.chain.taught else float("nan")
    print(f"{args.name}: heard {len(evs)} time(s) in {args.audio}; best score {best[0]:.3f} (threshold {thr:.3f})")
    return 0
