"""Resumable training: a checkpoint per stage item, outside DVC's outputs, resumed only on request.

The training loops (``training.fit``, ``gan.training.train_gan``) save their whole state
(model, optimiser, scheduler, progress, curves so far and every RNG state) at epoch or
N-iteration boundaries to ``<resume.dir>/<stage>/<item>/last.pt``, written atomically and
loaded with ``torch.load(weights_only=True)`` (so only tensors and plain containers are
stored). A checkpoint is keyed by a hash of the stage's params and of the loop's actual
inputs (initial weights, data, RNG states), so one made with different params is never
resumed. The stage deletes it once its outputs are written. Resuming changes no result,
so the ``resume`` section is read by the training stages but tracked by no DVC stage.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import random
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferlab.config import PARAMS_FILE, from_mapping, read_params, to_dict
from transferlab.errors import UserError
from transferlab.io import atomic_file
from transferlab.training.params import ResumeParams

ENV_RESUME = "TRANSFERLAB_RESUME"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def resume_requested(params: ResumeParams, environ: Mapping[str, str] = os.environ) -> bool:
    """``resume.enabled``, overridden by the environment variable TRANSFERLAB_RESUME=1|0."""
    value = environ.get(ENV_RESUME)
    if value is None:
        return params.enabled
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise UserError(f"{ENV_RESUME}={value!r} is not understood; set it to 1 (resume) or 0 (start over)")


def fingerprint(*parts: Any) -> str:
    """sha256 over tensors, arrays, mappings, sequences, dataclasses and plain values."""
    digest = hashlib.sha256()
    _feed(digest, parts)
    return digest.hexdigest()


def _feed(digest: Any, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().contiguous()
        digest.update(f"tensor{obj.dtype}{tuple(obj.shape)}".encode())
        digest.update(obj.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, np.ndarray):
        digest.update(f"array{obj.dtype}{obj.shape}".encode())
        digest.update(np.ascontiguousarray(obj).tobytes())
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        digest.update(type(obj).__name__.encode())
        _feed(digest, to_dict(obj))
    elif isinstance(obj, Mapping):
        digest.update(b"{")
        for key in sorted(obj, key=str):
            digest.update(json.dumps(str(key)).encode())
            _feed(digest, obj[key])
        digest.update(b"}")
    elif isinstance(obj, list | tuple):
        digest.update(b"[")
        for item in obj:
            _feed(digest, item)
        digest.update(b"]")
    else:
        digest.update(repr(obj).encode())


def rng_state(*generators: torch.Generator) -> dict[str, Any]:
    """Every RNG state a loop draws from, as tensors and plain values (weights_only-loadable)."""
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "kind": np_kind,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss},
        "generators": [g.get_state() for g in generators],
    }


def set_rng_state(state: Mapping[str, Any], *generators: torch.Generator) -> None:
    """Restore what :func:`rng_state` captured (same generators, same order)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["kind"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["gauss"],
        )
    )
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    for gen, gen_state in zip(generators, state["generators"], strict=True):
        gen.set_state(gen_state)


class Checkpoint:
    """One stage item's checkpoint file: saved by a training loop, loaded only when resuming.

    ``context`` is the caller's fingerprint of the params that shape training; the loop
    adds its own inputs' fingerprint, so a checkpoint resumes only the very same run.
    Epoch loops save after every epoch; iteration loops every ``every_iterations``.
    """

    def __init__(
        self,
        path: str | Path,
        context: str,
        *,
        resume: bool,
        save: bool = True,
        every_iterations: int = 100,
    ) -> None:
        self.path = Path(path)
        self.context = context
        self.resume = resume
        self.save_enabled = save
        self.every_iterations = every_iterations
        self.prior_seconds = 0.0  # training seconds the resumed run(s) had already spent

    def _key(self, inputs: str) -> str:
        return fingerprint(self.context, inputs)

    def load(self, inputs: str) -> dict[str, Any] | None:
        """The saved state if resuming and it was made by the same params and inputs; else None."""
        if not self.path.is_file():
            return None
        if not self.resume:
            _say(
                f"checkpoint {self.path} not used (starting over); set resume.enabled: true in "
                f"params.yaml or {ENV_RESUME}=1 to continue from it"
            )
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as err:  # truncated or foreign file: never fatal, just not resumable
            _say(f"checkpoint {self.path} ignored: unreadable ({type(err).__name__}); training from the start")
            return None
        if not isinstance(state, dict) or state.get("key") != self._key(inputs):
            _say(
                f"checkpoint {self.path} ignored: it was made with different params or inputs; "
                "training from the start"
            )
            return None
        self.prior_seconds = float(state.get("seconds", 0.0))
        _say(f"resuming from checkpoint {self.path} ({state['progress']})")
        return state

    def due(self, iteration: int, last: int) -> bool:
        """Whether an iteration loop saves after ``iteration`` (periodically, and after the last)."""
        return self.save_enabled and (iteration % self.every_iterations == 0 or iteration == last)

    def save(self, inputs: str, state: dict[str, Any]) -> None:
        """Write ``state`` (tensors and plain containers only) atomically under the key."""
        if not self.save_enabled:
            return
        with atomic_file(self.path, "wb") as fh:
            torch.save({**state, "key": self._key(inputs)}, fh)

    def discard(self) -> None:
        """Remove the checkpoint (the stage succeeded) and its now-empty directory."""
        self.path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()


def stage_checkpoint(
    stage: str, item: str, *params: Any, params_path: str | Path = PARAMS_FILE
) -> Checkpoint:
    """The checkpoint of ``stage@item`` as the ``resume`` section says; ``params`` key it.

    ``resume.dir`` is relative to the params file's folder (the project root); without a
    ``resume`` section the defaults apply (save, don't resume).
    """
    section = read_params(params_path).get("resume")
    cfg = ResumeParams() if section is None else from_mapping(ResumeParams, section, "resume")
    return Checkpoint(
        Path(params_path).parent / cfg.dir / stage / item / "last.pt",
        fingerprint(stage, item, *params),
        resume=resume_requested(cfg),
        save=cfg.save,
        every_iterations=cfg.every_iterations,
    )


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
