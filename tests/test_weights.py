"""Weights: ImageNet from a TORCH_HOME cache, offline failure, local files, corrupt files."""

from __future__ import annotations

from urllib.error import URLError

import pytest
import torch

from transferlab.errors import UserError
from transferlab.models import weights as weights_io
from transferlab.models.registry import ARCHS, build_backbone

torch.set_num_threads(1)


def _no_network(monkeypatch):
    """Make torch.hub downloads fail like an offline machine, deterministically."""

    def offline(*args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "urlopen", offline)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    _no_network(monkeypatch)
    return tmp_path / "torch"


def test_imagenet_loads_from_torch_home_cache(torch_home, monkeypatch):
    """The enum's own file name under $TORCH_HOME/hub/checkpoints is what gets loaded.

    The test cannot make a file whose sha256 starts with torchvision's published prefix
    (resnet18-f37072fd.pth), so it first checks that such a file is rejected, then points
    the published-prefix lookup at the seeded file's own hash to exercise the load path.
    """
    enum = ARCHS["resnet18"].imagenet
    path = torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert weights_io.hub_checkpoint_path(enum) == path
    source = build_backbone("resnet18", "none", seed=5)
    path.parent.mkdir(parents=True)
    torch.save(source.model.state_dict(), path)

    with pytest.raises(UserError) as err:
        build_backbone("resnet18", "imagenet")
    assert "f37072fd" in str(err.value) and "\n" not in str(err.value)

    sha = weights_io.file_sha256(path)
    monkeypatch.setattr(weights_io, "published_sha256_prefix", lambda url: sha[:8])
    bb = build_backbone("resnet18", "imagenet", name="r18")
    assert bb.weights == "imagenet"
    assert torch.equal(bb.model.layer3[0].conv1.weight, source.model.layer3[0].conv1.weight)
    assert torch.equal(bb.model.bn1.running_var, source.model.bn1.running_var)
    assert bb.categories is not None and len(bb.categories) == 1000 and bb.categories[0] == "tench"
    assert not any(t.is_meta for t in bb.model.parameters())
    assert all(p.requires_grad for p in bb.model.parameters())  # fine-tuning still trains them
    # fine-tuning head on top of ImageNet weights
    bb10 = build_backbone("resnet18", "imagenet", num_classes=10)
    assert bb10.model.fc.out_features == 10 and bb10.categories is None
    assert torch.equal(bb10.model.conv1.weight, source.model.conv1.weight)


def test_imagenet_missing_offline_is_one_user_error_line(torch_home):
    with pytest.raises(UserError) as err:
        build_backbone("vgg16", "imagenet", name="big")
    msg = str(err.value)
    assert "\n" not in msg
    assert "vgg16-397923af.pth" in msg and str(torch_home / "hub" / "checkpoints") in msg
    assert "TORCH_HOME" in msg and "https://download.pytorch.org/models/vgg16-397923af.pth" in msg
    assert "backbones.big.weights" in msg
    assert not (torch_home / "hub" / "checkpoints" / "vgg16-397923af.pth").exists()


def test_imagenet_corrupt_cache_is_user_error(torch_home, monkeypatch):
    path = torch_home / "hub" / "checkpoints" / "squeezenet1_1-b8a52dc0.pth"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    monkeypatch.setattr(weights_io, "published_sha256_prefix", lambda url: None)
    with pytest.raises(UserError, match="unreadable") as err:
        build_backbone("squeezenet1_1", "imagenet")
    assert "\n" not in str(err.value)


def test_vgg_mini_has_no_imagenet_weights():
    with pytest.raises(UserError, match="no ImageNet weights"):
        build_backbone("vgg_mini", "imagenet")


def test_local_weights_round_trip(tmp_path):
    bb = build_backbone("vgg_mini", "none", seed=2)
    torch.save(bb.model.state_dict(), tmp_path / "w.pt")
    torch.save({"state_dict": bb.model.state_dict(), "categories": list("abcdefghij")}, tmp_path / "ckpt.pth")
    x = bb.preprocess(torch.randint(0, 256, (2, 3, 28, 28), dtype=torch.uint8))
    with torch.no_grad():
        expected = bb.model.eval()(x)
        for f in ("w.pt", "ckpt.pth"):
            loaded = build_backbone("vgg_mini", str(tmp_path / f))
            assert loaded.weights == str(tmp_path / f)
            assert torch.equal(loaded.model(x), expected)
    assert build_backbone("vgg_mini", str(tmp_path / "ckpt.pth")).categories == tuple("abcdefghij")


def test_local_weights_with_other_head_width(tmp_path):
    """A fine-tuned checkpoint (3-class head) loads into the arch; num_classes can resize it again."""
    bb = build_backbone("vgg_mini", "none", num_classes=3, seed=2)
    torch.save(bb.model.state_dict(), tmp_path / "ft.pt")
    loaded = build_backbone("vgg_mini", str(tmp_path / "ft.pt"))
    assert loaded.model.classifier[6].out_features == 3
    assert torch.equal(loaded.model.classifier[6].weight, bb.model.classifier[6].weight)
    assert build_backbone("vgg_mini", str(tmp_path / "ft.pt"), num_classes=5).model.classifier[6].out_features == 5


@pytest.mark.parametrize(
    "content, match",
    [
        (b"\x00garbage, not a zip or pickle", "not a readable torch state dict"),
        (None, "not found"),
    ],
)
def test_corrupt_or_missing_local_file(tmp_path, content, match):
    path = tmp_path / "bad.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=match) as err:
        build_backbone("vgg_mini", str(path))
    assert "\n" not in str(err.value)


def test_mismatched_keys_or_shapes(tmp_path):
    torch.save({"foo.weight": torch.zeros(2)}, tmp_path / "keys.pt")
    with pytest.raises(UserError, match="do not fit") as err:
        build_backbone("vgg_mini", str(tmp_path / "keys.pt"))
    assert "\n" not in str(err.value) and "missing" in str(err.value)
    state = build_backbone("vgg_mini", "none").model.state_dict()
    state["features.0.weight"] = torch.zeros(5, 3, 3, 3)
    torch.save(state, tmp_path / "shape.pt")
    with pytest.raises(UserError, match="do not fit") as err:
        build_backbone("vgg_mini", str(tmp_path / "shape.pt"))
    assert "\n" not in str(err.value)
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(UserError, match="no state dict"):
        build_backbone("vgg_mini", str(tmp_path / "list.pt"))


def test_unknown_weights_word():
    with pytest.raises(UserError, match="unknown weights 'imagenett'"):
        build_backbone("vgg_mini", "imagenett")
