"""One-pass feature extraction equals per-layer passes; pooling dims; the feature cache format."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferlab.data.prepared import to_nchw_uint8
from transferlab.errors import UserError
from transferlab.models.registry import build_backbone
from transferlab.transfer.features import extract_features, load_features, save_features

torch.set_num_threads(1)
CPU = torch.device("cpu")
F16 = {"rtol": 1e-2, "atol": 1e-3}  # float16 storage


@pytest.fixture(scope="module")
def mini():
    return build_backbone("vgg_mini", "none", seed=0)


@pytest.fixture(scope="module")
def resnet18():
    return build_backbone("resnet18", "none", seed=0)


def _images(n, side, channels, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, side, side, channels), dtype=np.uint8)


def test_one_pass_equals_separate_passes_vgg_mini(mini):
    images = _images(5, 28, 1)  # grayscale, replicated to 3 channels
    layers = ["pool1", "pool2", "pool3", "fc6", "fc7"]
    feats, stats = extract_features(mini, images, layers, batch_size=2, device=CPU, progress=False)
    for layer in layers:
        alone, _ = extract_features(mini, images, [layer], batch_size=5, device=CPU, progress=False)
        assert feats[layer].dtype == np.float16
        np.testing.assert_allclose(feats[layer].astype(np.float32), alone[layer].astype(np.float32), **F16)
    # independent of FX: the plain module forward
    x = mini.preprocess(to_nchw_uint8(images))
    m = mini.model.eval()
    with torch.no_grad():
        pool3 = m.features(x)
        fc7 = m.classifier[:5](m.avgpool(pool3).flatten(1))
    np.testing.assert_allclose(feats["pool3"].astype(np.float32), pool3.flatten(1).numpy(), **F16)
    np.testing.assert_allclose(feats["fc7"].astype(np.float32), fc7.numpy(), **F16)
    assert {k: v.shape for k, v in feats.items()} == {
        "pool1": (5, 16 * 14 * 14), "pool2": (5, 32 * 7 * 7), "pool3": (5, 64 * 3 * 3), "fc6": (5, 256), "fc7": (5, 256)
    }
    assert stats["images"] == 5 and stats["device"] == "cpu" and stats["images_per_second"] > 0
    assert stats["layers"]["pool3"] == {"node": "features.14", "shape": [64, 3, 3], "dim": 576}
    assert m.training is False


def test_one_pass_equals_separate_passes_resnet18(resnet18):
    images = _images(2, 40, 3)  # resized to 256, cropped to 224 inside preprocess
    feats, _ = extract_features(resnet18, images, ["layer3", "avgpool"], batch_size=2, device=CPU, progress=False)
    x = resnet18.preprocess(to_nchw_uint8(images))
    m = resnet18.model.eval()
    with torch.no_grad():
        h = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        layer3 = m.layer3(m.layer2(m.layer1(h)))
        avg = m.avgpool(m.layer4(layer3)).flatten(1)
    assert feats["layer3"].shape == (2, 256 * 14 * 14) and feats["avgpool"].shape == (2, 512)
    np.testing.assert_allclose(feats["layer3"].astype(np.float32), layer3.flatten(1).numpy(), **F16)
    np.testing.assert_allclose(feats["avgpool"].astype(np.float32), avg.numpy(), **F16)


@pytest.mark.parametrize("pool, size", [("avg", 1), ("max", 1), ("avg", 2)])
def test_pooling_dims_and_values(mini, pool, size):
    images = _images(3, 28, 3, seed=1)
    raw, _ = extract_features(mini, images, ["pool2", "fc7"], device=CPU, progress=False)
    pooled, stats = extract_features(mini, images, ["pool2", "fc7"], device=CPU, pool=pool, pool_size=size, progress=False)
    assert pooled["pool2"].shape == (3, 32 * size * size)
    assert stats["layers"]["pool2"]["shape"] == [32, 7, 7] and stats["layers"]["pool2"]["dim"] == 32 * size * size
    np.testing.assert_array_equal(pooled["fc7"], raw["fc7"])  # FC outputs are not pooled
    if size == 1:
        maps = raw["pool2"].astype(np.float32).reshape(3, 32, 49)
        want = maps.mean(-1) if pool == "avg" else maps.max(-1)
        np.testing.assert_allclose(pooled["pool2"].astype(np.float32), want, **F16)


def test_bad_arguments(mini):
    images = _images(2, 28, 1)
    with pytest.raises(UserError, match="unknown pool"):
        extract_features(mini, images, ["fc7"], device=CPU, pool="median", progress=False)
    with pytest.raises(UserError, match="cut point"):
        extract_features(mini, images, ["conv5_3"], device=CPU, progress=False)


def test_save_load_features_round_trip(mini, tmp_path):
    images = _images(4, 28, 1)
    feats, stats = extract_features(mini, images, ["pool3", "fc7"], device=CPU, progress=False)
    labels = np.array([0, 1, 2, 1])
    is_test = np.array([False, False, True, True])
    save_features(tmp_path / "f", feats, labels, is_test, {"dataset": "toy", "layers": stats["layers"]})
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["fc7.npy", "is_test.npy", "labels.npy", "meta.json", "pool3.npy"]
    loaded = load_features(tmp_path / "f")
    got, got_labels, got_is_test, meta = loaded  # unpacks like save_features' arguments
    assert set(got) == {"pool3", "fc7"}
    np.testing.assert_array_equal(got["fc7"], feats["fc7"])
    np.testing.assert_array_equal(got_labels, labels)
    np.testing.assert_array_equal(got_is_test, is_test)
    assert meta["dataset"] == "toy" and meta["images"] == 4
    assert meta["layers"]["pool3"] == {"file": "pool3.npy", "dim": 576, "shape": [64, 3, 3], "node": "features.14"}
    only = load_features(tmp_path / "f", ["fc7"], mmap=True)
    assert list(only.feats) == ["fc7"] and only.feats["fc7"].dtype == np.float16
    with pytest.raises(UserError, match="'fc6'"):
        load_features(tmp_path / "f", ["fc6"])
    with pytest.raises(UserError, match="not found"):
        load_features(tmp_path / "missing")


@pytest.mark.parametrize(
    "side, channels, resize, crop", [(28, 1, 28, 28), (32, 3, 32, 28), (32, 1, 32, 28), (20, 3, 28, 28), (20, 1, 28, 28)]
)
def test_network_input_equals_preprocess(mini, side, channels, resize, crop):
    """The lookup-table input (no resize: plain or cropped) and the resize path give preprocess's exact values."""
    import dataclasses

    from transferlab.device import prepare_batch
    from transferlab.transfer.features import network_input

    backbone = dataclasses.replace(mini, resize_size=resize, input_size=crop, mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3))
    images = _images(3, side, channels, seed=2)
    got = network_input(backbone, images, CPU)
    want = prepare_batch(backbone.preprocess(to_nchw_uint8(images)), CPU, inference=True)
    assert got.shape == (3, 3, crop, crop) and got.dtype == torch.float32
    assert got.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(got, want)


def test_extraction_restores_model_format_and_mode(mini):
    """channels_last is for the extraction only: the model comes back contiguous, in its own mode."""
    mini.model.train()
    extract_features(mini, _images(2, 28, 1), ["pool1"], device=CPU, progress=False)
    assert mini.model.features[0].weight.is_contiguous() and mini.model.training
    mini.model.eval()


def test_count_nonfinite_float16():
    from transferlab.transfer.features import count_nonfinite

    values = np.array([[0.0, -1.5, 65504.0, -65504.0], [np.inf, -np.inf, np.nan, 6e-8]], dtype=np.float16)
    assert count_nonfinite(values) == 3
    assert count_nonfinite(values[:1].copy()) == 0  # negative values, all finite: the second pass
    assert count_nonfinite(np.float16([0.0, 1.0, 65504.0])) == 0  # non-negative: decided by one max
    assert count_nonfinite(np.float16([-0.0, np.inf, 2.0])) == 1
    with np.errstate(over="ignore"):
        overflowed = np.float32([7e4, 1.0]).astype(np.float16)
    assert count_nonfinite(overflowed) == 1  # 7e4 > float16 max: inf


def _reference_batch_by_batch(backbone, images, layers, batch_size, pool="none", pool_size=1):
    """What the extraction computes, one batch at a time with no store or file in between."""
    from transferlab.transfer.features import _write, feature_extractor, network_input, pool_map

    extractor = feature_extractor(backbone, layers, CPU)
    blocks = {layer: [] for layer in layers}
    with torch.inference_mode():
        for lo in range(0, len(images), batch_size):
            out = extractor(network_input(backbone, images[lo : lo + batch_size], CPU))
            for layer in layers:
                y = pool_map(out[layer], pool, pool_size)
                rows = np.empty((len(y), int(np.prod(y.shape[1:]))), dtype=np.float16)
                _write(rows, y)
                blocks[layer].append(rows)
    backbone.model.to(memory_format=torch.contiguous_format)
    return {layer: np.concatenate(b) for layer, b in blocks.items()}


@pytest.mark.parametrize("pool, size", [("none", 1), ("avg", 2)])
def test_streamed_features_are_byte_identical(mini, tmp_path, pool, size):
    """out_dir: each layer's .npy written batch by batch is the file np.save writes, with the values of a batch-by-batch reference."""
    images = _images(11, 28, 1, seed=3)  # 3 batches of 4, the last one short
    layers = ["pool1", "pool3", "fc7"]
    kw = {"batch_size": 4, "device": CPU, "pool": pool, "pool_size": size, "progress": False}
    in_memory, stats = extract_features(mini, images, layers, **kw)
    streamed, streamed_stats = extract_features(mini, images, layers, out_dir=tmp_path / "f", **kw)
    want = _reference_batch_by_batch(mini, images, layers, 4, pool, size)
    assert streamed_stats["layers"] == stats["layers"]
    for layer in layers:
        assert isinstance(streamed[layer], np.memmap) and not streamed[layer].flags.writeable
        assert streamed[layer].tobytes() == in_memory[layer].tobytes() == want[layer].tobytes()
        np.save(tmp_path / "saved.npy", in_memory[layer])
        assert (tmp_path / "f" / f"{layer}.npy").read_bytes() == (tmp_path / "saved.npy").read_bytes()
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["fc7.npy", "pool1.npy", "pool3.npy"]


def test_save_features_keeps_streamed_layers_in_place(mini, tmp_path):
    """save_features into the directory the layers were streamed to adds labels/split/meta and leaves those files be."""
    images = _images(6, 28, 1)
    feats, stats = extract_features(mini, images, ["pool2", "fc7"], batch_size=4, device=CPU, progress=False, out_dir=tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    labels, is_test = np.arange(6) % 2, np.arange(6) >= 4
    save_features(tmp_path, feats, labels, is_test, {"layers": stats["layers"]})
    assert {name: (tmp_path / name).read_bytes() for name in before} == before
    np.testing.assert_array_equal(feats["fc7"], load_features(tmp_path).feats["fc7"])  # the memmap still reads fine
    other = tmp_path / "other"  # a memmap of some other file is saved like any array
    save_features(other, feats, labels, is_test, {})
    assert (other / "pool2.npy").read_bytes() == before["pool2.npy"]


def test_row_writer_matches_np_save_and_checks_rows(tmp_path):
    from transferlab.transfer.feature_cache import RowWriter

    arr = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float16)
    writer = RowWriter(tmp_path / "a.npy", np.int64(7), np.int64(5))  # numpy ints: the header must still say (7, 5)
    writer.write(arr[:3])
    writer.write(arr[3:])
    got = writer.close()
    np.save(tmp_path / "b.npy", arr)
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()
    np.testing.assert_array_equal(got, arr)
    short = RowWriter(tmp_path / "c.npy", 7, 5)
    short.write(arr[:2])
    with pytest.raises(ValueError, match="2 of 7 rows"):
        short.close()
    wrong = RowWriter(tmp_path / "d.npy", 2, 5)
    with pytest.raises(ValueError, match="float16"):
        wrong.write(arr[:2].astype(np.float32))
    with pytest.raises(ValueError, match="more than the 2 rows"):
        wrong.write(arr[:3])
    wrong.discard()
    assert not (tmp_path / "d.npy").exists()


def test_failure_mid_extraction_leaves_no_output(mini, tmp_path, monkeypatch):
    """An error while writing batch 2 reaches the caller unchanged; no layer file is left, and the stage's atomic output stays absent."""
    from transferlab.data.prepared import PreparedDataset, save_prepared
    from transferlab.io import atomic_dir
    from transferlab.transfer import features
    from transferlab.transfer.extraction import ExtractParams, extract_prepared

    real_write, calls = features._write, []

    def failing_write(rows, y):
        calls.append(len(rows))
        if len(calls) == 4:  # 3 layers: the second batch's first layer
            raise UserError("disk full while writing features")
        real_write(rows, y)

    monkeypatch.setattr(features, "_write", failing_write)
    images = _images(10, 28, 1)
    with pytest.raises(UserError, match="^disk full while writing features$"):
        extract_features(mini, images, ["pool1", "pool3", "fc7"], batch_size=4, device=CPU, progress=False, out_dir=tmp_path / "f")
    assert list((tmp_path / "f").iterdir()) == []
    assert mini.model.features[0].weight.is_contiguous()

    prepared = tmp_path / "prepared"
    prepared.mkdir()
    ds = PreparedDataset(images, np.arange(10) % 2, np.arange(10) >= 8, ("a", "b"), {"name": "toy"})
    save_prepared(ds, prepared)
    calls.clear()
    out = tmp_path / "features"
    with pytest.raises(UserError, match="disk full"), atomic_dir(out) as tmp:
        extract_prepared(mini, prepared, ["pool1", "pool3", "fc7"], ExtractParams(batch_size=4), tmp, device=CPU, progress=False)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["f", "prepared"]


def test_float16_overflow_is_reported_per_layer(mini, tmp_path):
    """Values beyond float16's range are counted batch by batch as written, and reported once per layer."""
    import copy

    from transferlab.transfer.features import count_nonfinite

    big = copy.deepcopy(mini)
    with torch.no_grad():
        big.model.features[0].weight.mul_(1e6)  # pool1's activations far beyond 65504
    with pytest.warns(UserWarning, match=r"layer pool1: \d+ feature values overflow float16") as caught:
        feats, _ = extract_features(big, _images(6, 28, 1), ["pool1"], batch_size=4, device=CPU, progress=False, out_dir=tmp_path)
    count = int(str(caught[0].message).split()[2])
    assert count == count_nonfinite(np.asarray(feats["pool1"])) > 0


def test_row_writer_replaces_rather_than_truncates(tmp_path):
    """Rewriting a layer file leaves a reader's mapping of the previous one intact (no truncation under it)."""
    from transferlab.transfer.feature_cache import RowWriter

    first = np.full((4, 3), 1.5, dtype=np.float16)
    np.save(tmp_path / "a.npy", first)
    mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
    writer = RowWriter(tmp_path / "a.npy", 2, 3)
    writer.write(np.zeros((2, 3), dtype=np.float16))
    assert writer.close().shape == (2, 3)
    np.testing.assert_array_equal(mapped, first)  # truncating in place changes this under the reader (or SIGBUSes)
