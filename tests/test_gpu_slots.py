"""GPU slots (transferlab.gpu_slots) without GPUs: the device count is injected.

Each "stage process" is a real child process that claims a slot through the lock files and
holds it until its stdin is closed, as a dvc queue worker's stage would until it exits.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from transferlab import gpu_slots
from transferlab.device import resolve_device
from transferlab.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
HOLDER = """
import sys
from transferlab.gpu_slots import claim_gpu
slot = claim_gpu(int(sys.argv[1]), policy=sys.argv[2], poll_seconds=0.05)
print(slot.index, slot.shared, flush=True)
sys.stdin.read()
"""


class Holder:
    """A child process holding a GPU slot until :meth:`release`."""

    def __init__(self, lock_dir: Path, count: int, policy: str = "share") -> None:
        env = {**os.environ, gpu_slots.LOCK_DIR_ENV: str(lock_dir)}
        env.pop("CUDA_VISIBLE_DEVICES", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(count), policy], cwd=ROOT, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )

    def slot(self, timeout: float = 30.0) -> tuple[int, bool] | None:
        """The (index, shared) it claimed, or None if it has not claimed one within ``timeout``."""
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        index, shared = self.proc.stdout.readline().split()
        return int(index), shared == "True"

    def release(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


@pytest.fixture
def holders(tmp_path):
    started: list[Holder] = []

    def start(count: int, policy: str = "share") -> Holder:
        started.append(Holder(tmp_path / "locks", count, policy))
        return started[-1]

    yield start
    for holder in started:
        if holder.proc.poll() is None:
            holder.proc.kill()
            holder.proc.wait()


@pytest.fixture
def in_process(tmp_path, monkeypatch):
    """This test process as a stage: lock dir in tmp, 2 fake CUDA devices, slot released after."""
    monkeypatch.setenv(gpu_slots.LOCK_DIR_ENV, str(tmp_path / "locks"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    selected: list[int] = []
    monkeypatch.setattr(torch.cuda, "set_device", selected.append)
    yield selected
    gpu_slots.release_gpu()


def test_two_processes_get_different_gpus_and_a_released_one_is_reused(holders):
    first = holders(2)
    assert first.slot() == (0, False)
    assert holders(2).slot() == (1, False)
    first.release()
    assert holders(2).slot() == (0, False)


def test_share_policy_spreads_extra_processes_over_the_least_used_gpus(holders):
    assert [holders(2).slot() for _ in range(2)] == [(0, False), (1, False)]
    assert holders(2, "share").slot() == (0, True)
    assert holders(2, "share").slot() == (1, True)  # GPU 0 already has a sharer
    assert holders(2, "share").slot() == (0, True)


def test_a_dead_sharer_is_not_counted(holders):
    assert [holders(2).slot() for _ in range(2)] == [(0, False), (1, False)]
    sharer = holders(2, "share")
    assert sharer.slot() == (0, True)
    sharer.release()  # exits without deleting anything itself: only its lock goes away
    assert holders(2, "share").slot() == (0, True)


def test_wait_policy_blocks_until_a_gpu_is_released(holders):
    first = holders(2)
    assert first.slot() == (0, False)
    second = holders(2)
    assert second.slot() == (1, False)
    waiter = holders(2, "wait")
    assert waiter.slot(timeout=1.0) is None  # both GPUs taken: still waiting
    second.release()
    assert waiter.slot() == (1, False)


def test_unknown_policy_is_one_clear_error(monkeypatch):
    monkeypatch.setenv(gpu_slots.POLICY_ENV, "random")
    with pytest.raises(UserError, match=r"TRANSFERLAB_GPU_POLICY='random'.*share, wait"):
        gpu_slots.gpu_policy()


def test_auto_device_takes_a_free_gpu_and_keeps_it(in_process, holders):
    other = holders(2)
    assert other.slot() == (0, False)
    assert resolve_device("auto") == torch.device("cuda", 1)
    assert resolve_device("auto") == torch.device("cuda", 1)  # same slot for the process's life
    assert in_process == [1, 1]
    assert holders(2, "share").slot() == (0, True)  # this process's lock on GPU 1 is real


def test_cuda_visible_devices_and_explicit_index_bypass_the_slots(in_process, tmp_path, monkeypatch):
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert resolve_device("auto") == torch.device("cuda")
    assert in_process == [] and not (tmp_path / "locks").exists()


def test_one_visible_gpu_needs_no_lock(in_process, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto") == torch.device("cuda")
    assert not (tmp_path / "locks").exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [("cuda:2", r"'cuda:2' requested but only 2 CUDA GPU\(s\) are visible; use cuda:0..cuda:1"),
     ("cuda:x", r"unknown device 'cuda:x'; use one of auto, cpu, cuda, mps, cuda:<index>")],
)
def test_bad_cuda_index_is_one_clear_error(in_process, name, message):
    with pytest.raises(UserError, match=message):
        resolve_device(name)


def test_cuda_index_without_cuda_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match=r"'cuda:0' requested but no CUDA GPU is visible"):
        resolve_device("cuda:0")


def test_a_sharing_process_removes_its_share_file_on_release(in_process, holders, tmp_path):
    assert [holders(2).slot() for _ in range(2)] == [(0, False), (1, False)]
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert len(list((tmp_path / "locks").glob("gpu0.share.*"))) == 1
    gpu_slots.release_gpu()
    assert not list((tmp_path / "locks").glob("gpu0.share.*"))


def test_unusable_lock_dir_is_one_clear_error(in_process, tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv(gpu_slots.LOCK_DIR_ENV, str(tmp_path / "a-file" / "locks"))
    with pytest.raises(UserError, match=r"cannot use the GPU lock directory .*a-file/locks .*"
                       r"set TRANSFERLAB_GPU_LOCK_DIR to a writable local folder"):
        resolve_device("auto")
