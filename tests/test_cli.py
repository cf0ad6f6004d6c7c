"""The ``edge`` command as a user runs it: exit codes, one-line errors, no tracebacks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tinymodel import build_tiny_model

ROOT = Path(__file__).resolve().parent.parent


def edge(*args, timeout=60):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "edge", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def assert_one_line_error(r, code, message):
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [f"edge: {message}"], r.stderr


def test_detect_prints_one_json_line_per_sound(tiny_model, burst_wav):
    path = burst_wav("b.wav", [(500.0, 1.0, 2.0), (2000.0, 3.0, 3.5)], 4.0)
    r = edge("detect", path, "--model", tiny_model)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["label"] for x in lines] == ["low_tone", "high_tone"]
    for x, (a, b) in zip(lines, [(1.0, 2.0), (3.0, 3.5)], strict=True):
        assert abs(x["onset"] - a) <= 0.1 and b <= x["offset"] + 0.02 <= b + 0.27 and x["score"] > 0.9
        assert x["state"] == "off" and x["id"] and x["onset_iso"].endswith("Z")


def test_run_on_a_file_emits_onset_and_offset_lines(tiny_model, burst_wav, tmp_path):
    path = burst_wav("r.wav", [(1000.0, 0.5, 1.2)], 1.5)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("detector:\n  release_s: 0.1\n")
    r = edge("run", "--config", cfg, "--source", path, "--model", tiny_model, "--realtime", "--verbose")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [(x["label"], x["state"]) for x in lines] == [("mid_tone", "on"), ("mid_tone", "off")]
    assert lines[0]["id"] == lines[1]["id"]
    assert "edge: status " in r.stderr and "Traceback" not in r.stderr


def test_bad_config_value_exits_2_with_the_exact_message(tiny_model, burst_wav, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("detector:\n  thresholds:\n    dog_bark: high\n")
    r = edge("detect", burst_wav("x.wav", [], 0.5), "--config", cfg, "--model", tiny_model)
    assert_one_line_error(r, 2, f"{cfg}: detector.thresholds.dog_bark: expected a number in [0, 1], got 'high'")


def test_unknown_config_key_exits_2(tmp_path, tiny_model):
    cfg = tmp_path / "typo.yaml"
    cfg.write_text("detector:\n  treshold: 0.5\n")
    r = edge("run", "--config", cfg, "--model", tiny_model)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"edge: {cfg}: detector.treshold: unknown key (known keys: labels, threshold,")


def test_missing_config_file_exits_2(tmp_path):
    r = edge("run", "--config", tmp_path / "none.yaml")
    assert_one_line_error(r, 2, f"{tmp_path / 'none.yaml'}: file not found")


def test_missing_model_exits_2(tmp_path, burst_wav):
    r = edge("detect", burst_wav("x.wav", [], 0.5), "--model", tmp_path / "gone.onnx")
    assert_one_line_error(r, 2, f"{tmp_path / 'gone.onnx'}: model file not found")


def test_corrupt_model_exits_2(tmp_path, burst_wav):
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 50)
    r = edge("detect", burst_wav("x.wav", [], 0.5), "--model", bad)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith(f"edge: {bad}: not a loadable ONNX model")


def test_model_without_contract_exits_2(tmp_path, burst_wav):
    bare = build_tiny_model(tmp_path / "bare.onnx", with_contract=False)
    r = edge("detect", burst_wav("x.wav", [], 0.5), "--model", bare)
    assert_one_line_error(r, 2, f"{bare}: ONNX model has no 'edge.contract' metadata (not an edge model)")


@pytest.mark.parametrize("content", [None, b"not audio" * 100])
def test_unreadable_audio_exits_2(tmp_path, tiny_model, content):
    path = tmp_path / "in.wav"
    if content is not None:
        path.write_bytes(content)
    r = edge("detect", path, "--model", tiny_model)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith(f"edge: {path}: ")


@pytest.mark.parametrize("cmd", [[], ["run"], ["detect"], ["devices"]])
def test_help_on_every_command(cmd):
    r = edge(*cmd, "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: edge")


def test_devices_lists_inputs_or_says_there_are_none():
    r = edge("devices")
    assert r.returncode == 0, r.stderr
    out = r.stdout.strip()
    assert out == "No audio input devices found." or all("ch," in line for line in out.splitlines())


def test_cli_parser_with_every_subcommand_imports_nothing_heavy():
    code = ("import sys, edge.cli.app; edge.cli.app.build_parser();"
            "import importlib; [importlib.import_module(m).register for m in edge.cli.app.EXTRA_COMMAND_MODULES];"
            "heavy = [m for m in ('numpy', 'onnxruntime', 'sounddevice', 'soxr', 'torch', 'matplotlib')"
            " if m in sys.modules];"
            "print(heavy)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr


@pytest.mark.parametrize(("flag", "message"), [
    (("--device", "banana"), "train: --device: expected a torch device such as 'cpu' or 'cuda', got 'banana'"),
    (("--threads", "0"), "train: --threads: expected an integer >= 1, got 0"),
])
def test_train_refuses_a_bad_device_or_thread_count_in_one_line(tmp_path, flag, message):
    pytest.importorskip("torch", reason="training needs the 'train' extra (torch)")
    (tmp_path / "manifest.csv").write_text(
        "path,label,fold,duration_s,source,license,original_name\naudio/x.flac,dog_bark,1,1.0,s,CC0-1.0,x\n")
    assert_one_line_error(edge("train", "--data", tmp_path, "--out", tmp_path / "out", *flag), 2, message)


def test_run_from_the_microphone_without_the_portaudio_library_is_one_line(tmp_path, tiny_model):
    # libportaudio2 missing is what `import sounddevice` raises OSError for; a stand-in module
    # raising exactly that replaces the real one (we cannot uninstall a system library here).
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "sounddevice.py").write_text('raise OSError("PortAudio library not found")\n')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(fake), str(ROOT)]))
    r = subprocess.run([sys.executable, "-m", "edge", "run", "--source", "mic", "--model", str(tiny_model)],
                       capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert_one_line_error(r, 1, "microphone: cannot load the PortAudio library (PortAudio library not found); "
                                "install it (e.g. `sudo apt install libportaudio2`) or use a file source")


def test_model_whose_contract_names_fewer_labels_than_it_scores_exits_2(tmp_path, burst_wav):
    import dataclasses

    import onnx

    from edge.model.contract import read_contract, write_contract

    path = build_tiny_model(tmp_path / "m.onnx")
    c = read_contract(path)
    model = onnx.load(str(path))
    write_contract(model, dataclasses.replace(c, labels=c.labels[:2]))  # a hand-edited contract
    onnx.save(model, str(path))
    r = edge("detect", burst_wav("x.wav", [], 0.5), "--model", path)
    assert_one_line_error(r, 2, f"{path}: its contract names 2 labels but the graph scores {len(c.labels)}")


@pytest.mark.parametrize("cmd, code", [("run", 2), ("detect", 2)])  # a file's problem is bad input (issue 22)
def test_an_empty_or_too_short_audio_file_is_one_line_not_a_silent_success(tmp_path, tiny_model, wav_writer,
                                                                           cmd, code):
    import numpy as np

    empty = wav_writer("empty.wav", np.zeros(0, np.float32), 16000, "s16")
    short = wav_writer("short.wav", np.zeros(800, np.float32), 16000, "s16")
    args = ("--source",) if cmd == "run" else ()
    r = edge(cmd, *args, empty, "--model", tiny_model)
    assert_one_line_error(r, code, f"{empty}: no audio (the file holds 0 samples)")
    r = edge(cmd, *args, short, "--model", tiny_model)
    assert r.returncode == code and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith(f"edge: {short}: 0.050 s of audio is shorter than the model's ")
    assert r.stderr.rstrip().endswith(" s window: nothing to classify") and len(r.stderr.splitlines()) == 1


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux) to make stdout fail")
def test_detect_into_a_full_disk_is_one_line_and_exit_1(tiny_model, burst_wav):
    path = burst_wav("f.wav", [(500.0, 1.0, 2.0)], 3.0)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "edge", "detect", str(path), "--model", str(tiny_model)],
                           stdout=full, stderr=subprocess.PIPE, text=True, timeout=60, cwd=ROOT, env=env)
    assert_one_line_error(r, 1, "<stdout>: cannot write events: No space left on device")
