"""``edge eval-stream``: make soundscapes, run the listener over them, report, tune.

* ``edge eval-stream --make OUTDIR --manifest PATH --folds 4,5 [--snrs 0,6,12,18] [--n-scenes N]
  [--background-hours H] [--seed S] [--synthetic co_alarm,smoke_alarm] [--licence commercial]``
* ``edge eval-stream --scenes DIR [--model FILE] [--config FILE] [--tuned FILE] [--json] [--plot PNG]``
* ``edge eval-stream --scenes DIR --tune OUT.json [--model FILE] [--config FILE]`` (held-out folds only!)

Problems with the input (missing manifest, bad folds, bad config or model) are
one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from edge.cli.argtypes import seed
from edge.corpus.licences import LICENCE_FILTERS

EXIT_USAGE = 2


class _Usage(Exception):
    pass


def _floats(text: str, what: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise _Usage(f"{what}: expected comma-separated numbers, got {text!r}") from None
    if not vals:
        raise _Usage(f"{what}: expected at least one value, got {text!r}")
    return vals


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``eval-stream`` subcommand to an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "eval-stream", help="streaming detection quality: soundscapes, event F1, false alarms/h, latency",
        description="Make soundscapes (--make) or evaluate the real listener on a scene set (--scenes): "
        "event-based F1 (200/500 ms collars), segment F1/ER (1 s), per-class F1, false alarms per hour, "
        "onset latency. --tune searches detector settings on a held-out scene set.")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--make", metavar="OUTDIR", help="write a scene set (WAV + annotations) to OUTDIR")
    mode.add_argument("--scenes", metavar="DIR", help="evaluate on a scene set made with --make")
    g = p.add_argument_group("--make")
    g.add_argument("--manifest", action="append",
                   help="homesounds-style manifest.csv or corpus folder (paths relative to its folder); repeat it for "
                        "several corpora with aligned folds")
    g.add_argument("--folds", help="comma-separated folds to take clips from, e.g. 5")
    g.add_argument("--snrs", default="0,6,12,18", help="event-to-bed SNRs in dB, cycled over scenes")
    g.add_argument("--n-scenes", type=int, default=40, help="number of scenes (default 40, ~1 min each)")
    g.add_argument("--background-hours", type=float, default=1.0,
                   help="hours of background-only audio for false alarms per hour (default 1)")
    g.add_argument("--synthetic", default="co_alarm",
                   help="synthetic alarm labels to add (co_alarm = T4, smoke_alarm = T3; '' for none)")
    g.add_argument("--seed", type=seed, default=0, help="random seed, an integer >= 0 (default 0)")
    g.add_argument("--licence", choices=LICENCE_FILTERS, default="all",
                   help="'commercial' takes only clips whose licence allows commercial use (as edge train --licence)")
    e = p.add_argument_group("--scenes")
    e.add_argument("--model", help="ONNX model (default: model.path of the config, else the bundled model)")
    e.add_argument("--config", help="config.yaml whose detector/model sections are used")
    e.add_argument("--tuned", help="JSON written by --tune: apply its detector values")
    e.add_argument("--json", action="store_true", help="print the full result as JSON")
    e.add_argument("--out", help="also write the JSON result to this file")
    e.add_argument("--plot", metavar="PNG", help="timeline PNG of truth vs detections for one scene")
    e.add_argument("--plot-scene", help="scene name for --plot (default: the first scene)")
    e.add_argument("--tune", metavar="OUT_JSON", help="tune the detector on this (held-out!) scene set")
    e.add_argument("--hops", default="1", help="with --tune: blocks per hop to search, e.g. 1,2 (default 1)")
    e.add_argument("--only", metavar="NAMES",
                   help="with --tune: search only these (comma-separated) and keep the model's other settings, e.g. "
                        "onset (backtrack, its floor and the lead, searched together)")
    e.add_argument("--write-model", metavar="OUT_ONNX",
                   help="with --tune: write a copy of the model carrying the tuned settings as its defaults")
    e.add_argument("--alarm-gate", metavar="FALLBACK_S", type=float,
                   help="also report with smoke/CO onsets gated by the T3/T4 pattern check "
                        "(classifier alone after FALLBACK_S seconds)")
    p.set_defaults(func=cmd_eval_stream)
    return p


def _make(args: argparse.Namespace) -> int:
    from edge.evaluate.soundscape import SceneSettings, generate

    if not args.manifest or not args.folds:
        raise _Usage("--make needs --manifest PATH and --folds LIST")
    try:
        folds = tuple(int(x) for x in args.folds.split(",") if x.strip())
    except ValueError:
        raise _Usage(f"--folds: expected comma-separated integers, got {args.folds!r}") from None
    if args.n_scenes < 0 or args.background_hours < 0:
        raise _Usage("--n-scenes and --background-hours must be >= 0")
    synth = tuple(x.strip() for x in args.synthetic.split(",") if x.strip())
    s = SceneSettings(folds=folds, snrs=_floats(args.snrs, "--snrs"), n_scenes=args.n_scenes,
                      background_hours=args.background_hours, synthetic=synth, seed=args.seed,
                      licence=args.licence)
    infos = generate(args.manifest, args.make, s, progress=lambda n: print(f"wrote {n}", file=sys.stderr))
    n_ev = sum(len(i.events) for i in infos)
    made = sum(i.duration_s for i in infos if i.background_only) / 3600
    print(f"{args.make}: {sum(not i.background_only for i in infos)} scenes with {n_ev} events, "
          f"{made:.2f} h background-only")
    if made < args.background_hours - 1e-3:
        print(f"edge eval-stream: the background clips of folds {list(folds)} make only {made:.2f} h with each "
              f"clip used at most {s.max_background_uses} times (asked: {args.background_hours:g} h)", file=sys.stderr)
    return 0


def _load_cfg(args: argparse.Namespace) -> Any:
    from edge.service.config import load_config

    cfg = load_config(args.config) if args.config else load_config(None)
    if args.tuned:
        import dataclasses

        from edge.core.files import FileProblem, read_text
        from edge.evaluate.tune import apply_tuned

        try:
            t = json.loads(read_text(args.tuned, 1 << 20))  # a regular file, bounded
            det = apply_tuned(cfg.detector, t["detector"])
            hop = (t.get("model") or {}).get("hop_s")
        except FileProblem as e:
            raise _Usage(f"{args.tuned}: file not found" if e.missing else str(e)) from None
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError, RecursionError) as e:
            raise _Usage(f"{args.tuned}: not a tuning result ({type(e).__name__}: {e})") from None
        # The same validation as config.yaml, naming the tuning file (a hand-edited one included).
        from edge.service.config import parse_config

        checked = parse_config({"detector": dataclasses.asdict(det), "model": {"hop_s": hop}}, str(args.tuned))
        cfg = dataclasses.replace(cfg, detector=checked.detector,
                                  model=dataclasses.replace(cfg.model, hop_s=checked.model.hop_s))
    return cfg


def _evaluate(args: argparse.Namespace) -> int:
    import dataclasses

    from edge.cli.outputs import PLOT_SUFFIXES, check_output_file
    from edge.evaluate import stream as st
    from edge.evaluate.soundscape import load_scene_set
    from edge.service.listener import load_classifier

    # Fail on a bad scene directory or an unwritable output before minutes of listening.
    load_scene_set(args.scenes)
    check_output_file("--plot", args.plot, PLOT_SUFFIXES)
    check_output_file("--out", args.out)
    check_output_file("--tune", args.tune)
    check_output_file("--write-model", args.write_model, (".onnx",))
    raw_hops = _floats(args.hops, "--hops")
    if any(h < 1 or h != int(h) for h in raw_hops):
        raise _Usage(f"--hops: expected whole numbers of blocks >= 1, got {args.hops!r}")
    hops = tuple(int(h) for h in raw_hops)
    only = None
    if args.only is not None:
        from edge.evaluate.tune import SEARCHED

        only = [x.strip() for x in args.only.split(",") if x.strip()]
        bad = [x for x in only if x not in SEARCHED]
        if bad or not only:
            raise _Usage(f"--only: expected names among {', '.join(SEARCHED)}, got {args.only!r}")
    if args.alarm_gate is not None and not 0 <= args.alarm_gate < float("inf"):
        raise _Usage(f"--alarm-gate: expected seconds >= 0, got {args.alarm_gate}")
    cfg = _load_cfg(args)
    clf = load_classifier(cfg, args.model)
    labels = list(clf.labels)
    if args.tune:
        from edge.evaluate.tune import Objective, to_yaml, tune

        # Record one score row per block so every hop can be replayed.
        rec_cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, hop_s=None))
        meta, runs = st.run_scene_set(args.scenes, rec_cfg, clf, record_scores=True,
                                      progress=lambda n: print(f"ran {n}", file=sys.stderr))
        c = clf.contract
        res = tune(runs, c, cfg.detector, Objective(), log=lambda s: print(s, file=sys.stderr), hops=hops,
                   only=only)
        res["scenes"] = str(args.scenes)
        res["folds"] = meta.get("settings", {}).get("folds")
        res["model"] = res["model"] | {"file": str(clf.path), "version": c.model_version}
        st.save_json(res, args.tune)
        print(to_yaml(res))
        if args.write_model:
            from edge.evaluate.tune import write_tuned_model

            out = write_tuned_model(clf.path, args.write_model, res["detector"])
            print(f"wrote {out} with the tuned detector settings in its contract", file=sys.stderr)
        return 0
    if args.write_model or args.hops != "1" or args.only is not None:
        raise _Usage("--write-model, --hops and --only only go with --tune")
    gate = args.alarm_gate is not None
    meta, runs = st.run_scene_set(args.scenes, cfg, clf, record_scores=bool(args.plot) or gate,
                                  progress=lambda n: print(f"ran {n}", file=sys.stderr))
    m = st.compute_metrics(runs, labels)
    if gate:
        from edge.evaluate.tune import replay
        from edge.service.listener import hop_blocks

        c = clf.contract
        hb = hop_blocks(cfg, c.block_seconds)
        rec = runs
        if hb != 1:  # the gate replay needs every block's scores: one more pass recording them
            rec_cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, hop_s=None))
            rec = st.run_scene_set(args.scenes, rec_cfg, clf, record_scores=True)[1]
        det, emi = {}, {}
        for r in rec:
            det[r.name], emi[r.name] = replay(r, c, cfg.detector, hb, gate=(c.frontend, args.alarm_gate))
        g = st.compute_metrics(rec, labels, detected=det, emitted=emi)
        m["with_alarm_gate"] = {"fallback_s": args.alarm_gate} | {
            k: g[k] for k in ("event_f1_200ms", "event_f1_500ms", "segment_f1_1s", "segment_er_1s",
                              "safety_recall_500ms", "false_alarms", "false_alarms_per_hour", "false_alarms_by_label")
        } | {"per_class_500ms": {k: v for k, v in g["per_class_500ms"].items() if k in ("smoke_alarm", "co_alarm")},
             "decision_latency_s": {k: v for k, v in g["decision_latency_s"].items()
                                    if k in ("smoke_alarm", "co_alarm")}}
    audio_s = sum(r.duration_s for r in runs)
    wall_s = sum(r.wall_s for r in runs)
    m["model"] = {"file": str(clf.path), "version": clf.contract.model_version}
    m["scene_set"] = {"dir": str(args.scenes), "folds": meta.get("settings", {}).get("folds"),
                      "synthetic_labels": meta.get("synthetic_labels", [])}
    m["detector"] = dataclasses.asdict(cfg.detector) | {"hop_s": cfg.model.hop_s}
    m["speed"] = {"audio_s": round(audio_s, 1), "wall_s": round(wall_s, 1),
                  "x_realtime": round(audio_s / wall_s, 1) if wall_s else None}
    if args.plot:
        scenes = [r for r in runs if not r.background_only] or runs
        pick = next((r for r in scenes if r.name == args.plot_scene), None) if args.plot_scene else scenes[0]
        if pick is None:
            raise _Usage(f"--plot-scene: no scene named {args.plot_scene!r} in {args.scenes}")
        st.plot_timeline(pick, labels, args.plot)
        m["plot"] = {"png": str(args.plot), "scene": pick.name}
    if args.out:
        st.save_json(m, args.out)
    if args.json:
        print(json.dumps(m, indent=1))
    else:
        print(st.format_report(m, header=f"model {clf.contract.model_version} ({clf.path}), scenes {args.scenes}, "
                                         f"folds {m['scene_set']['folds']}, {m['speed']['x_realtime']}x real time"))
        if gate:
            print("with the alarm pattern gate: " + json.dumps(m["with_alarm_gate"]))
    return 0


def cmd_eval_stream(args: argparse.Namespace) -> int:
    from edge.capture.audiofile import AudioFileError
    from edge.cli.outputs import OutputError
    from edge.evaluate.soundscape import SoundscapeError
    from edge.model.contract import ContractError
    from edge.service.config import ConfigError

    try:
        return _make(args) if args.make else _evaluate(args)
    except (_Usage, ConfigError, ContractError, SoundscapeError, OutputError) as e:
        print(f"edge eval-stream: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (AudioFileError, ValueError, OSError) as e:
        print(f"edge eval-stream: {e}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    """``python -m edge.cli.eval_stream ...`` (same as ``edge eval-stream ...``)."""
    parser = argparse.ArgumentParser(prog="edge")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    args = parser.parse_args(["eval-stream", *(argv if argv is not None else sys.argv[1:])])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
