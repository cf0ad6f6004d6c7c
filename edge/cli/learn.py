"""``edge learn-background``: learn this home's ordinary sounds so they stop raising false alarms.

* ``edge learn-background [--seconds 600] [--source mic|FILE] [--out FILE] [--add] [--config FILE] [--model FILE]``

Runs the real listener (microphone by default, or a recording of the room) and
keeps the window embedding of every hop in a :class:`~edge.detect.home_background.HomeBackground`
file; no audio is stored. The learning itself is :class:`edge.service.learning.BackgroundSession`,
which the running service also uses for Home Assistant's "Learn this room's background"
button. Run it at an ordinary time, when none of the sounds you want to hear about
happens. ``detector.home_background: FILE`` in ``config.yaml`` (then a reload) puts it
to use. Ctrl-C or SIGTERM stops early and keeps what was learnt.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from edge.publish.sinks import BaseSink
from edge.service.learning import BackgroundSession, default_path


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``learn-background`` subcommand to an argparse ``subparsers`` object."""
    from edge.cli.argtypes import positive
    from edge.cli.common import add_config_and_model

    p = subparsers.add_parser(
        "learn-background", help="learn this home's ordinary sounds (fewer false alarms)",
        description="Listen to ordinary audio in this home (microphone, or a recording of the room) and keep the "
        "model's window embeddings (never the audio). With detector.home_background set to the file, an onset that "
        "sounds more like these than like its label's training sounds is held back. Smoke/CO alarms, glass breaking "
        "and a baby crying are never held back.")
    add_config_and_model(p)
    p.add_argument("--source", metavar="mic|FILE", help="'mic' or an audio file (overrides audio.source)")
    p.add_argument("--seconds", type=positive(float), default=600.0,
                   help="seconds of audio to learn from (default 600; a file ends sooner if shorter)")
    p.add_argument("--out", metavar="FILE", help=f"where to write it (default {default_path()})")
    p.add_argument("--add", action="store_true", help="add to the windows already in --out instead of replacing them")
    p.set_defaults(func=cmd_learn)
    return p


class _Onsets(BaseSink):
    """Hands the listener's events to the session (it counts the onsets raised while learning)."""

    def __init__(self, session: BackgroundSession) -> None:
        self.session = session

    def event(self, ev: Any) -> None:
        self.session.note(ev)


def cmd_learn(args: argparse.Namespace) -> int:
    from edge.cli.common import check_file_length
    from edge.cli.outputs import OutputError, check_output_file
    from edge.core.errors import EXIT_FAILURE, EdgeError
    from edge.detect.home_background import BackgroundError, HomeBackground
    from edge.service.config import load_config
    from edge.service.listener import Listener, hop_blocks, load_classifier, make_source

    # Learn what the listener raises on its own, not what an older file already holds back.
    overrides: dict[str, Any] = {"detector.home_background": None}
    if args.source:
        overrides["audio.source"] = args.source
    if args.model:
        overrides["model.path"] = args.model
    cfg = load_config(args.config, overrides)
    out = Path(args.out) if args.out else default_path()
    try:  # before minutes of listening (the default folder is made when saving)
        check_output_file("--out", args.out, (".npz",))
    except OutputError as e:
        raise EdgeError(str(e)) from None
    clf = load_classifier(cfg)
    c = clf.contract
    if c.familiarity() is None:
        raise EdgeError(f"{clf.path}: the model carries no prototypes, so a home background cannot be compared "
                        "with its labels (python -m edge.train.prototypes adds them)")
    before = None
    if args.add and out.exists():
        try:
            before = HomeBackground.load(out, c)
        except BackgroundError as e:
            raise EdgeError(f"--add: {e}") from None
    source = make_source(cfg, c.frontend.sample_rate, c.block_seconds)
    check_file_length(source, c.window_seconds)
    hop_s = hop_blocks(cfg, c.block_seconds) * c.block_seconds
    session = BackgroundSession(c, args.seconds, hop_s, before)
    listener = Listener(cfg, clf, [_Onsets(session)], source)

    def push(e: Any) -> None:
        # Once enough is learnt the source may still deliver what it read ahead: the session ignores it.
        if session.push(e):
            listener.stop()

    listener.on_embedding = push
    old = {s: signal.signal(s, lambda *_: listener.stop()) for s in (signal.SIGINT, signal.SIGTERM)}
    print(f"edge: learning this home's background from {cfg.audio.source} for {args.seconds:g} s "
          "(Ctrl-C stops early and keeps what was learnt)", file=sys.stderr, flush=True)
    try:
        listener.run()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if session.hops == 0:
        raise EdgeError(f"{cfg.audio.source}: no audio was heard: nothing learnt, {out} unchanged",
                        exit_code=EXIT_FAILURE)
    bank = session.result()
    try:
        bank.save(out)
    except OSError as e:
        raise EdgeError(f"{out}: cannot write ({e.strerror or e})", exit_code=EXIT_FAILURE) from None
    held, kept = session.held_and_kept()
    print(f"learnt {bank.vectors.shape[0]} windows ({bank.seconds:.0f} s of audio in all) of this home's "
          f"background into {out.resolve()}")
    print(f"false alarms raised while learning, held back from now on when they sound like this: {held}")
    if kept:
        print(f"also raised, and never held back (safety sounds; check what they were): {kept}")
    print(f"to use it: set detector.home_background: {out.resolve()} in config.yaml, then restart the listener "
          "or send it SIGHUP (systemctl kill -s HUP edge-listener)")
    return 0
