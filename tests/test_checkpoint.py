"""Resumable training: a loop interrupted after epoch / iteration k and resumed ends identical."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from transferlab.errors import UserError
from transferlab.gan.models import build_gan
from transferlab.gan.training import LoopConfig, train_gan
from transferlab.seeding import seed_everything, torch_generator
from transferlab.training.checkpoint import (
    Checkpoint,
    ResumeParams,
    fingerprint,
    resume_requested,
    rng_state,
    set_rng_state,
    stage_checkpoint,
)
from transferlab.training.loop import OptimParams, fit

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Interrupted(Exception):
    """Stands for the kill: raised right after the loop saved step ``after``."""


class InterruptingCheckpoint(Checkpoint):
    """A checkpoint that lets the loop save step ``after``, then stops the run."""

    def __init__(self, *args, after: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.after = after

    def save(self, inputs, state) -> None:
        super().save(inputs, state)
        if state.get("epoch", state.get("iteration")) == self.after:
            raise Interrupted


def _random_draws() -> tuple:
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]


def test_rng_states_round_trip_through_weights_only_load(tmp_path):
    seed_everything(3)
    gen = torch_generator(5)
    np.random.randn()  # numpy keeps a cached gaussian: part of its state
    state = rng_state(gen)
    expected = (_random_draws(), torch.rand(3, generator=gen).tolist())
    torch.save(state, tmp_path / "rng.pt")
    seed_everything(99)
    other = torch_generator(7)
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True), other)
    assert (_random_draws(), torch.rand(3, generator=other).tolist()) == expected


# --- fit -----------------------------------------------------------------------------------


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    images = rng.integers(0, 60, (n, 8, 8, 1), dtype=np.uint8)
    images[np.arange(n), labels * 2, labels * 2] = 255
    return images, labels


def _augment(x: torch.Tensor) -> torch.Tensor:
    """Draws from torch, NumPy and Python RNGs, so all three must be restored on resume."""
    flips = torch.rand(len(x)) < 0.5
    x = torch.where(flips.view(-1, 1, 1, 1), x.flip(3), x)
    if np.random.rand() < 0.5:
        x = x.flip(2)
    return x.roll(random.randint(0, 1), dims=3)


def _fit(checkpoint: Checkpoint | None, epochs: int = 3):
    seed_everything(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 3))
    cfg = OptimParams(optimizer="adam", lr=0.01, epochs=epochs, batch_size=16, lr_schedule="cosine")
    history = fit(
        model, _data(80, 0), _data(40, 1), lambda x: x.float() / 255, cfg, CPU, torch_generator(0),
        augment=_augment, channels=1, log_every=2, checkpoint=checkpoint,
    )
    untimed = [{k: v for k, v in row.items() if k != "seconds"} for row in history["epochs"]]
    return fingerprint(model.state_dict()), untimed, history["iterations"], _random_draws()


def test_fit_interrupted_after_an_epoch_and_resumed_is_identical(tmp_path, capsys):
    reference = _fit(None)
    path = tmp_path / "fit" / "last.pt"
    with pytest.raises(Interrupted):
        _fit(InterruptingCheckpoint(path, "ctx", resume=False, after=1))
    assert path.is_file() and not list(path.parent.glob(".*"))  # written atomically
    _random_draws()  # whatever the killed process drew is gone; a new process starts fresh
    resumed = _fit(Checkpoint(path, "ctx", resume=True))
    assert "resuming from checkpoint" in capsys.readouterr().err
    assert resumed == reference  # same weights (bytes), curves and RNG states afterwards
    assert torch.load(path, weights_only=True)["epoch"] == 3


def test_fit_ignores_a_checkpoint_from_other_params_or_when_not_resuming(tmp_path, capsys):
    reference = _fit(None)
    path = tmp_path / "last.pt"
    with pytest.raises(Interrupted):
        _fit(InterruptingCheckpoint(path, "params-A", resume=False, after=1))
    assert _fit(Checkpoint(path, "params-B", resume=True)) == reference
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("checkpoint")]
    assert said == [f"checkpoint {path} ignored: it was made with different params or inputs; training from the start"]
    with pytest.raises(Interrupted):
        _fit(InterruptingCheckpoint(path, "params-A", resume=False, after=2))
    assert _fit(Checkpoint(path, "params-A", resume=False)) == reference
    assert "not used (starting over)" in capsys.readouterr().err
    path.write_bytes(b"truncated")
    assert _fit(Checkpoint(path, "params-A", resume=True)) == reference
    assert "ignored: unreadable" in capsys.readouterr().err


def test_fit_resumed_from_its_last_epoch_trains_no_more(tmp_path):
    reference = _fit(None, epochs=2)
    path = tmp_path / "last.pt"
    _fit(Checkpoint(path, "ctx", resume=False), epochs=2)  # completed, but the stage died after
    assert torch.load(path, weights_only=True)["epoch"] == 2
    assert _fit(Checkpoint(path, "ctx", resume=True), epochs=2) == reference


# --- GAN loop -------------------------------------------------------------------------------


def _gan(checkpoint: Checkpoint | None, sheets: list):
    gen = seed_everything(0)
    G, D = build_gan("mlp", nz=8, channels=1, image_size=8, n_classes=3, label_in_g=True, label_in_d=True, width=16)
    images, labels = _data(56, 2)  # 3 batches per data epoch, 2 per iteration: resumes mid-epoch
    cfg = LoopConfig(iterations=9, batch_size=16, lr=2e-4, betas=(0.5, 0.999), nb_update_D=2, log_every=2,
                     checkpoints=(3, 9))

    def on_checkpoint(it: int) -> None:
        sheets.append((it, fingerprint(G.state_dict())))

    rows = train_gan(
        G, D, torch.from_numpy(images).permute(0, 3, 1, 2), torch.from_numpy(labels), cfg, gen, CPU,
        n_classes=3, on_checkpoint=on_checkpoint, checkpoint=checkpoint,
    )
    return fingerprint(G.state_dict(), D.state_dict()), rows, torch.rand(2, generator=gen).tolist(), _random_draws()


@pytest.mark.parametrize("after", [4, 5])  # 5: mid log window and mid data epoch
def test_gan_loop_interrupted_and_resumed_is_identical(tmp_path, after):
    ref_sheets: list = []
    reference = _gan(None, ref_sheets)
    path = tmp_path / "last.pt"
    with pytest.raises(Interrupted):
        _gan(InterruptingCheckpoint(path, "ctx", resume=False, every_iterations=1, after=after), [])
    sheets: list = []
    assert _gan(Checkpoint(path, "ctx", resume=True, every_iterations=1), sheets) == reference
    assert sheets == ref_sheets  # the sheet of iteration 3 is redrawn from the same generator


def test_gan_checkpoints_every_n_iterations_and_after_the_last(tmp_path):
    saved: list[int] = []

    class Recording(Checkpoint):
        def save(self, inputs, state) -> None:
            saved.append(state["iteration"])

    _gan(Recording(tmp_path / "last.pt", "ctx", resume=False, every_iterations=4), [])
    assert saved == [4, 8, 9]


# --- the switch -----------------------------------------------------------------------------


def test_resume_switch_param_and_environment_override():
    on, off = ResumeParams(enabled=True), ResumeParams(enabled=False)
    assert resume_requested(on, {}) and not resume_requested(off, {})
    assert resume_requested(off, {"TRANSFERLAB_RESUME": "1"})
    assert not resume_requested(on, {"TRANSFERLAB_RESUME": "0"})
    with pytest.raises(UserError, match=r"^TRANSFERLAB_RESUME='maybe' is not understood; set it to 1"):
        resume_requested(off, {"TRANSFERLAB_RESUME": "maybe"})


def test_stage_checkpoint_lives_beside_the_params_file_and_defaults_without_a_section(tmp_path, monkeypatch):
    monkeypatch.delenv("TRANSFERLAB_RESUME", raising=False)
    params = tmp_path / "params.yaml"
    params.write_text("resume: {enabled: true, every_iterations: 7, dir: ck}\n")
    ckpt = stage_checkpoint("gan", "dcgan", {"lr": 1}, params_path=params)
    assert ckpt.path == tmp_path / "ck" / "gan" / "dcgan" / "last.pt"
    assert ckpt.resume and ckpt.save_enabled and ckpt.every_iterations == 7
    assert stage_checkpoint("gan", "dcgan", {"lr": 2}, params_path=params).context != ckpt.context
    params.write_text("base: {seed: 0}\n")
    default = stage_checkpoint("finetune", "d-b-head", params_path=params)
    assert default.path == tmp_path / "data" / "checkpoints" / "finetune" / "d-b-head" / "last.pt"
    assert not default.resume and default.save_enabled
    default.save("inputs", {"progress": "x"})
    default.discard()
    assert not default.path.parent.exists()
