"""Recording groups from a manifest's ``original_name`` (the inner split keeps a group on one side)."""

from __future__ import annotations

import pytest

from edge.train.data import Row, recording_id


@pytest.mark.parametrize(("a", "b"), [
    ("003 - Sea waves/3-144827-A.ogg", "003 - Sea waves/3-144827-B.ogg"),  # ESC takes of one recording
    ("1-100038-A-14.wav", "1-100038-B-14.wav"),                             # ESC-50 file names
    ("kitchen/long-take.wav @10.0s", "kitchen/long-take.wav @ 20s"),        # pieces cut from one file
])
def test_pieces_of_one_recording_share_a_group(a: str, b: str) -> None:
    assert recording_id(a) == recording_id(b)


def test_different_recordings_keep_different_groups() -> None:
    assert recording_id("3-144827-A.ogg") != recording_id("3-144828-A.ogg")
    uuid = "bucket/A123AD65-38D3-4A65-AB37-330034765840-1430093687-1.0-m-04-hu.caf"
    assert recording_id(uuid) == uuid
    assert Row("a/x.flac", "dog_bark", 1, 5.0, "", "", "").group == "a/x.flac"  # no name: the clip alone
