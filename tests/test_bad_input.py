"""Bad input never stops the always-on job (issue 22): generated malformed inputs through the real CLI.

Several hundred cases, generated (tests/badinput.py): every config option with values of the wrong type or out
of range, malformed YAML (deep nesting, alias bombs, huge, binary, odd keys), special paths (NUL bytes, names
over 255 bytes, folders, named pipes, devices, sockets, symlink loops) for every file a person names, broken
model contracts, unreadable audio, manifests and home-background files, setups only ``edge run`` used to
refuse, special files at start in a real process, and one real listener reloaded (SIGHUP) with every kind of
bad file. Each case checks:

* the exit status: 2 for bad input; ``edge doctor``: the same one line and 2 for a file it cannot load, else
  exit 1 with one FAIL line carrying the message ``edge run`` prints;
* exactly one line on stderr (file-descriptor level: a C library's own output counts), naming the file and,
  where there is one, the key; no traceback; no hang (named pipes are unblocked by a guard after a timeout);
* a rejected start leaves every queued outbox event in place; a rejected reload leaves the listener listening
  with its old configuration, logs one line, and the next smoke alarm is still published.

In-process (``edge.cli.app.main``) wherever a real process does not matter; subprocesses for /dev/zero
(memory-limited), named pipes at start, and signals.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import badinput as bi
import numpy as np
import pytest
from test_mic_faults_pulseaudio import Lines
from tinymodel import build_tiny_model

from edge.capture.audiofile import write_wav
from edge.cli.app import main
from edge.core.errors import MAX_MESSAGE_CHARS
from edge.features.frontend import FrontendParams
from edge.publish.outbox import Outbox
from edge.service.config import Config

ROOT = Path(__file__).resolve().parent.parent
SR = 16000
HANG_S = 20.0  # an in-process case still running after this is a hang (the guard then unblocks its pipes)


# -- the bench: models, audio, paths shared by every case ---------------------------------------------------------
@dataclasses.dataclass
class Bench:
    dir: Path
    tiny: Path  # 3 labels low/mid/high_tone, no tuned detector section, no prototypes
    proto: Path  # the same with prototypes for mid_tone (a home background can be used with it)
    good: Path  # 2 s of a 1 kHz tone: a file every command accepts
    tone: np.ndarray
    base_contract: dict[str, Any]
    onnx_model: Any
    proto_fingerprint: str
    dead_port: int
    keep: list[Any]

    def path(self, kind: str, where: str) -> str:
        return bi.special_path(kind, self.dir / "paths" / where, self.keep)

    def mqtt(self, tmp: Path, **extra: Any) -> dict[str, Any]:
        """An MQTT section pointing at a closed port (nothing is ever delivered) and an outbox in ``tmp``."""
        return {"mqtt": {"enabled": True, "host": "127.0.0.1", "port": self.dead_port, "username": "u",
                         "password": "p", **extra}, "outbox": {"path": str(tmp / "outbox.sqlite")},
                "output": {"stdout": True}}


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    import onnx

    from edge.detect.home_background import fingerprint
    from edge.model.contract import read_contract, save_with_contract
    from edge.model.prototypes import Prototypes, unit_rows

    d = tmp_path_factory.mktemp("bad")
    tiny = build_tiny_model(d / "tiny.onnx")
    c = read_contract(tiny)
    protos = Prototypes({"mid_tone": unit_rows(np.ones((2, c.embedding_dim), np.float32))}, 0.5, c.embedding_dim)
    proto = save_with_contract(onnx.load(str(tiny)), dataclasses.replace(c, prototypes=protos.to_dict()),
                               d / "proto.onnx")
    tone = (0.3 * np.sin(2 * np.pi * 1000.0 * np.arange(2 * SR) / SR)).astype(np.float32)
    good = write_wav(d / "good.wav", tone, SR)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: connections are refused
    b = Bench(d, tiny, proto, good, tone, json.loads(c.to_json()), onnx.load(str(tiny)),
              fingerprint(read_contract(proto)), port, [])
    yield b
    for s in b.keep:
        s.close()


@dataclasses.dataclass
class Background:
    """The real processes of this module, started with its first case and run alongside the in-process ones."""

    reload: Future[list[str]]
    starts: dict[tuple[str, str], Future[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def background(bench: Bench, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Background]:
    with ThreadPoolExecutor(1) as listener, ThreadPoolExecutor(2) as starts:
        bg = Background(listener.submit(_reload_scenario, tmp_path_factory.mktemp("reload")),
                        {(t, k): starts.submit(_start_case, bench, tmp_path_factory.mktemp("start"), t, k)
                         for t, k in START_CASES})
        yield bg


@pytest.fixture(scope="module", autouse=True)
def _start_background_early(request: pytest.FixtureRequest) -> None:
    """Start the real processes with the module's first case when any selected case needs them (they mostly
    wait: on real time, on a timeout), so they run alongside the in-process cases."""
    mine = [it for it in request.session.items if getattr(it, "module", None) is request.module]
    if any("background" in it._fixtureinfo.argnames for it in mine):
        request.getfixturevalue("background")


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    """Each in-process case starts without logging handlers or signal handlers left by another."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    for h in saved:
        root.removeHandler(h)
    sigs = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    yield
    for h in root.handlers[:]:
        root.removeHandler(h)
    for h in saved:
        root.addHandler(h)
    root.setLevel(level)
    for s, h in sigs.items():
        signal.signal(s, h)


# -- running a command and judging what it said ---------------------------------------------------------------------
@dataclasses.dataclass
class Result:
    rc: int | None
    out: str
    err: str
    exc: BaseException | None
    hung: bool


def cli(capfd: pytest.CaptureFixture[str], args: Sequence[Any], fifos: Sequence[str] = ()) -> Result:
    """``edge ARGS`` in this process. A named pipe the command blocks on is opened for writing after
    :data:`HANG_S` (that unblocks it), and the case counts as a hang."""
    capfd.readouterr()
    done = threading.Event()
    hung: list[bool] = []

    def guard() -> None:
        if done.wait(HANG_S):
            return
        hung.append(True)
        while not done.is_set():
            for f in fifos:
                try:
                    os.close(os.open(f, os.O_WRONLY | os.O_NONBLOCK))
                except OSError:
                    pass
            time.sleep(0.05)

    t = threading.Thread(target=guard, daemon=True)
    t.start()
    exc: BaseException | None = None
    rc: int | None = None
    try:
        rc = main([str(a) for a in args])
    except BaseException as e:  # noqa: BLE001 - anything but a return is a finding
        exc = e
    finally:
        done.set()
        t.join()
    out, err = capfd.readouterr()
    return Result(rc, out, err, exc, bool(hung))


def refused(res: Result, *needles: str, code: int = 2) -> str:
    """The one stderr line of a refused command (exit ``code``), which must contain every needle."""
    assert not res.hung, f"hung for more than {HANG_S:g} s; stderr: {res.err}"
    if res.exc is not None:
        pytest.fail("escaped as an exception:\n" + "".join(traceback.format_exception(res.exc)))
    assert "Traceback" not in res.err, res.err
    assert res.rc == code, f"exit {res.rc}, expected {code}; stderr: {res.err!r}; stdout: {res.out[-300:]!r}"
    lines = res.err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {res.err!r}"
    line = lines[0]
    assert line.startswith("edge"), line
    assert len(line) <= MAX_MESSAGE_CHARS + 40, len(line)
    for n in needles:
        assert n in line, f"{n!r} not in {line!r}"
    return line


def doctor_agrees(res: Result, run_line: str, other_fails: Sequence[str] = ()) -> None:
    """``edge doctor`` on a setup ``edge run`` refused with ``run_line``: the same line and exit 2 when it cannot
    load the file either, else exit 1 and one FAIL line carrying the message (``other_fails``: checks that may
    also fail, e.g. the broker on a closed port)."""
    assert not res.hung and res.exc is None, res.exc and "".join(traceback.format_exception(res.exc))
    assert "Traceback" not in res.err + res.out, res.err + res.out
    msg = run_line.split(": ", 1)[1]
    if res.rc == 2:
        assert res.err.strip() == run_line, (res.err, run_line)
        return
    assert res.rc == 1, (res.rc, res.out, res.err)
    assert res.err == "", res.err
    fails = [x for x in res.out.splitlines() if x.startswith("FAIL")]
    mine = [x for x in fails if msg in x]
    assert len(mine) == 1, (msg, res.out)
    others = [x for x in fails if x not in mine and not any(x.startswith(f"FAIL  {o}:") for o in other_fails)]
    assert not others, res.out


def write_config(tmp: Path, text: str | bytes, name: str = "c.yaml") -> Path:
    p = tmp / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


# -- 1. every config option, every kind of wrong value -------------------------------------------------------------
#: Generic cases that are good values for these keys: a command's argv is any program and arguments (checked
#: when the command is enabled: tests/test_alerts_config.py), and its default, [], is right while it is off.
GOOD_FOR_KEY = {("alerts.command.argv", "empty"), ("alerts.command.argv", "unknown_label")}
OPTION_CASES = [(key, name, value) for key, tp, meta in bi.leaf_options(Config)
                for name, value in bi.bad_values(tp, meta) if (key, name) not in GOOD_FOR_KEY]


@pytest.mark.parametrize("key, name, value", OPTION_CASES, ids=[f"{k}-{n}" for k, n, _ in OPTION_CASES])
def test_a_wrong_config_value_is_one_line_naming_the_file_and_key(bench: Bench, capfd: pytest.CaptureFixture[str],
                                                                  tmp_path: Path, key: str, name: str,
                                                                  value: Any) -> None:
    cfg = write_config(tmp_path, bi.config_text(key, value, {"audio": {"source": str(bench.good)}}))
    needle = "invalid YAML at line" if name == "digits" else key
    line = refused(cli(capfd, ["detect", bench.good, "--config", cfg, "--model", bench.tiny]), str(cfg), needle)
    doctor_agrees(cli(capfd, ["doctor", "--config", cfg, "--model", bench.tiny]), line)


# -- 2. malformed YAML ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(bi.YAML_CASES))
def test_a_malformed_config_file_is_one_line_never_a_hang(bench: Bench, capfd: pytest.CaptureFixture[str],
                                                          tmp_path: Path, case: str) -> None:
    content, needle = bi.YAML_CASES[case]
    cfg = write_config(tmp_path, content)
    t0 = time.monotonic()
    line = refused(cli(capfd, ["detect", bench.good, "--config", cfg, "--model", bench.tiny]), str(cfg), needle)
    assert time.monotonic() - t0 < 10.0, "took too long for a config file"
    doctor_agrees(cli(capfd, ["doctor", "--config", cfg, "--model", bench.tiny]), line)


@pytest.mark.parametrize("case", sorted(bi.OVERRIDE_CASES))
def test_a_command_line_flag_never_hides_a_wrong_section(bench: Bench, capfd: pytest.CaptureFixture[str],
                                                         tmp_path: Path, case: str) -> None:
    content, args, needle = bi.OVERRIDE_CASES[case]
    cfg = write_config(tmp_path, content)
    argv = [a.format(good=bench.good) for a in args] + ["--config", cfg, "--model", bench.tiny]
    refused(cli(capfd, argv), str(cfg), needle)


# -- 3. special paths, for every file a person names ---------------------------------------------------------------
def _path_case(bench: Bench, tmp: Path, target: str, bad: str) -> tuple[list[Any], list[str], list[Any] | None,
                                                                          Sequence[str]]:
    """``(edge args, needles, doctor args or None, doctor checks that may also fail)`` for ``bad`` at ``target``."""
    g, tiny = bench.good, bench.tiny
    base = {"audio": {"source": str(g)}}

    def config(tree: dict[str, Any]) -> Path:
        return write_config(tmp, json.dumps(tree))

    if target == "--config":
        return ["detect", g, "--config", bad, "--model", tiny], [bi.shown(bad)], \
            ["doctor", "--config", bad, "--model", tiny], ()
    if target == "--model":
        return ["detect", g, "--model", bad], [bi.shown(bad)], \
            ["doctor", "--config", config(base), "--model", bad], ()
    if target == "FILE":
        return ["detect", bad, "--model", tiny], [bi.shown(bad)], None, ()
    if target == "--source":
        return ["run", "--source", bad, "--model", tiny], [bi.shown(bad)], None, ()
    if target == "audio.source":
        c = config({"audio": {"source": bad}})
        return ["run", "--config", c, "--model", tiny], [bi.shown(bad)], None, ()  # doctor: SKIP (see doctor.py)
    if target == "model.path":
        c = config({**base, "model": {"path": bad}})
        return ["detect", g, "--config", c], [bi.shown(bad)], ["doctor", "--config", c], ()
    if target == "detector.home_background":
        c = config({**base, "detector": {"home_background": bad}})
        return ["detect", g, "--config", c, "--model", bench.proto], [str(c), target, bi.shown(bad)], \
            ["doctor", "--config", c, "--model", bench.proto], ()
    if target == "privacy.clips_dir":
        c = config({**base, "privacy": {"capture_clips": True, "clips_dir": bad}})
        return ["run", "--config", c, "--model", tiny], [str(c), target, bi.shown(bad)], \
            ["doctor", "--config", c, "--model", tiny], ()
    if target in ("mqtt.password_file", "mqtt.tls.ca_file", "mqtt.tls.cert_file", "outbox.path"):
        m = bench.mqtt(tmp)
        if target == "mqtt.password_file":
            del m["mqtt"]["password"]
            m["mqtt"]["password_file"] = bad
        elif target == "outbox.path":
            m["outbox"]["path"] = bad
        else:
            key = target.split(".")[-1]
            m["mqtt"]["tls"] = {"enabled": True, key: bad, **({"key_file": str(g)} if key == "cert_file" else {})}
        c = config({**base, **m})
        return ["run", "--config", c, "--model", tiny], [str(c), target, bi.shown(bad)], \
            ["doctor", "--config", c, "--model", tiny], ("broker",) if target == "outbox.path" else ()
    if target == "--manifest":
        return ["eval-clips", "--manifest", bad, "--model", tiny], [bi.shown(bad)], None, ()
    raise AssertionError(target)


PATH_TARGETS = ("--config", "--model", "FILE", "--source", "audio.source", "model.path", "detector.home_background",
                "privacy.clips_dir", "mqtt.password_file", "mqtt.tls.ca_file", "mqtt.tls.cert_file", "outbox.path",
                "--manifest")
#: where a kind of path is fine: a folder to write clips into is created; so is an outbox file
PATH_FINE = {"privacy.clips_dir": bi.FOLDER_OK, "outbox.path": ("missing", "newline")}
PATH_CASES = [(t, k) for t in PATH_TARGETS for k in bi.PATH_KINDS if k not in PATH_FINE.get(t, ())]


@pytest.mark.parametrize("target, kind", PATH_CASES, ids=[f"{t}-{k}" for t, k in PATH_CASES])
def test_a_path_that_is_not_a_usable_file_is_one_line_never_a_traceback_or_hang(
        bench: Bench, capfd: pytest.CaptureFixture[str], tmp_path: Path, target: str, kind: str) -> None:
    bad = bench.path(kind, target.strip("-").replace(".", "_"))
    args, needles, doctor, other_fails = _path_case(bench, tmp_path, target, bad)
    fifos = [bad] if kind == "fifo" else []
    line = refused(cli(capfd, args, fifos), *needles)
    if doctor is not None:
        doctor_agrees(cli(capfd, doctor, fifos), line, other_fails)


# -- 4. broken model contracts -------------------------------------------------------------------------------------
CONTRACT_CASES = sorted(bi.contract_cases({"frontend": dict.fromkeys(FrontendParams.__dataclass_fields__)}))


@pytest.mark.parametrize("case", CONTRACT_CASES)
def test_a_broken_model_contract_is_one_line_naming_the_model_and_key_in_every_command(
        bench: Bench, capfd: pytest.CaptureFixture[str], tmp_path: Path, case: str) -> None:
    spec, needle = bi.contract_cases(bench.base_contract)[case]
    model = bi.write_model_with_contract(bench.onnx_model, bi.contract_text(bench.base_contract, spec),
                                         tmp_path / "broken.onnx")
    line = refused(cli(capfd, ["detect", bench.good, "--model", model]), str(model), needle)
    cfg = write_config(tmp_path, json.dumps({"audio": {"source": str(bench.good)}}))
    doctor_agrees(cli(capfd, ["doctor", "--config", cfg, "--model", model]), line)
    refused(cli(capfd, ["eval-clips", "--manifest", _manifest(tmp_path, bench.good), "--model", model]), str(model))


def _manifest(tmp: Path, wav: Path) -> Path:
    p = tmp / "m.csv"
    p.write_text(f"path,label\n{wav},mid_tone\n")
    return p


# -- 5. audio nobody can read --------------------------------------------------------------------------------------
def _audio_cases(tmp: Path, tone: np.ndarray) -> dict[str, bytes]:
    cases = bi.audio_cases(tone)
    cases.update(bi.flac_cases(tone, tmp))
    cases["mp3_real"] = bi.mp3_file(tone, tmp)
    return cases


AUDIO_CASES = sorted([*bi.audio_cases(np.zeros(SR, np.float32)), *bi.FLAC_CASES, "mp3_real"])


@pytest.fixture(scope="module")
def audio_files(bench: Bench) -> dict[str, Path]:
    folder = bench.dir / "audio"
    folder.mkdir()
    return {name: _write(folder / f"{name}.audio", data) for name, data in _audio_cases(folder, bench.tone).items()}


def _write(p: Path, data: bytes) -> Path:
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("command", ["detect", "run"])
@pytest.mark.parametrize("case", AUDIO_CASES)
def test_an_unreadable_audio_file_is_one_line_and_exit_2_in_both_commands(
        bench: Bench, audio_files: dict[str, Path], capfd: pytest.CaptureFixture[str], case: str,
        command: str) -> None:
    path = audio_files[case]
    args = ["detect", path] if command == "detect" else ["run", "--source", path]
    # capfd: a C library writing on file descriptor 2 (libmpg123 for MP3) counts as a second line
    refused(cli(capfd, [*args, "--model", bench.tiny]), str(path))


@pytest.mark.parametrize("command", ["detect", "run"])
def test_a_channel_the_file_lacks_is_exit_2_in_both_commands(bench: Bench, capfd: pytest.CaptureFixture[str],
                                                             tmp_path: Path, command: str) -> None:
    cfg = write_config(tmp_path, "audio:\n  channel: 3\n")
    args = ["detect", bench.good] if command == "detect" else ["run", "--source", bench.good]
    refused(cli(capfd, [*args, "--config", cfg, "--model", bench.tiny]), str(bench.good), "audio.channel 3")


# -- 6. manifests --------------------------------------------------------------------------------------------------
MANIFESTS: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "lacks the column"),
    "header_only": (b"path,label\n", "no rows"),
    "no_label_column": (b"path,kind\nx.wav,a\n", "lacks the column(s) label"),
    "short_row": (b"path,label\nx.wav\n", "fewer fields"),
    "empty_path": (b"path,label\n,mid_tone\n", "empty path"),
    "latin1": (b"path,label\ncaf\xe9.wav,mid_tone\n", "not UTF-8"),
    "nul_byte": (b"path,label\nx\x00.wav,mid_tone\n", "NUL byte"),
    "huge_field": (b'path,label\n"' + b"a" * 200_000 + b'",mid_tone\n', "not a readable CSV"),
    "newline_in_path": (b'path,label\n"a\nb.wav",mid_tone\n', "a\\nb.wav: audio file not found"),
    "long_name_in_path": (b"path,label\n" + b"n" * 300 + b".wav,mid_tone\n", "longer than the 255 bytes"),
    "fifo_in_path": (b"path,label\nFIFO,mid_tone\n", "named pipe"),
    "dev_zero_in_path": (b"path,label\n/dev/zero,mid_tone\n", "character device"),
    "folder_in_path": (b"path,label\n.,mid_tone\n", "not a regular file"),
    "unknown_labels": (b"path,label\nx.wav,giraffe\n", "no clip has a label"),
    "binary": (bytes(range(256)) * 4, "not"),
}


@pytest.mark.parametrize("case", sorted(MANIFESTS))
def test_a_broken_manifest_is_one_line(bench: Bench, capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                       case: str) -> None:
    content, needle = MANIFESTS[case]
    fifo = tmp_path / "FIFO"
    os.mkfifo(fifo)
    p = write_config(tmp_path, content, "manifest.csv")
    refused(cli(capfd, ["eval-clips", "--manifest", p, "--model", bench.tiny], [str(fifo)]), needle)


# -- 7. home-background files --------------------------------------------------------------------------------------
HOME_CASES = sorted(bi.home_cases(64, "x"))


@pytest.mark.parametrize("case", HOME_CASES)
def test_a_tampered_home_background_file_is_one_line_at_start(bench: Bench, capfd: pytest.CaptureFixture[str],
                                                              tmp_path: Path, case: str) -> None:
    data, needle = bi.home_cases(64, bench.proto_fingerprint)[case]
    home = _write(tmp_path / "home.npz", data)
    cfg = write_config(tmp_path, json.dumps({"audio": {"source": str(bench.good)},
                                             "detector": {"home_background": str(home)}}))
    line = refused(cli(capfd, ["detect", bench.good, "--config", cfg, "--model", bench.proto]),
                   str(cfg), "detector.home_background", str(home), needle)
    doctor_agrees(cli(capfd, ["doctor", "--config", cfg, "--model", bench.proto]), line)


# -- 8. setups only `edge run` used to refuse: `edge doctor` fails for each --------------------------------------
PARITY: dict[str, tuple[dict[str, Any], str, str]] = {
    # name: (config without audio.source, model: tiny | proto, text the message must contain)
    "threshold_unknown_label": ({"detector": {"thresholds": {"dog": 0.5}}}, "tiny", "detector.thresholds.dog"),
    "release_unknown_label": ({"detector": {"releases": {"dog": 1.0}}}, "tiny", "detector.releases.dog"),
    "label_unknown": ({"detector": {"labels": ["dog"]}}, "tiny", "detector.labels[0]"),
    "hop_too_small": ({"model": {"hop_s": 0.01}}, "tiny", "model.hop_s"),
    "hop_not_a_multiple": ({"model": {"hop_s": 0.15}}, "tiny", "model.hop_s"),
    "k_over_model_n": ({"detector": {"persistence_k": 4}}, "tiny", "detector.persistence_k"),
    "n_under_model_k": ({"detector": {"persistence_n": 1}}, "tiny", "detector.persistence_k"),
    "home_without_prototypes": ({"detector": {"home_background": "/nonexistent.npz"}}, "tiny",
                                "detector.home_background: the model carries no prototypes"),
    "home_missing": ({"detector": {"home_background": "/nonexistent.npz"}}, "proto", "no such file"),
    "clips_dir_a_device": ({"privacy": {"capture_clips": True, "clips_dir": "/dev/null"}}, "tiny",
                           "privacy.clips_dir"),
    "clips_dir_in_proc": ({"privacy": {"capture_clips": True, "clips_dir": "/proc/edge-clips"}}, "tiny",
                          "privacy.clips_dir"),
    "clips_dir_under_a_file": ({"privacy": {"capture_clips": True, "clips_dir": "/etc/hostname/clips"}}, "tiny",
                               "privacy.clips_dir"),
    # with MQTT on (a closed port: doctor's broker check fails too, and may)
    "outbox_under_proc": ({"outbox": {"path": "/proc/edge/outbox.sqlite"}}, "tiny", "outbox.path"),
    "outbox_a_folder": ({"outbox": {"path": "/tmp"}}, "tiny", "outbox.path"),
    "outbox_a_device": ({"outbox": {"path": "/dev/null"}}, "tiny", "outbox.path"),
}


@pytest.mark.parametrize("case", sorted(PARITY))
def test_doctor_fails_with_one_line_for_every_setup_run_refuses(bench: Bench, capfd: pytest.CaptureFixture[str],
                                                                tmp_path: Path, case: str) -> None:
    tree, which, needle = PARITY[case]
    model = bench.tiny if which == "tiny" else bench.proto
    mqtt = {**bench.mqtt(tmp_path), **tree} if "outbox" in tree else tree
    cfg = write_config(tmp_path, json.dumps({"audio": {"source": str(bench.good)}, **mqtt}))
    line = refused(cli(capfd, ["run", "--config", cfg, "--model", model]), str(cfg), needle)
    doctor_agrees(cli(capfd, ["doctor", "--config", cfg, "--model", model]), line,
                  ("broker",) if "outbox" in tree else ())


def test_doctor_passes_what_run_accepts_and_names_the_config_check(bench: Bench, capfd: pytest.CaptureFixture[str],
                                                                   tmp_path: Path) -> None:
    cfg = write_config(tmp_path, json.dumps({"audio": {"source": str(bench.good)},
                                             "detector": {"labels": ["mid_tone"]}}))
    res = cli(capfd, ["doctor", "--config", cfg, "--model", bench.tiny])
    assert res.rc == 0 and res.err == "", res.out + res.err
    assert f"PASS  config: {cfg}: as `edge run` checks it with this model: 1 of 3 labels on" in res.out, res.out


# -- 9. a rejected start loses nothing queued ----------------------------------------------------------------------
REJECTED_STARTS: dict[str, tuple[dict[str, Any], str]] = {
    "model_missing": ({"model": {"path": "/nonexistent.onnx"}}, "model file not found"),
    "audio_folder": ({"audio": {"source": "/"}}, "not a regular file"),
    "unknown_label": ({"detector": {"thresholds": {"dog": 0.5}}}, "detector.thresholds.dog"),
    "empty_labels": ({"detector": {"labels": []}}, "detector.labels"),
    "home_without_prototypes": ({"detector": {"home_background": "/x.npz"}}, "no prototypes"),
    "password_fifo": ({"mqtt": {"password_file": "FIFO"}}, "named pipe"),
    "password_dev_zero": ({"mqtt": {"password_file": "/dev/zero"}}, "character device"),
    "tls_ca_missing": ({"mqtt": {"tls": {"enabled": True, "ca_file": "/nonexistent.pem"}}}, "mqtt.tls.ca_file"),
    "clips_dev_null": ({"privacy": {"capture_clips": True, "clips_dir": "/dev/null"}}, "privacy.clips_dir"),
    "hop_too_small": ({"model": {"hop_s": 0.01}}, "model.hop_s"),
    "bad_value": ({"mqtt": {"port": 70000}}, "mqtt.port"),
}


def _seed(path: Path, n: int = 5) -> list[str]:
    ob = Outbox(path)
    payloads = [json.dumps({"queued": i, "label": "smoke_alarm"}) for i in range(n)]
    for p in payloads:
        ob.put(p)
    ob.close()
    return payloads


def _queued(path: Path) -> list[str]:
    ob = Outbox(path)
    try:
        return [r.payload for r in ob.pending(limit=100_000)]
    finally:
        ob.close()


@pytest.mark.parametrize("case", sorted(REJECTED_STARTS))
def test_a_rejected_start_keeps_every_queued_event(bench: Bench, capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                                   case: str) -> None:
    change, needle = REJECTED_STARTS[case]
    tree: dict[str, Any] = {"audio": {"source": str(bench.good)}, **bench.mqtt(tmp_path)}
    fifo = tmp_path / "FIFO"
    os.mkfifo(fifo)
    for section, values in change.items():
        values = {k: (str(fifo) if v == "FIFO" else v) for k, v in values.items()}
        if section == "mqtt" and "password_file" in values:
            del tree["mqtt"]["password"]
        tree[section] = {**tree.get(section, {}), **values}
    seeded = _seed(tmp_path / "outbox.sqlite")
    cfg = write_config(tmp_path, json.dumps(tree))
    model = [] if "model" in change else ["--model", bench.tiny]  # --model would replace model.path
    refused(cli(capfd, ["run", "--config", cfg, *model], [str(fifo)]), needle)
    assert _queued(tmp_path / "outbox.sqlite") == seeded


# -- 10. special files at start, in a real process -----------------------------------------------------------------
START_TARGETS = ("--config", "--model", "FILE", "--source", "mqtt.password_file", "mqtt.tls.ca_file",
                 "detector.home_background", "outbox.path", "privacy.clips_dir", "--manifest")
START_CASES = [(t, k) for t in START_TARGETS for k in ("dev_zero", "fifo")
               if not (t == "privacy.clips_dir" and k == "fifo")]


def _limit_memory() -> None:  # a reader that ignores its bound on /dev/zero dies here, not on the machine
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def _start_case(bench: Bench, tmp: Path, target: str, kind: str) -> tuple[Any, ...]:
    """One start case as its own ``python -m edge`` process: ``(rc or "hang", stdout, stderr, needles)``."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    bad = bi.special_path(kind, tmp / "p", bench.keep)
    args, needles, _doctor, _other = _path_case(bench, tmp, target, bad)
    try:
        r = subprocess.run([sys.executable, "-m", "edge", *map(str, args)], capture_output=True, text=True,
                           env=env, cwd=ROOT, timeout=60, preexec_fn=_limit_memory)
        return r.returncode, r.stdout, r.stderr, needles
    except subprocess.TimeoutExpired as e:
        return "hang", e.stdout, e.stderr, needles


@pytest.mark.parametrize("target, kind", START_CASES, ids=[f"{t}-{k}" for t, k in START_CASES])
def test_a_device_or_pipe_at_start_is_one_line_in_a_real_process(background: Background, target: str,
                                                                 kind: str) -> None:
    rc, out, err, needles = background.starts[target, kind].result()
    refused(Result(None if rc == "hang" else rc, out or "", err or "", None, rc == "hang"), *needles)


# -- 11. clips: a folder that fails while listening is a warning, not a traceback ----------------------------------
def test_a_clip_that_cannot_be_written_while_listening_is_one_warning_not_a_traceback(
        capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    import gc

    from edge.core.events import Event
    from edge.publish.clips import ClipRecorder

    rec = ClipRecorder(Path("/proc/self"), SR, clip_s=0.5)  # a folder where nothing can be created, even as root
    rec.feed(np.zeros(SR, np.float32))
    ev = Event(id="e" * 32, label="smoke_alarm", state="on", onset=0.2, offset=None, onset_time=1.0,
               offset_time=None, score=0.9, mean_score=0.9, level_dbfs=-20.0, model_version="t")
    with caplog.at_level(logging.WARNING, "edge.clips"):
        rec.trigger(ev)
        rec.feed(np.zeros(SR, np.float32))
        gc.collect()  # wave's half-built writer raised AttributeError from __del__ here
    _out, err = capfd.readouterr()
    assert "Traceback" not in err and "AttributeError" not in err and "Exception ignored" not in err, err
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and messages[0].startswith("clip capture: cannot write to /proc/self ("), messages


# -- 12. SIGHUP with every kind of bad file: the listener keeps listening ------------------------------------------
def _alarm_recording(path: Path) -> Path:
    """50 s of room noise with T3 smoke alarms at 1 s (one period), 17 s, 27 s and 37 s (two periods each)."""
    from edge.synth.alarms import AlarmVariant, pattern_period, synth_alarm
    from edge.synth.demo import room_noise

    rng = np.random.default_rng(22)
    n = 50 * SR
    x = room_noise(n, rng)
    v = AlarmVariant(f0=3150.0, harmonics=(1.0, 0.25), level_dbfs=-14.0, rt60_s=0.4, wet=0.3)
    for start, reps in ((1.0, 1), (17.0, 2), (27.0, 2), (37.0, 2)):
        a = synth_alarm("T3", reps * pattern_period("T3"), SR, rng, v)
        i = int(start * SR)
        x[i:i + a.shape[0]] += a[: n - i]
    return write_wav(path, np.clip(x, -1.0, 1.0), SR)


def _reload_cases(fingerprint: str) -> list[tuple[str, Any, list[str]]]:
    """``(name, what to put at the config path, texts the rejection line must contain)``.

    What to put: YAML text or bytes (written over the config file), or ``("path", kind)`` (the config path
    becomes that special file), or ``("home", bytes | kind)`` (a valid config whose home background is bad).
    Where the file parses, it also disables smoke_alarm: were any of it applied, the next alarm would be missed.
    """
    off = "detector:\n  labels: [co_alarm]\n"
    cases: list[tuple[str, Any, list[str]]] = [
        ("wrong_type", off + "  threshold: high\n", ["detector.threshold"]),
        ("unknown_key", off + "  treshold: 0.5\n", ["detector.treshold: unknown key"]),
        ("unknown_label", off + "  thresholds: {dog: 0.5}\n", ["detector.thresholds.dog"]),
        ("empty_labels", "detector:\n  labels: []\n", ["detector.labels"]),
        ("k_over_model_n", off + "  persistence_k: 9\n", ["detector.persistence_k"]),
        ("deep_nesting", "detector: " + "[" * 5000 + "]" * 5000 + "\n", ["nested deeper"]),
        ("deep_unclosed", off + "x: " + "{a: " * 20000 + "\n", ["invalid YAML"]),
        ("alias_bomb", off + bi.billion_laughs("  threshold: "), ["detector.threshold"]),
        ("too_large", off + "#" * 300_000 + "\n", ["more than the"]),
        ("not_utf8", off.encode() + b"# caf\xe9\n", ["not UTF-8"]),
        ("binary", bytes(range(256)) * 64, ["not UTF-8"]),
        ("huge_int", off + "  persistence_k: " + "9" * 5000 + "\n", ["invalid YAML at line 3"]),
        ("bad_timestamp", off + "  threshold: 2024-13-45\n", ["invalid YAML at line 3"]),
        ("section_scalar", "detector: 5\n", ["detector: expected a mapping"]),
        ("newline_key", off + '  "thresh\\nold": 1\n', ["thresh\\nold"]),
        ("python_tag", off + "  threshold: !!python/object:os.system {}\n", ["invalid YAML"]),
        ("two_documents", off + "---\n" + off, ["invalid YAML"]),
        ("config_fifo", ("path", "fifo"), ["named pipe"]),
        ("config_folder", ("path", "folder"), ["not a regular file (a folder)"]),
        ("config_dev_zero", ("path", "dev_zero"), ["character device"]),
        ("config_missing", ("path", "missing"), ["file not found"]),
        ("config_loop", ("path", "loop"), ["symbolic links"]),
        ("config_socket", ("path", "socket"), ["socket"]),
    ]
    for name, (data, needle) in bi.home_cases(128, fingerprint).items():
        cases.append((f"home_{name}", ("home", data), ["detector.home_background", needle]))
    for kind in ("missing", "fifo", "dev_zero", "folder", "nul", "long_name", "long_path", "loop"):
        cases.append((f"home_path_{kind}", ("home", kind), ["detector.home_background"]))
    return cases


def test_a_reload_with_any_bad_file_keeps_the_listener_listening_with_its_old_config_and_the_next_alarm_comes(
        background: Background) -> None:
    rejected = background.reload.result()  # every check is in _reload_scenario (it runs while other cases do)
    assert len(rejected) >= 50, rejected


def _reload_scenario(tmp_path: Path) -> list[str]:
    """A real ``edge run --realtime`` on the shipped model, reloaded with every kind of bad file (see
    :func:`_reload_cases`); returns the names of the rejected reloads. Raises AssertionError on any finding."""
    from edge.core.paths import bundled_model
    from edge.detect.home_background import fingerprint
    from edge.model.contract import read_contract

    wav = _alarm_recording(tmp_path / "alarms.wav")
    outbox = tmp_path / "outbox.sqlite"
    seeded = _seed(outbox)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    good = ("detector:\n  alarm_release_s: 2.0\n  release_s: 0.5\n"
            f"mqtt:\n  enabled: true\n  host: 127.0.0.1\n  port: {port}\n  reconnect_max_s: 60\n"
            f"outbox:\n  path: {outbox}\noutput:\n  stdout: true\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(good)
    home = tmp_path / "home.npz"
    keep: list[Any] = []
    cases = _reload_cases(fingerprint(read_contract(bundled_model())))
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1", PYTHONFAULTHANDLER="1")
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(cfg), "--source", str(wav),
                             "--realtime"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=ROOT)
    out, err = Lines(proc.stdout), Lines(proc.stderr)
    rejected: list[str] = []
    try:
        assert out.wait(r'"smoke_alarm".*"state": ?"on"', 30), err.text()
        for name, what, needles in cases:
            if cfg.is_symlink() or cfg.exists():
                cfg.unlink()
            if isinstance(what, tuple) and what[0] == "path":  # the config path itself becomes that
                if what[1] != "missing":
                    os.symlink(bi.special_path(what[1], tmp_path / "special", keep), cfg)
                needles = [str(cfg), *needles]
            elif isinstance(what, tuple) and what[0] == "home":
                if isinstance(what[1], bytes):
                    home.write_bytes(what[1])
                    target = str(home)
                else:
                    target = bi.special_path(what[1], tmp_path / "special", keep)
                cfg.write_text("detector:\n  labels: [co_alarm]\n  home_background: " + json.dumps(target) + "\n")
                needles = [str(cfg), *needles]
            else:
                cfg.write_bytes(what if isinstance(what, bytes) else what.encode())
                needles = [str(cfg), *needles]
            before = len([1 for _, x in err.lines if "config reload rejected" in x])
            t0 = time.monotonic()
            proc.send_signal(signal.SIGHUP)
            line = err.wait("config reload rejected", 10, after=t0)
            assert line is not None, f"{name}: no rejection logged\n{err.text()}"
            time.sleep(0.05)
            now = [x for _, x in err.lines if "config reload rejected" in x]
            assert len(now) == before + 1, f"{name}: {now[before:]}"
            assert proc.poll() is None, f"{name}: the listener stopped\n{err.text()}"
            for n in needles:
                assert n in line or bi.shown(n) in line, f"{name}: {n!r} not in {line!r}"
            rejected.append(name)
        t_last = time.monotonic()
        # The running configuration stayed (smoke_alarm enabled): the next alarm is published.
        assert out.wait(r'"smoke_alarm".*"state": ?"on"', 30, after=t_last), \
            f"no smoke alarm after {len(rejected)} rejected reloads\n{err.text()}"
        if cfg.is_symlink() or cfg.exists():
            cfg.unlink()
        cfg.write_text(good.replace("release_s: 0.5", "release_s: 0.6"))
        proc.send_signal(signal.SIGHUP)
        assert err.wait("configuration reloaded", 10, after=t_last), err.text()  # the reload path still works
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for s in keep:
            s.close()
    assert rc == 0, err.text()
    assert "Traceback" not in err.text(), err.text()
    assert len(rejected) == len(cases)
    # Every stderr line is one log record (nothing printed by a library); one per rejected reload.
    logged = [x for _, x in err.lines]
    assert all(x[:4].isdigit() and " edge." in x for x in logged), err.text()
    assert sum("config reload rejected" in x for x in logged) == len(cases)
    queued = _queued(outbox)
    assert queued[: len(seeded)] == seeded, "a queued event was lost"
    assert any('"smoke_alarm"' in q and "queued" not in q for q in queued)  # the alarms went to the outbox too
    return rejected
