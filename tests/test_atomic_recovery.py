"""Kill safety of atomic outputs: whatever a SIGKILL leaves, the next writer recovers or cleans it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from transferlab.io import atomic_dir, atomic_file, recover

ROOT = Path(__file__).resolve().parents[1]


def _write_tree(root: Path, text: str) -> None:
    (root / "sub").mkdir(parents=True, exist_ok=True)
    (root / "a.txt").write_text(text)
    (root / "sub" / "b.txt").write_text(text * 2)


def _previous_output(out: Path) -> Path:
    """A complete output written atomically, as an earlier successful run left it."""
    with atomic_dir(out) as tmp:
        _write_tree(tmp, "old")
    return out


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def _kill_inside(script: str) -> None:
    """Run ``script`` in a child that SIGKILLs itself where the script says ``KILL_HERE``."""
    code = textwrap.dedent(script).replace("KILL_HERE", "os.kill(os.getpid(), signal.SIGKILL)")
    proc = subprocess.run(
        [sys.executable, "-c", "import os, signal\n" + code], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def _siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name != out.name)


def test_kill_inside_atomic_dir_keeps_previous_output_and_next_run_cleans(tmp_path):
    out = _previous_output(tmp_path / "features")
    _kill_inside(
        f"""
        from transferlab.io import atomic_dir
        with atomic_dir({str(out)!r}) as tmp:
            (tmp / "a.txt").write_text("partial")
            KILL_HERE
        """
    )
    assert _tree(out) == {"a.txt": "old", "sub/b.txt": "oldold"}  # previous output intact
    (stale,) = _siblings(out)
    assert stale.startswith(".features.tmp-") and (tmp_path / stale / "a.txt").read_text() == "partial"
    with atomic_dir(out) as tmp:
        _write_tree(tmp, "new")
    assert _tree(out) == {"a.txt": "new", "sub/b.txt": "newnew"}
    assert _siblings(out) == []


def test_kill_between_the_two_renames_restores_previous_output(tmp_path):
    out = _previous_output(tmp_path / "model")
    _kill_inside(
        f"""
        from pathlib import Path
        from transferlab.io import atomic_dir
        real_rename = Path.rename
        def rename(self, target):
            real_rename(self, target)
            if Path(target).name == ".model.tmp-old":
                KILL_HERE
        Path.rename = rename
        with atomic_dir({str(out)!r}) as tmp:
            (tmp / "a.txt").write_text("new")
        """
    )
    assert not out.exists()
    assert (tmp_path / ".model.tmp-old").is_dir()  # the previous output, parked
    removed = recover(out)
    assert _tree(out) == {"a.txt": "old", "sub/b.txt": "oldold"}  # renamed back
    assert len(removed) == 1 and removed[0].name.startswith(".model.tmp-")
    assert _siblings(out) == []  # the killed writer's complete-but-unswapped temp is gone too


def test_kill_after_new_output_landed_drops_parked_copy(tmp_path):
    out = _previous_output(tmp_path / "model")
    _kill_inside(
        f"""
        from transferlab import io
        io._remove = lambda path: KILL_HERE
        with io.atomic_dir({str(out)!r}) as tmp:
            (tmp / "a.txt").write_text("new")
        """
    )
    assert _tree(out) == {"a.txt": "new"}
    assert _siblings(out) == [".model.tmp-old"]
    recover(out)
    assert _tree(out) == {"a.txt": "new"}
    assert _siblings(out) == []


def test_kill_inside_atomic_file_leaves_old_file_and_next_write_cleans(tmp_path):
    out = tmp_path / "metrics.json"
    out.write_text("old")
    _kill_inside(
        f"""
        from transferlab.io import atomic_file
        with atomic_file({str(out)!r}) as fh:
            fh.write("partial")
            fh.flush()
            KILL_HERE
        """
    )
    assert out.read_text() == "old"
    assert len(_siblings(out)) == 1
    with atomic_file(out) as fh:
        fh.write("new")
    assert out.read_text() == "new"
    assert _siblings(out) == []


def test_exception_inside_block_removes_temp_and_keeps_output(tmp_path):
    out = _previous_output(tmp_path / "figs")
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("partial")
        raise RuntimeError("boom")
    assert _tree(out) == {"a.txt": "old", "sub/b.txt": "oldold"}
    assert _siblings(out) == []


def test_recover_touches_only_dead_writers_of_this_output(tmp_path):
    out = tmp_path / "feat"
    live = tmp_path / f".feat.tmp-{os.getpid()}-abcd1234"  # this process: a live writer
    dead = tmp_path / ".feat.tmp-999999999-abcd1234"  # no such process
    other = tmp_path / ".feat2.tmp-999999999-abcd1234"  # another output's temp
    unrelated = [tmp_path / ".feat.old", tmp_path / ".feat.tmp-notapid", tmp_path / "feat.tmp-1-x"]
    for p in (live, dead, other, *unrelated):
        p.mkdir()
    assert recover(out) == [dead]
    assert sorted(_siblings(out)) == sorted(p.name for p in (live, other, *unrelated))
