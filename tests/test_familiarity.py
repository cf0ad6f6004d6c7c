"""Onsets unlike their label's training sounds, or like this home's learnt background, are held back."""

import dataclasses
import json

import numpy as np
import pytest
from conftest import bursts, tone
from tinymodel import build_tiny_model

from edge.core.events import Event
from edge.detect.familiarity import FamiliarityGate
from edge.detect.home_background import fingerprint as fingerprint_of
from edge.features.frontend import logmel
from edge.model.classifier import Classifier
from edge.model.contract import ContractError, read_contract, save_with_contract
from edge.model.prototypes import Prototypes
from edge.publish.sinks import BaseSink
from edge.service.config import parse_config
from edge.service.listener import detect_file

SR = 16000


class StatusSink(BaseSink):
    last: dict = {}

    def status(self, health):
        self.last = health


def _event(label, state, eid):
    return Event(id=eid, label=label, state=state, onset=1.0, offset=None if state == "on" else 2.0,
                 onset_time=1.0, offset_time=None, score=0.9, mean_score=0.8, level_dbfs=-20.0,
                 model_version="t")


def _unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_prototypes_survive_the_int8_round_trip_through_the_contract():
    rng = np.random.default_rng(0)
    p = Prototypes({"dog_bark": _unit(rng.normal(size=(5, 16)))}, 0.9, 16)
    back = Prototypes.from_dict(json.loads(json.dumps(p.to_dict(note="x"))), ["dog_bark", "speech"])
    assert back.min_similarity == pytest.approx(0.9) and back.dim == 16
    assert np.all(np.sum(back.vectors["dog_bark"] * p.vectors["dog_bark"], axis=1) > 0.999)
    assert back.per_window("speech", rng.normal(size=16)).tolist() == [1.0]  # no prototypes: never held back


def test_gate_drops_an_unfamiliar_onset_with_its_offset_and_passes_the_rest():
    protos = Prototypes({"dog_bark": _unit([[1.0, 0.0, 0.0]])}, 0.0, 3)
    gate = FamiliarityGate(protos, 0.8, lookback=2)
    gate.push(np.array([0.0, 1.0, 0.0]))  # unlike any dog bark
    out = gate.filter([_event("dog_bark", "on", "a"), _event("speech", "on", "b")])
    assert [e.id for e in out] == ["b"] and gate.held_back == 1
    gate.push(np.array([1.0, 0.1, 0.0]))  # now one of the last two hops is like a bark
    out = gate.filter([_event("dog_bark", "off", "a"), _event("dog_bark", "on", "c"),
                       _event("speech", "off", "b")])
    assert [(e.id, e.state) for e in out] == [("c", "on"), ("b", "off")]
    assert gate.filter([_event("dog_bark", "off", "c")])[0].id == "c"


def test_malformed_or_mismatched_prototypes_are_a_one_line_contract_error(tmp_path):
    import onnx

    path = build_tiny_model(tmp_path / "t.onnx")
    c = read_contract(path)
    good = Prototypes({"mid_tone": _unit(np.ones((2, c.embedding_dim)))}, 0.5, c.embedding_dim).to_dict()
    cases = [
        ({**good, "labels": {"mid_tone": {"k": 3, "int8": good["labels"]["mid_tone"]["int8"]}}},
         f"prototypes of 'mid_tone': expected 3 x {c.embedding_dim} values, got {2 * c.embedding_dim}"),
        ({**good, "labels": {"barking": good["labels"]["mid_tone"]}}, "prototypes for 'barking', which is not"),
        ({**good, "dim": 4, "labels": {}}, f"prototypes have 4 dimensions, the embedding {c.embedding_dim}"),
        ({"dim": 4}, "malformed prototypes entry (KeyError"),
    ]
    for bad, message in cases:
        out = save_with_contract(onnx.load(str(path)), dataclasses.replace(c, prototypes=bad), tmp_path / "b.onnx")
        with pytest.raises(ContractError) as e:
            read_contract(out)
        assert message in str(e.value) and "\n" not in str(e.value)


@pytest.fixture
def familiar_model(tmp_path, wav_writer):
    """Tiny model whose 'mid_tone' prototypes are the windows of a pure 1 kHz tone; threshold halfway between
    that tone and a 1 kHz + 3.3 kHz chord (which 'mid_tone' also fires on)."""
    import onnx

    path = build_tiny_model(tmp_path / "tiny.onnx")
    clf = Classifier(path)
    c = clf.contract

    def windows(x):
        s, e = clf.score_frames(logmel(x, c.frontend))
        return s[:, 1], e[s[:, 1] > 0.5]

    pure = tone(1000.0, 1.0, SR, 0.3)
    chord = pure + tone(3300.0, 1.0, SR, 0.3)
    s_pure, e_pure = windows(pure)
    s_chord, e_chord = windows(chord)
    assert s_chord.max() > 0.9, "precondition: the chord raises mid_tone on its own"
    protos = Prototypes({"mid_tone": _unit(e_pure[:1])}, 0.0, c.embedding_dim)
    protos = Prototypes.from_dict(protos.to_dict(), c.labels)
    sim_pure, sim_chord = (float(protos.per_window("mid_tone", e).max()) for e in (e_pure, e_chord))
    assert sim_pure > sim_chord + 1e-4, (sim_pure, sim_chord)
    protos = Prototypes(protos.vectors, (sim_pure + sim_chord) / 2, c.embedding_dim)
    out = save_with_contract(onnx.load(str(path)), dataclasses.replace(c, prototypes=protos.to_dict()),
                             tmp_path / "familiar.onnx")
    x = bursts([(1000.0, 0.5, 1.5), (2000.0, 2.0, 2.5)], 6.0, SR)
    x[int(3.5 * SR): int(4.5 * SR)] += chord[: SR]
    return out, wav_writer("mix.wav", x, SR)


def test_model_fingerprint_follows_the_prototypes_not_the_detector_defaults(familiar_model):
    c = read_contract(familiar_model[0])
    fp = fingerprint_of(c)
    assert fingerprint_of(c) == fp == fingerprint_of(read_contract(familiar_model[0]))  # cached and stable
    assert fingerprint_of(dataclasses.replace(c, detector={"hysteresis": 0.1})) == fp
    protos = c.familiarity()
    moved = Prototypes({k: -v for k, v in protos.vectors.items()}, protos.min_similarity, protos.dim)
    assert fingerprint_of(dataclasses.replace(c, prototypes=moved.to_dict())) != fp


def test_listener_holds_back_a_sound_unlike_its_labels_training_sounds(familiar_model):
    model, wav = familiar_model
    status = StatusSink()
    got = [(e.label, round(e.onset, 1)) for e in detect_file(wav, model=model, sinks=[status])]
    assert status.last["onsets_held_back"] == 1
    # The pure tone (like its training sound) and high_tone (no prototypes) pass; the chord does not.
    assert [lab for lab, _ in got] == ["mid_tone", "high_tone"], got
    assert got[0][1] <= 0.6
    off = parse_config({"detector": {"min_similarity": 0}})
    got = [e.label for e in detect_file(wav, off, model=model)]
    assert got == ["mid_tone", "high_tone", "mid_tone"], got


def test_tuning_replay_applies_the_familiarity_check_exactly_as_the_listener(familiar_model):
    from edge.evaluate.stream import SceneRun, run_file
    from edge.evaluate.tune import replay

    model, wav = familiar_model
    clf = Classifier(model)
    cfg = parse_config({})
    embs = []
    evs, at, hops, scores = run_file(wav, cfg, clf, True, embs)
    run = SceneRun("mix", 6.0, False, [], [], [], hops, scores, embeddings=np.stack(embs))
    assert run.embeddings.shape == (scores.shape[0], clf.contract.embedding_dim)
    listener = [(round(e.onset, 4), round(e.offset, 4), e.label) for e in evs]
    replayed, _ = replay(run, clf.contract, cfg.detector)
    assert [(round(a, 4), round(b, 4), lab) for a, b, lab in replayed] == listener
    assert [lab for *_, lab in listener] == ["mid_tone", "high_tone"]
    # Without recorded embeddings, or with the check off, the chord's onset comes back.
    bare, _ = replay(dataclasses.replace(run, embeddings=np.zeros((0, 0), np.float32)), clf.contract, cfg.detector)
    off, _ = replay(run, clf.contract, parse_config({"detector": {"min_similarity": 0}}).detector)
    assert [lab for *_, lab in bare] == [lab for *_, lab in off] == ["mid_tone", "high_tone", "mid_tone"]


def test_sighup_reload_changes_the_familiarity_threshold(familiar_model):
    from edge.capture.sources import FileSource
    from edge.service.listener import Listener

    model, wav = familiar_model
    clf = Classifier(model)
    listener = Listener(parse_config({}), clf, [], FileSource(wav))
    assert listener.familiar.min_similarity == pytest.approx(clf.contract.familiarity().min_similarity)
    listener.reconfigure(parse_config({"detector": {"min_similarity": 0.5, "persistence_n": 5}}))
    assert listener.familiar.min_similarity == 0.5 and listener.familiar._recent.maxlen == 5
    listener.reconfigure(parse_config({"detector": {"min_similarity": 0}}))
    assert listener.familiar.min_similarity < -1  # off: cosine similarity is never below -1


# -- this home's learnt background (edge learn-background, detector.home_background) -----------------------


@pytest.fixture
def chord_wav(wav_writer):
    """Only the chord that 'mid_tone' fires on: this home's fridge, say."""
    x = np.zeros(4 * SR)
    x[SR: 2 * SR] = tone(1000.0, 1.0, SR, 0.3) + tone(3300.0, 1.0, SR, 0.3)
    return wav_writer("fridge.wav", x, SR)


@pytest.fixture
def learn(familiar_model, chord_wav, tmp_path):
    """``learn(out, *options) -> exit status`` of ``edge learn-background`` on the chord recording, with the
    familiarity threshold off (so that the chord is a false alarm there and only the learnt background can
    hold anything back)."""
    from edge import cli

    off = tmp_path / "off.yaml"
    off.write_text("detector:\n  min_similarity: 0\n")
    model, _ = familiar_model

    def run(out, *options):
        return cli.main(["learn-background", "--model", str(model), "--source", str(chord_wav), "--config",
                         str(off), "--out", str(out), *options])

    return run


def test_learnt_home_background_holds_back_that_sound_and_nothing_else(familiar_model, learn, tmp_path, capsys):
    from edge.detect.home_background import HomeBackground

    model, mix = familiar_model
    assert learn(tmp_path / "state" / "home.npz") == 2  # the folder must exist when given explicitly
    assert "does not exist" in capsys.readouterr().err
    out = tmp_path / "home.npz"
    assert learn(out) == 0
    said = capsys.readouterr().out
    assert "held back from now on when they sound like this: mid_tone 1" in said
    assert sorted(p.name for p in tmp_path.glob("home*")) == ["home.npz"]
    with np.load(out) as z:  # window embeddings and a description, never audio
        assert sorted(z.files) == ["meta", "vectors"] and z["vectors"].dtype == np.float16
        assert z["vectors"].shape[1] == Classifier(model).contract.embedding_dim
    bank = HomeBackground.load(out, Classifier(model).contract)
    assert bank.seconds == pytest.approx(4.0, abs=0.6) and bank.fired == {"mid_tone": 1}
    cfg = parse_config({"detector": {"min_similarity": 0, "home_background": str(out)}})
    status = StatusSink()
    got = [e.label for e in detect_file(mix, cfg, model=model, sinks=[status])]
    assert got == ["mid_tone", "high_tone"], got  # the pure tone still passes, the chord does not
    assert status.last["onsets_held_back"] == 1
    got = [e.label for e in detect_file(mix, parse_config({"detector": {"min_similarity": 0}}), model=model)]
    assert got == ["mid_tone", "high_tone", "mid_tone"], got


def test_learning_again_with_add_keeps_both_sittings(familiar_model, learn, tmp_path):
    from edge.detect.home_background import HomeBackground

    model, _ = familiar_model
    out = tmp_path / "home.npz"
    for _ in range(2):
        assert learn(out, "--add") == 0
    bank = HomeBackground.load(out, Classifier(model).contract)
    assert bank.fired == {"mid_tone": 2} and bank.seconds == pytest.approx(8.0, abs=1.2)


def test_unusable_home_background_is_a_one_line_error_naming_the_setting(familiar_model, chord_wav, tmp_path,
                                                                          capsys, caplog):
    from edge import cli
    from edge.detect.home_background import HomeBackground

    model, mix = familiar_model
    cfgfile = tmp_path / "c.yaml"

    def detect_with(path):
        cfgfile.write_text(f"detector:\n  home_background: {path}\n")
        code = cli.main(["detect", str(mix), "--model", str(model), "--config", str(cfgfile)])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.count("\n") == 0, err
        return err

    assert detect_with(tmp_path / "none.npz") == (
        f"edge: {cfgfile}: detector.home_background: {tmp_path / 'none.npz'}: no such file "
        f"(write it with: edge learn-background --out {tmp_path / 'none.npz'})")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not numpy")
    assert "not a home-background file" in detect_with(junk)
    # Learnt with another model (say, before an upgrade): its windows mean nothing to this one. The
    # listener keeps listening without it (a refused start would silence the smoke alarms) and warns.
    other = tmp_path / "other.npz"
    c = Classifier(model).contract
    protos = c.familiarity()
    moved = Prototypes({k: -v for k, v in protos.vectors.items()}, protos.min_similarity, protos.dim)
    HomeBackground(np.ones((3, c.embedding_dim), np.float16) / np.sqrt(c.embedding_dim),
                   fingerprint_of(dataclasses.replace(c, prototypes=moved.to_dict()))).save(other)
    cfgfile.write_text(f"detector:\n  home_background: {other}\n")
    with caplog.at_level("WARNING", logger="edge.pipeline"):
        assert cli.main(["detect", str(mix), "--model", str(model), "--config", str(cfgfile)]) == 0
    assert len([x for x in capsys.readouterr().out.splitlines() if x.strip()]) == 2  # mid_tone, high_tone
    assert "learnt with another model" in caplog.text and "listening without it" in caplog.text
    # A model without prototypes has nothing to compare with (a configuration mistake: refused).
    plain = build_tiny_model(tmp_path / "plain.onnx")
    cfgfile.write_text(f"detector:\n  home_background: {other}\n")
    assert cli.main(["detect", str(mix), "--model", str(plain), "--config", str(cfgfile)]) == 2
    assert "the model carries no prototypes" in capsys.readouterr().err
    assert cli.main(["learn-background", "--model", str(plain), "--source", str(chord_wav),
                     "--out", str(tmp_path / "x.npz")]) == 2
    assert "carries no prototypes" in capsys.readouterr().err and not (tmp_path / "x.npz").exists()


def test_reload_rereads_the_home_background_and_a_bad_one_changes_nothing(familiar_model, learn, tmp_path):
    from edge.capture.sources import FileSource
    from edge.service.config import ConfigError
    from edge.service.listener import Listener

    model, mix = familiar_model
    out = tmp_path / "home.npz"
    assert learn(out) == 0
    listener = Listener(parse_config({}), Classifier(model), [], FileSource(mix))
    assert listener.familiar.home is None
    listener.reconfigure(parse_config({"detector": {"home_background": str(out)}}))
    assert listener.familiar.home is not None and listener.familiar.home.fired == {"mid_tone": 1}
    with pytest.raises(ConfigError, match="no such file"):
        listener.reconfigure(parse_config({"detector": {"home_background": str(tmp_path / "gone.npz"),
                                                        "min_similarity": 0.5}}))
    assert listener.familiar.home is not None and listener.familiar.min_similarity != 0.5


def test_learner_keeps_a_bounded_even_spread_of_the_listening_time():
    from edge.detect.home_background import Learner

    learner = Learner(dim=2, max_windows=8)
    angles = np.arange(100) * 0.01
    for a in angles:
        learner.push(np.array([np.cos(a), np.sin(a)]) * 5.0)
    bank = learner.result("m", 100.0, {})
    assert learner.hops == 100 and 4 <= bank.vectors.shape[0] <= 8
    kept = np.arctan2(bank.vectors[:, 1].astype(float), bank.vectors[:, 0].astype(float)) / 0.01
    step = np.diff(np.round(kept))
    assert kept[0] == pytest.approx(0, abs=0.5) and np.all(step == step[0]) and kept[-1] > 50  # even, whole span
    assert np.allclose(np.linalg.norm(bank.vectors.astype(float), axis=1), 1.0, atol=1e-3)


def test_tuning_replay_applies_the_home_background_exactly_as_the_listener(familiar_model, learn, tmp_path):
    from edge.evaluate.stream import SceneRun, run_file
    from edge.evaluate.tune import replay

    model, mix = familiar_model
    out = tmp_path / "home.npz"
    assert learn(out) == 0
    clf = Classifier(model)
    cfg = parse_config({"detector": {"min_similarity": 0, "home_background": str(out)}})
    embs = []
    evs, _, hops, scores = run_file(mix, cfg, clf, True, embs)
    run = SceneRun("mix", 6.0, False, [], [], [], hops, scores, embeddings=np.stack(embs))
    replayed, _ = replay(run, clf.contract, cfg.detector)
    assert [(round(a, 4), round(b, 4), lab) for a, b, lab in replayed] == \
        [(round(e.onset, 4), round(e.offset, 4), e.label) for e in evs]
    assert [lab for *_, lab in replayed] == ["mid_tone", "high_tone"]
