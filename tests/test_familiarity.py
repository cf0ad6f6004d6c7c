"""Familiarity check: onsets of sounds unlike their label's training sounds are held back, in the real listener."""

import dataclasses
import json

import numpy as np
import pytest
from conftest import bursts, tone
from tinymodel import build_tiny_model

from edge.classifier import Classifier
from edge.config import parse_config
from edge.contract import ContractError, read_contract, save_with_contract
from edge.events import Event
from edge.familiarity import FamiliarityGate, Prototypes
from edge.frontend import logmel
from edge.pipeline import detect_file
from edge.sinks import BaseSink

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
    assert back.similarity("speech", rng.normal(size=16)) == 1.0  # no prototypes: never held back


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
    sim_pure, sim_chord = protos.similarity("mid_tone", e_pure), protos.similarity("mid_tone", e_chord)
    assert sim_pure > sim_chord + 1e-4, (sim_pure, sim_chord)
    protos = Prototypes(protos.vectors, (sim_pure + sim_chord) / 2, c.embedding_dim)
    out = save_with_contract(onnx.load(str(path)), dataclasses.replace(c, prototypes=protos.to_dict()),
                             tmp_path / "familiar.onnx")
    x = bursts([(1000.0, 0.5, 1.5), (2000.0, 2.0, 2.5)], 6.0, SR)
    x[int(3.5 * SR): int(4.5 * SR)] += chord[: SR]
    return out, wav_writer("mix.wav", x, SR)


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
    from edge.pipeline import Listener
    from edge.sources import FileSource

    model, wav = familiar_model
    clf = Classifier(model)
    listener = Listener(parse_config({}), clf, [], FileSource(wav))
    assert listener.familiar.min_similarity == pytest.approx(clf.contract.familiarity().min_similarity)
    listener.reconfigure(parse_config({"detector": {"min_similarity": 0.5, "persistence_n": 5}}))
    assert listener.familiar.min_similarity == 0.5 and listener.familiar._recent.maxlen == 5
    listener.reconfigure(parse_config({"detector": {"min_similarity": 0}}))
    assert listener.familiar.min_similarity < -1  # off: cosine similarity is never below -1
