"""One GPU per stage process when several are visible, claimed through per-GPU lock files.

`dvc queue start -j N` runs N experiment workers in ONE environment, so a user cannot give
each worker its own ``CUDA_VISIBLE_DEVICES``. Instead every stage process that resolves
``base.device: auto`` with more than one CUDA device visible claims a GPU here: it takes an
exclusive, non-blocking ``fcntl.flock`` on ``gpu<i>.lock`` for the first free ``i`` and holds
it until the process exits (the kernel releases the lock even if the process is killed, so
nothing goes stale). When every GPU is taken, ``TRANSFERLAB_GPU_POLICY`` decides:

- ``share`` (default): use the GPU with the fewest processes on it (ties: the lowest index);
  sharers register with a locked ``gpu<i>.share.*`` file so later sharers can count them.
- ``wait``: poll until a GPU's lock is released, then take it.

Lock files live in ``TRANSFERLAB_GPU_LOCK_DIR`` (default: ``transferlab-gpu-locks-<uid>`` in
the system temp dir); point several users at one shared local directory to coordinate them.
Linux/macOS only (``fcntl``); the lock directory must be on a local filesystem.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from transferlab.errors import UserError
from transferlab.io import temp_file

LOCK_DIR_ENV = "TRANSFERLAB_GPU_LOCK_DIR"
POLICY_ENV = "TRANSFERLAB_GPU_POLICY"
POLICIES = ("share", "wait")


@dataclass(frozen=True)
class GpuSlot:
    """The GPU this process uses: its index among the visible devices, and whether it is shared."""

    index: int
    shared: bool


_held: tuple[GpuSlot, IO] | None = None  # this process's claim, kept open for its whole life


def lock_dir() -> Path:
    """Where the per-GPU lock files live (``$TRANSFERLAB_GPU_LOCK_DIR`` or a per-user temp dir)."""
    configured = os.environ.get(LOCK_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"transferlab-gpu-locks-{os.getuid()}"


def gpu_policy() -> str:
    """What to do when every GPU is taken: ``$TRANSFERLAB_GPU_POLICY``, default ``share``."""
    policy = os.environ.get(POLICY_ENV, "share")
    if policy not in POLICIES:
        raise UserError(f"{POLICY_ENV}={policy!r} is not a GPU policy; use one of {', '.join(POLICIES)}")
    return policy


def _try_lock(path: Path) -> IO | None:
    """``path`` opened and exclusively flock-ed, or None if another process holds it."""
    handle = open(path, "a+")  # noqa: SIM115 - held open for the life of the process
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _live_sharers(directory: Path, index: int) -> int:
    """Processes sharing GPU ``index`` now: share files whose lock is still held.

    A file left by a sharer that died is unlocked and so not counted; it is not deleted here,
    because a new sharer may be between creating its file and locking it.
    """
    count = 0
    for path in directory.glob(f"gpu{index}.share.*"):
        handle = _try_lock(path)
        if handle is None:
            count += 1
        else:
            handle.close()
    return count


def _claim_free(directory: Path, count: int) -> tuple[GpuSlot, IO] | None:
    for index in range(count):
        handle = _try_lock(directory / f"gpu{index}.lock")
        if handle is not None:
            return GpuSlot(index, shared=False), handle
    return None


def _claim_shared(directory: Path, count: int) -> tuple[GpuSlot, IO]:
    index = min(range(count), key=lambda i: (_live_sharers(directory, i), i))
    fd, name = temp_file(f"gpu{index}.share.", directory)  # others' processes test its lock too
    os.close(fd)
    handle = open(name, "a+")  # noqa: SIM115 - held open for the life of the process
    fcntl.flock(handle, fcntl.LOCK_EX)  # a fresh unique file: nobody else holds it
    return GpuSlot(index, shared=True), handle


def claim_gpu(count: int, policy: str | None = None, poll_seconds: float = 2.0) -> GpuSlot:
    """This process's GPU among ``count`` visible ones; the same slot on every later call.

    ``policy`` (default ``gpu_policy()``) applies only when all ``count`` GPUs are held by
    other processes.
    """
    global _held
    if _held is not None:
        return _held[0]
    if count < 1:
        raise ValueError(f"claim_gpu needs at least one GPU, got count={count}")
    policy = policy or gpu_policy()
    if policy not in POLICIES:
        raise ValueError(f"unknown GPU policy {policy!r}; use one of {', '.join(POLICIES)}")
    directory = lock_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        claim = _claim_free(directory, count)
        while claim is None and policy == "wait":
            time.sleep(poll_seconds)
            claim = _claim_free(directory, count)
        _held = claim or _claim_shared(directory, count)
    except OSError as exc:
        raise UserError(
            f"cannot use the GPU lock directory {directory} ({exc.strerror or exc}); "
            f"set {LOCK_DIR_ENV} to a writable local folder"
        ) from exc
    return _held[0]


def release_gpu() -> None:
    """Give this process's GPU back (normally the process exit does it)."""
    global _held
    if _held is None:
        return
    slot, handle = _held
    if slot.shared:
        Path(handle.name).unlink(missing_ok=True)
    handle.close()
    _held = None


def gpu_for_this_process(count: int) -> int | None:
    """The CUDA index ``base.device: auto`` should use, or None to leave torch's default.

    None when at most one GPU is visible or ``CUDA_VISIBLE_DEVICES`` is set (the user's
    choice of devices always wins); otherwise this process's claimed slot.
    """
    if count <= 1 or os.environ.get("CUDA_VISIBLE_DEVICES"):
        return None
    return claim_gpu(count).index
