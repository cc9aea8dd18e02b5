"""Stage outputs get the mode an ordinary write gives under the umask, not a temporary file's 0600.

Every output is written through a private temporary sibling and renamed into place
(``transferlab.io``), so without care the rename would publish ``mkstemp``'s 0600 /
``mkdtemp``'s 0700 and hide metrics and reports from the other users of a shared lab server.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from stages import prepare
from transferlab.io import atomic_dir, atomic_file, current_umask, ordinary_mode, write_json

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=[0o022, 0o027, 0o002], ids=lambda m: f"umask {m:03o}")
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _written(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.name != "params.yaml")


def test_umask_is_read_without_changing_it(umask):
    assert current_umask() == umask
    assert os.umask(umask) == umask  # still in force after the read
    assert ordinary_mode() == 0o666 & ~umask and ordinary_mode(directory=True) == 0o777 & ~umask


def test_prepare_stage_outputs_have_the_umask_mode(tmp_path, monkeypatch, umask):
    """A real stage run: the prepared directory, its files, the metrics and the timings JSON."""
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    prepare.main(["--dataset", "digits", "--out", "data/prepared/digits", "--metrics", "metrics/prepare/digits.json"])
    written = _written(tmp_path)
    files = [p for p in written if p.is_file()]
    assert {"images.npy", "meta.json", "digits.json"} <= {p.name for p in files}
    assert tmp_path / "timings/prepare/digits.json" in files
    want_file, want_dir = 0o666 & ~umask, 0o777 & ~umask
    assert {str(p.relative_to(tmp_path)): oct(_mode(p)) for p in written if _mode(p) != (
        want_dir if p.is_dir() else want_file)} == {}


def test_atomic_writers_replace_with_the_umask_mode(tmp_path, umask):
    """Also when replacing an existing output that had another mode."""
    target, folder = tmp_path / "out.json", tmp_path / "out"
    for _ in range(2):
        write_json(target, {"a": 1})
        with atomic_file(tmp_path / "plain.txt") as fh:
            fh.write("x")
        with atomic_dir(folder) as tmp:
            (tmp / "f.npy").write_bytes(b"1")
        target.chmod(0o600)
        folder.chmod(0o700)
    write_json(target, {"a": 2})
    with atomic_dir(folder) as tmp:
        (tmp / "f.npy").write_bytes(b"2")
    assert _mode(target) == _mode(tmp_path / "plain.txt") == 0o666 & ~umask
    assert _mode(folder) == 0o777 & ~umask and _mode(folder / "f.npy") == 0o666 & ~umask
