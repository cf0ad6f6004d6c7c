"""Teaching a sound (``edge enroll``): from files through the real listener, the stored file, a model change,
bad input, and Home Assistant discovery of taught sounds against a real broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from broker import mosquitto  # noqa: F401  (pytest fixture)
from tinymodel import build_tiny_model

from edge.capture.audiofile import write_wav

ROOT = Path(__file__).resolve().parent.parent
SR = 16000
CHIME_HZ = (3000.0, 3600.0)  # the taught sound: two partials no tiny-model label listens to


def edge(*args, state: Path, timeout: float = 60, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), STATE_DIRECTORY=str(state))
    return subprocess.run([sys.executable, "-m", "edge", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env, input=stdin)


def noise(n: int, rng: np.random.Generator, dbfs: float = -50.0) -> np.ndarray:
    return (rng.standard_normal(n) * 10 ** (dbfs / 20)).astype(np.float32)


def tone(freqs: tuple[float, ...], dur: float, dbfs: float = -20.0) -> np.ndarray:
    t = np.arange(int(dur * SR)) / SR
    x = sum(np.sin(2 * np.pi * f * t) for f in freqs)
    ramp = np.minimum(1.0, np.minimum(t, dur - t) / 0.01)
    x = x * ramp / np.sqrt(np.mean(x * x) + 1e-12) * 10 ** (dbfs / 20)
    return x.astype(np.float32)


def scene(path: Path, total: float, parts: list[tuple[tuple[float, ...], float, float, float]], seed: int) -> Path:
    """Noise bed of ``total`` s with tones ``(freqs, start, dur, dbfs)`` added."""
    rng = np.random.default_rng(seed)
    x = noise(int(total * SR), rng)
    for freqs, start, dur, dbfs in parts:
        y = tone(freqs, dur, dbfs)
        a = int(start * SR)
        x[a : a + y.shape[0]] += y
    write_wav(path, x, SR)
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny model with a negative bank built by the real command, five examples of a chime, a stream."""
    d = tmp_path_factory.mktemp("enrol")
    model = build_tiny_model(d / "tiny.onnx")
    # Ordinary sounds for the bank: noise, the labels' tones, other tones, in a homesounds-style manifest.
    corpus = d / "corpus"
    (corpus / "audio").mkdir(parents=True)
    rows = ["path,label,fold"]
    for i, freqs in enumerate([(), (500.0,), (1000.0,), (2000.0,), (700.0, 1400.0), (5000.0,), (250.0,)]):
        for j in range(3):
            parts = [(freqs, 0.3 + 0.2 * j, 1.0, -25.0 - 5 * j)] if freqs else []
            scene(corpus / "audio" / f"n{i}_{j}.wav", 2.0, parts, seed=100 + 10 * i + j)
            rows.append(f"audio/n{i}_{j}.wav,background,1")
    (corpus / "manifest.csv").write_text("\n".join(rows) + "\n")
    r = subprocess.run([sys.executable, "-m", "edge.train.negative_bank", str(model), "--data", str(corpus)],
                       capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert (d / "tiny.negatives.json").is_file()
    examples = []
    for k in range(5):  # the chime at different moments, lengths and levels
        examples.append(scene(d / f"chime{k}.wav", 2.0, [(CHIME_HZ, 0.4 + 0.2 * k, 0.4 + 0.05 * k, -18.0 - 2 * k)],
                              seed=k))
    stream = scene(d / "stream.wav", 9.0, [(CHIME_HZ, 1.0, 0.5, -20.0), (CHIME_HZ, 3.5, 0.45, -22.0),
                                            ((500.0,), 5.0, 0.6, -20.0), (CHIME_HZ, 7.0, 0.5, -24.0)], seed=42)
    return {"dir": d, "model": model, "stream": stream, **{f"ex{k}": p for k, p in enumerate(examples)}}


def _examples(s: dict[str, Path]) -> list[Path]:
    return [s[f"ex{k}"] for k in range(5)]


def test_enrol_from_files_then_the_listener_hears_the_taught_sound(setup, tmp_path: Path) -> None:
    state = tmp_path / "state"
    r = edge("enroll", "chime", "--model", setup["model"], "--source", *_examples(setup), state=state)
    assert r.returncode == 0, r.stderr
    assert "taught 'chime' from 5 example(s)" in r.stdout
    assert "negative bank tiny.negatives.json" in r.stderr  # found next to the model
    r = edge("detect", setup["stream"], "--model", setup["model"], state=state)
    assert r.returncode == 0, r.stderr
    events = [json.loads(x) for x in r.stdout.splitlines()]
    chimes = [e for e in events if e["label"] == "chime"]
    assert [round(e["onset"]) for e in chimes] == [1, 4, 7] or len(chimes) == 3, events
    for e, t in zip(chimes, (1.0, 3.5, 7.0), strict=True):
        assert abs(e["onset"] - t) <= 0.5 and e["state"] == "off" and 0.0 <= e["score"] <= 1.0
    # the model's own label still works beside it, and the 500 Hz tone is not the chime
    assert [e["label"] for e in events if e["label"] != "chime"] == ["low_tone"]
    r = edge("sounds", "--model", setup["model"], "list", state=state)
    assert r.returncode == 0 and r.stdout.startswith("chime: 5 examples"), r.stdout
    r = edge("sounds", "--model", setup["model"], "test", "chime", setup["ex0"], state=state)
    assert r.returncode == 0 and "chime: heard 1 time(s)" in r.stdout, r.stdout + r.stderr


def test_the_file_holds_embeddings_only_never_audio(setup, tmp_path: Path) -> None:
    state = tmp_path / "state"
    r = edge("enroll", "chime", "--model", setup["model"], "--source", *_examples(setup), state=state)
    assert r.returncode == 0, r.stderr
    f = state / "taught-sounds.json"
    doc = json.loads(f.read_text())
    assert set(doc) == {"format", "model", "sounds", "removed", "center"}
    s = doc["sounds"]["chime"]
    assert set(s) == {"examples", "threshold", "k", "dim", "prototypes", "calibration"}
    import base64

    # k unit vectors of the embedding size, at most 32: no room for the 5 x 2 s of audio (160,000 samples)
    values = np.frombuffer(base64.b64decode(s["prototypes"]), "<f2")
    assert values.size == s["k"] * s["dim"] and s["k"] <= 32 and s["dim"] == 64
    assert np.allclose(np.linalg.norm(values.reshape(s["k"], s["dim"]).astype(np.float32), axis=1), 1.0, atol=1e-2)
    assert len(doc["center"]) == 64
    numbers = sum(len(v) if isinstance(v, list) else 0 for v in s["calibration"].values())
    assert numbers <= 2 * 5  # the examples' regions (start, end) and nothing sample-like
    assert f.stat().st_size < 20_000


def test_sounds_taught_with_another_model_are_set_aside_and_doctor_says_so(setup, tmp_path: Path) -> None:
    state = tmp_path / "state"
    r = edge("enroll", "chime", "--model", setup["model"], "--source", *_examples(setup), state=state)
    assert r.returncode == 0, r.stderr
    other = build_tiny_model(tmp_path / "other.onnx", labels=("a_tone", "b_tone", "c_tone"), model_version="o-2")
    r = edge("detect", setup["stream"], "--model", other, state=state)
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "taught with another model" in lines[0] and "listening without them" in lines[0]
    labels = [json.loads(x)["label"] for x in r.stdout.splitlines()]
    assert labels == ["a_tone"]  # keeps listening with the model's own labels
    r = edge("doctor", "--model", other, "--listen", "0.1", state=state)
    fail = [x for x in r.stdout.splitlines() if x.startswith("FAIL  model")]
    assert r.returncode == 1 and fail and "taught with another model" in fail[0], r.stdout
    r = edge("doctor", "--model", setup["model"], "--listen", "0.1", state=state)
    assert "taught sounds: chime" in r.stdout, r.stdout


def test_a_taught_sound_under_a_model_labels_name_is_refused_by_run_and_by_doctor_alike(setup, tmp_path: Path
                                                                                        ) -> None:
    state = tmp_path / "state"
    r = edge("enroll", "chime", "--model", setup["model"], "--source", *_examples(setup), state=state)
    assert r.returncode == 0, r.stderr
    f = state / "taught-sounds.json"
    doc = json.loads(f.read_text())
    doc["sounds"]["low_tone"] = doc["sounds"].pop("chime")  # edited by hand: enroll refuses such a name
    f.write_text(json.dumps(doc))
    said = f"{f}: taught sound 'low_tone' has the name of a model label"
    r = edge("detect", setup["stream"], "--model", setup["model"], state=state)
    assert r.returncode == 2 and said in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = edge("doctor", "--model", setup["model"], "--listen", "0.1", state=state)
    fail = [x for x in r.stdout.splitlines() if x.startswith("FAIL  model")]
    assert r.returncode == 1 and fail and said in fail[0], r.stdout


@pytest.mark.parametrize("case", ["silence", "corrupt", "unknown_name_remove", "unknown_name_test", "bad_name",
                                  "corrupt_taught_file"])
def test_bad_input_is_one_line_and_exit_2(setup, tmp_path: Path, case: str) -> None:
    state = tmp_path / "state"
    m = setup["model"]
    if case == "silence":
        quiet = tmp_path / "quiet.wav"
        write_wav(quiet, noise(2 * SR, np.random.default_rng(0)), SR)  # steady noise: nothing stands out
        r = edge("enroll", "chime", "--model", m, "--source", setup["ex0"], quiet, state=state)
        want = f"{quiet}: no sound found above the clip's noise floor"
    elif case == "corrupt":
        bad = tmp_path / "bad.wav"
        bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
        r = edge("enroll", "chime", "--model", m, "--source", bad, state=state)
        want = str(bad)
    elif case == "bad_name":
        r = edge("enroll", "Door Bell!", "--model", m, "--source", setup["ex0"], state=state)
        want = "sound name 'Door Bell!': expected lower-case letters"
    else:
        r0 = edge("enroll", "chime", "--model", m, "--source", *_examples(setup), state=state)
        assert r0.returncode == 0, r0.stderr
        if case == "unknown_name_remove":
            r = edge("sounds", "--model", m, "remove", "doorbell", state=state)
            want = "no taught sound 'doorbell' (taught: chime)"
        elif case == "unknown_name_test":
            r = edge("sounds", "--model", m, "test", "doorbell", setup["stream"], state=state)
            want = "no taught sound 'doorbell' (taught: chime)"
        else:
            (state / "taught-sounds.json").write_text('{"format": "edge-taught-sounds-1", "model": 3}')
            r = edge("detect", setup["stream"], "--model", m, state=state)
            want = "detector.taught_sounds"
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edge: ") and want in lines[0], r.stderr


def test_remove_forgets_the_sound(setup, tmp_path: Path) -> None:
    state = tmp_path / "state"
    r = edge("enroll", "chime", "--model", setup["model"], "--source", *_examples(setup), state=state)
    assert r.returncode == 0, r.stderr
    r = edge("sounds", "--model", setup["model"], "remove", "chime", state=state)
    assert r.returncode == 0, r.stderr
    r = edge("detect", setup["stream"], "--model", setup["model"], state=state)
    assert [json.loads(x)["label"] for x in r.stdout.splitlines()] == ["low_tone"]
    assert json.loads((state / "taught-sounds.json").read_text())["removed"] == ["chime"]


def test_discovery_adds_and_removes_the_entities_of_a_taught_sound(mosquitto, tmp_path: Path) -> None:  # noqa: F811
    import paho.mqtt.client as mqtt
    from mqtt_driver import make_config, make_contract
    from paho.mqtt.enums import CallbackAPIVersion

    from edge.publish.mqtt import MqttPublisher

    cfg = make_config(mosquitto.port, tmp_path / "o.sqlite")
    pub = MqttPublisher(cfg, make_contract())
    pub.taught(("chime",), ())
    pub.start()
    cfg_topic = "homeassistant/binary_sensor/testdev/chime/config"
    ev_topic = "homeassistant/event/testdev/sound_event/config"

    def retained() -> dict[str, bytes]:
        got: dict[str, bytes] = {}
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{time.monotonic_ns()}")
        c.on_message = lambda _c, _u, msg: got.__setitem__(msg.topic, bytes(msg.payload))
        c.connect("127.0.0.1", mosquitto.port)
        c.subscribe("homeassistant/#")
        c.subscribe("homesound/testdev/#")
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            c.loop(0.05)
        c.disconnect()
        return got

    try:
        deadline = time.monotonic() + 10
        got: dict[str, bytes] = {}
        while time.monotonic() < deadline and cfg_topic not in got:
            got = retained()
        assert cfg_topic in got, sorted(got)
        sensor = json.loads(got[cfg_topic])
        assert sensor["state_topic"] == "homesound/testdev/chime" and sensor["name"] == "Chime"
        assert "chime" in json.loads(got[ev_topic])["event_types"]
        assert got.get("homesound/testdev/chime") == b"OFF"
        pub.taught((), ("chime",))  # edge sounds remove chime, then a reload
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and cfg_topic in got:
            got = retained()
        assert cfg_topic not in got and "homesound/testdev/chime" not in got  # empty retained payloads: deleted
        assert "chime" not in json.loads(got[ev_topic])["event_types"]
        assert "homeassistant/binary_sensor/testdev/speech/config" in got  # the model's own stay
    finally:
        pub.close()


@pytest.mark.skipif(not all(__import__("shutil").which(t) for t in ("pulseaudio", "paplay", "pactl")),
                    reason="needs PulseAudio (apt: pulseaudio, libasound2-plugins, libportaudio2)")
def test_enrol_from_the_microphone_press_enter_then_the_sound(setup, tmp_path: Path) -> None:
    from test_mic_pulseaudio import pulse as pulse_fixture

    gen = pulse_fixture.__wrapped__(tmp_path)  # the real PulseAudio of the microphone tests, null sink
    env = next(gen)
    try:
        state = tmp_path / "state"
        cfg = tmp_path / "c.yaml"
        cfg.write_text("audio:\n  device: pulse\n")
        clip = scene(tmp_path / "play.wav", 1.2, [(CHIME_HZ, 0.3, 0.5, -12.0)], seed=7)
        p = subprocess.Popen([sys.executable, "-m", "edge", "enroll", "chime", "--source", "mic", "--examples", "2",
                              "--seconds", "1.5", "--model", str(setup["model"]), "--config", str(cfg)],
                             env=dict(env, PYTHONPATH=str(ROOT), STATE_DIRECTORY=str(state)), cwd=ROOT,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert p.stdin is not None and p.stderr is not None
        asked, err = 0, []
        deadline = time.monotonic() + 60
        while asked < 2 and time.monotonic() < deadline:
            line = p.stderr.readline()
            if not line:
                break
            err.append(line)
            if "press Enter, then make the sound" in line:
                asked += 1
                p.stdin.write("\n")
                p.stdin.flush()
                time.sleep(0.1)
                subprocess.run(["paplay", "--device=edge_null", str(clip)], env=env, check=True, timeout=20)
        out, rest = p.communicate(timeout=60)
        err.append(rest)
        assert p.returncode == 0, "".join(err)[-3000:]
        assert asked == 2 and "taught 'chime' from 2 example(s)" in out
        assert "warning: only 2 example(s)" in "".join(err)  # too few: said, still taught
        r = edge("detect", setup["stream"], "--model", setup["model"], state=state)
        assert r.returncode == 0, r.stderr
        assert len([x for x in r.stdout.splitlines() if json.loads(x)["label"] == "chime"]) >= 2, r.stdout
    finally:
        gen.close()


def _catches_sighup(pid: int, timeout_s: float) -> bool:
    """Whether process ``pid`` handles SIGHUP (Linux ``SigCgt`` mask) within ``timeout_s``.

    Before ``edge run`` takes the signal over (while Python starts), SIGHUP's default action ends it.
    """
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        status = Path(f"/proc/{pid}/status").read_text()
        caught = int(next(x for x in status.splitlines() if x.startswith("SigCgt:")).split()[1], 16)
        if caught & 1 << (signal.SIGHUP - 1):
            return True
        time.sleep(0.02)
    return False


def test_a_running_listener_hears_a_sound_taught_meanwhile_after_a_reload(setup, tmp_path: Path) -> None:
    state = tmp_path / "state"
    cfg = tmp_path / "c.yaml"
    cfg.write_text("detector: {release_s: 0.1}\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), STATE_DIRECTORY=str(state))
    p = subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(cfg), "--source", str(setup["stream"]),
                          "--realtime", "--model", str(setup["model"])], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        r = edge("enroll", "chime", "--model", setup["model"], "--source", *_examples(setup), state=state)
        assert r.returncode == 0, r.stderr
        assert _catches_sighup(p.pid, 10), "the listener never took SIGHUP over"
        p.send_signal(signal.SIGHUP)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert "configuration reloaded" in err, err
    chimes = [json.loads(x) for x in out.splitlines() if '"chime"' in x]
    onsets = [round(e["onset"], 1) for e in chimes if e["state"] == "on"]
    # the stream plays in real time: the chimes at 3.5 s and 7.0 s come after the reload
    assert any(abs(t - 3.5) <= 0.5 for t in onsets) and any(abs(t - 7.0) <= 0.5 for t in onsets), out
    assert len([e for e in chimes if e["state"] == "off"]) == len(onsets)


def test_warnings_for_copies_of_one_recording_a_faint_sound_and_no_bank(setup, tmp_path: Path) -> None:
    state = tmp_path / "state"
    r = edge("enroll", "chime", "--model", setup["model"], "--source", *([setup["ex0"]] * 4), state=state)
    assert r.returncode == 0, r.stderr
    assert "warning: the examples are nearly identical" in r.stderr
    faint = scene(tmp_path / "faint.wav", 2.0, [(CHIME_HZ, 0.5, 0.5, -42.0)], seed=3)  # ~8 dB above the noise
    r = edge("enroll", "chime", "--model", setup["model"], "--source", *_examples(setup)[:2], faint, state=state)
    assert r.returncode == 0, r.stderr
    assert f"warning: {faint}: the sound is only" in r.stderr and "nearly identical" not in r.stderr
    # a model without a bank next to it: calibrated from the examples alone, said in one line
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(setup["model"].read_bytes())
    r = edge("enroll", "chime", "--model", bare, "--source", *_examples(setup), state=tmp_path / "s2")
    assert r.returncode == 0, r.stderr
    said = [x for x in r.stderr.splitlines() if "negative bank" in x]
    assert len(said) == 1 and "threshold from the examples alone" in said[0], r.stderr
    assert "(leave-one-out only (no negative bank))" in r.stdout


def test_teaching_from_home_assistant_text_and_button_over_a_real_broker(setup, mosquitto, tmp_path: Path,  # noqa: F811
                                                                          monkeypatch) -> None:  # noqa: ANN001
    import threading

    from broker import Subscriber, publish_once

    from edge.capture.sources import FileSource
    from edge.model.classifier import Classifier
    from edge.publish.mqtt import MqttPublisher
    from edge.service.config import parse_config
    from edge.service.lifecycle import Lifecycle
    from edge.service.listener import Listener
    from edge.service.remote import RemoteControl
    from edge.service.systemd import Notifier

    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    chimes = [1.0, 4.5, 7.5, 10.5]
    wav = scene(tmp_path / "room.wav", 13.0, [(CHIME_HZ, t, 0.5, -20.0) for t in chimes], seed=11)
    cfg = parse_config({"detector": {"release_s": 0.1},
                        "mqtt": {"enabled": True, "host": "127.0.0.1", "port": mosquitto.port, "device_id": "tch",
                                 "status_interval_s": 60.0, "level_interval_s": 0.0, "reconnect_min_s": 0.05},
                        "outbox": {"path": str(tmp_path / "o.sqlite")}})
    clf = Classifier(setup["model"])
    control = RemoteControl(cfg, clf.contract, tmp_path / "ha-settings.json")
    pub = MqttPublisher(cfg, clf.contract)
    src = FileSource(wav, realtime=True)
    listener = Listener(control.overlay(cfg), clf, [pub, control.sink], src)
    control.attach(listener)
    Lifecycle(listener, None, Notifier({}), control=control)
    root, disc = "homesound/tch", "homeassistant"
    sub = Subscriber(mosquitto.host, mosquitto.port, "#").start()
    run = threading.Thread(target=listener.run, name="processing")
    run.start()
    try:
        assert sub.wait_for(lambda ms: any(m.topic == f"{root}/settings" for m in ms), 10)
        assert sub.wait_for(lambda ms: any(m.topic == f"{disc}/text/tch/teach_name/config" for m in ms), 5)
        assert sub.wait_for(lambda ms: any(m.topic == f"{disc}/button/tch/teach/config" for m in ms), 5)
        publish_once(mosquitto.host, mosquitto.port, f"{root}/set/teach_name", "chime")
        publish_once(mosquitto.host, mosquitto.port, f"{root}/set/teach", "3")  # listens ~0.5-3.5 s: the 1.0 s chime

        def taught(ms: list) -> bool:
            return any(m.topic == f"{root}/settings" and json.loads(m.payload)["teaching"]["examples"] == 1
                       for m in ms)

        assert sub.wait_for(taught, 10), [m.payload for m in sub.on(f"{root}/settings")][-3:]
        t_taught = time.monotonic()
        assert sub.wait_for(lambda ms: any(m.topic == f"{disc}/binary_sensor/tch/chime/config" and m.payload
                                           for m in ms), 5)
        assert (tmp_path / "state" / "taught-sounds.json").is_file()
        run.join(30)  # the file ends
        heard = [json.loads(m.payload) for m in sub.on(f"{root}/event") if m.t > t_taught]
        onsets = [e["onset"] for e in heard if e["label"] == "chime" and e["state"] == "on"]
        later = [t for t in chimes if t > 5.0]
        assert all(any(abs(o - t) <= 0.5 for o in onsets) for t in later), onsets
    finally:
        listener.stop()
        run.join(10)
        sub.stop()


def test_the_home_background_holds_back_a_taught_onset_that_sounds_like_this_home() -> None:
    """The chain's gate for taught sounds (real EventChain, vectors made up): an onset each of whose hops is
    closer to a learnt background window than to the taught prototypes is dropped with its offset."""
    from mqtt_driver import make_contract

    from edge.detect.chain import EventChain
    from edge.detect.home_background import HomeBackground
    from edge.detect.settings import DetectorConfig, resolve
    from edge.detect.taught import TaughtSound, TaughtSounds

    c = make_contract()
    dim = c.embedding_dim
    proto = np.eye(dim, dtype=np.float32)[:1]
    sounds = TaughtSounds("fp", {"chime": TaughtSound(proto, 5, 0.8)})
    settings = resolve(DetectorConfig(), c.labels)
    near = (np.eye(dim)[0] * 0.9 + np.eye(dim)[1] * 0.436).astype(np.float32)  # cosine 0.9 to the prototype
    home = HomeBackground(near[None].astype(np.float16), "fp")
    quiet = np.zeros(len(c.labels), np.float32)

    def events(home_bg: HomeBackground | None, hop: np.ndarray) -> list[str]:
        chain = EventChain(c, settings, home_bg, familiarity=False, taught=sounds)
        out = []
        for i in range(12):
            e = hop if 3 <= i < 7 else np.eye(dim, dtype=np.float32)[5]
            out += chain.push_hop(quiet, e, i * 0.24, (i + 1) * 0.24, -30.0)
        out += chain.flush(3.0)
        return [f"{x.label}:{x.state}" for x in out]

    assert events(None, near) == ["chime:on", "chime:off"]
    assert events(home, near) == []  # sounds just like this home's background: held back
    real = np.eye(dim, dtype=np.float32)[0]  # the taught sound itself, over the same home: heard
    assert events(home, real) == ["chime:on", "chime:off"]
