"""The one manifest reader behind edge train, eval-clips and eval-stream --make."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.corpus.manifest import ManifestError, read_rows
from edge.evaluate.clips import EvalError, read_eval_manifest
from edge.train.data import DataError, read_manifest


def test_a_byte_order_mark_from_a_spreadsheet_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    m = tmp_path / "m.csv"
    m.write_bytes("\ufeffpath,label,fold\na.wav,dog_bark,1\n".encode())
    p, rows = read_rows(m)
    assert p == m and rows == [(2, {"path": "a.wav", "label": "dog_bark", "fold": "1"})]


@pytest.mark.parametrize(("content", "message"), [
    ("path,label\nä.wav,dog_bark\n".encode("latin-1"), "not UTF-8 text (save the CSV as UTF-8)"),
    (b"path,label,fold\na.wav,dog_bark\n", "2: row has fewer fields than the header (3)"),
    (b"path,label\na.wav,dog_bark\n,speech\n", "3: empty path"),
    (b"path,label\n", "manifest has no rows"),
    (b"file,label\na.wav,x\n", "manifest lacks the column(s) path"),
])
def test_unusable_manifests_are_one_line_errors_naming_file_and_line(tmp_path: Path, content: bytes,
                                                                     message: str) -> None:
    m = tmp_path / "m.csv"
    m.write_bytes(content)
    sep = "" if message[0].isdigit() else " "
    for read, err in ((read_rows, ManifestError), (read_eval_manifest, EvalError), (read_manifest, DataError)):
        with pytest.raises(err) as e:
            read(m)
        assert str(e.value) == f"{m}:{sep}{message}", read
