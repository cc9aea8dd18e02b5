"""The dataset registry, the offline sources, stratified sampling and the prepare stage."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import yaml

from stages.prepare import main as prepare_main
from transferlab.data.idx import read_idx_bytes
from transferlab.data.prepared import load_prepared
from transferlab.data.registry import SOURCES, dataset_entry, prepare_dataset
from transferlab.data.sampling import limit_split, stratified_subset
from transferlab.errors import UserError
from transferlab.metrics import read_metrics

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
HAS_FASHION = (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file()


# --- sampling -------------------------------------------------------------------------


def test_stratified_subset_keeps_proportions_and_is_seeded():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    a = stratified_subset(labels, 10, seed=3)
    assert list(np.bincount(labels[a])) == [5, 3, 2]
    assert np.array_equal(a, stratified_subset(labels, 10, seed=3))
    assert not np.array_equal(a, stratified_subset(labels, 10, seed=4))
    assert len(stratified_subset(labels, 7, seed=0)) == 7  # remainders distributed
    assert np.array_equal(stratified_subset(labels, 500, seed=0), np.arange(100))


def test_limit_split_limits_each_split_separately():
    labels = np.tile([0, 1], 50)
    is_test = np.arange(100) >= 80
    keep = limit_split(labels, is_test, max_train=10, max_test=None, seed=0)
    assert (~is_test[keep]).sum() == 10 and is_test[keep].sum() == 20
    assert list(np.bincount(labels[keep][~is_test[keep]])) == [5, 5]


# --- offline sources ------------------------------------------------------------------


def test_digits_shapes_range_and_deterministic_split():
    ds = prepare_dataset("digits", {"source": "digits"}, seed=0)
    assert ds.images.shape == (1797, 8, 8, 1) and ds.images.dtype == np.uint8
    assert ds.images.min() == 0 and ds.images.max() == 255
    assert ds.classes == tuple(str(i) for i in range(10))
    assert ds.counts() == {"train": 1348, "test": 449}
    again = prepare_dataset("digits", {"source": "digits"}, seed=0)
    other = prepare_dataset("digits", {"source": "digits"}, seed=1)
    assert np.array_equal(ds.is_test, again.is_test)
    assert not np.array_equal(ds.is_test, other.is_test)
    test_counts = np.bincount(ds.labels[ds.is_test])
    assert test_counts.min() >= 43 and test_counts.max() <= 47  # ~25% of each class
    assert ds.meta["name"] == "digits" and ds.meta["source"] == "digits"


@pytest.fixture(scope="module")
def fashion():
    if not HAS_FASHION:
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    return prepare_dataset("fashion-mnist", {"source": "fashion-mnist"}, seed=0)


def test_fashion_mnist_from_debian_files(fashion):
    assert fashion.images.shape == (70000, 28, 28, 1)
    assert fashion.counts() == {"train": 60000, "test": 10000}
    assert len(fashion.classes) == 10 and fashion.classes[0] == "T-shirt/top"
    assert list(np.bincount(fashion.labels[fashion.is_test])) == [1000] * 10
    files = fashion.meta["provenance"]["files"]
    assert len(files) == 4 and all(len(sha) == 64 for sha in files.values())


def test_fashion_mnist_subsample_is_stratified_and_seeded(fashion):
    entry = {"source": "fashion-mnist", "path": str(FASHION_DIR), "max_train": 600, "max_test": 100}
    small = prepare_dataset("fashion-mnist", entry, seed=5)
    assert small.counts() == {"train": 600, "test": 100}
    assert list(np.bincount(small.labels[~small.is_test])) == [60] * 10
    assert list(np.bincount(small.labels[small.is_test])) == [10] * 10
    keep = limit_split(
        fashion.labels, fashion.is_test, 600, 100, seed=5
    )  # same seed -> same indices
    assert np.array_equal(small.images, fashion.images[keep])
    assert np.array_equal(small.labels, fashion.labels[keep])


def test_fashion_mnist_bad_path_names_it(tmp_path):
    with pytest.raises(UserError, match=f"no Fashion-MNIST idx files.*{tmp_path.name}"):
        prepare_dataset("fm", {"source": "fashion-mnist", "path": str(tmp_path)}, seed=0)


def test_fashion_mnist_offline_without_files_says_how_to_fix(tmp_path, monkeypatch, no_network):
    monkeypatch.setattr("transferlab.data.offline.FASHION_MNIST_DEBIAN", tmp_path / "absent")
    monkeypatch.delenv("FASHION_MNIST_DIR", raising=False)
    with pytest.raises(UserError) as err:
        prepare_dataset("fm", {"source": "fashion-mnist"}, seed=0, cache_dir=tmp_path / "cache")
    msg = str(err.value)
    assert "\n" not in msg and "apt-get install dataset-fashion-mnist" in msg and "absent" in msg
    assert list((tmp_path / "cache").iterdir()) == []


def test_idx_parser_rejects_truncated_data():
    header = bytes([0, 0, 0x08, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    assert read_idx_bytes(header + bytes(range(6))).tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(UserError, match="truncated"):
        read_idx_bytes(header + bytes(5))


@pytest.fixture
def no_network(monkeypatch):
    """Make every outgoing connection fail as it would with no network."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.parametrize("source", ["mnist", "cifar10", "eurosat"])
def test_torchvision_sources_offline_fail_with_one_line(source, tmp_path, no_network):
    cache = tmp_path / "cache"
    with pytest.raises(UserError) as err:
        prepare_dataset(source, {"source": source}, seed=0, cache_dir=cache)
    msg = str(err.value)
    assert "\n" not in msg and "no network" in msg and str(cache) in msg
    assert list(cache.iterdir()) == []  # no partial download left behind


# --- registry errors ------------------------------------------------------------------


def test_unknown_source_lists_valid_sources():
    with pytest.raises(UserError) as err:
        prepare_dataset("x", {"source": "imagenet"}, seed=0)
    msg = str(err.value)
    assert "unknown source 'imagenet'" in msg and "\n" not in msg
    assert all(name in msg for name in SOURCES)


def test_unknown_dataset_name_lists_entries():
    params = {
        "datasets": {"digits": {"source": "digits"}, "fashion-mnist": {"source": "fashion-mnist"}}
    }
    with pytest.raises(
        UserError, match="unknown dataset 'digitz'; valid datasets: digits, fashion-mnist"
    ):
        dataset_entry(params, "digitz")


def test_unknown_option_key_is_named():
    with pytest.raises(UserError, match=r"datasets\.digits\.test_fracton: unknown key; valid keys: .*did you mean .test_fraction."):
        prepare_dataset("digits", {"source": "digits", "test_fracton": 0.2}, seed=0)


@pytest.mark.parametrize(
    ("entry", "pattern"),
    [
        ({"source": "digits", "test_fraction": 1.5}, "test_fraction must be in"),
        ({"source": "digits", "max_train": 0}, "max_train must be null or >= 1"),
        ({"source": "folder", "path": "x", "channels": 2}, "channels must be 1"),
        (
            {"source": "folder", "path": "x", "on_bad_file": "ignore"},
            "expected one of 'skip', 'error'",
        ),
        ({"source": "hymenoptera", "sha256": "abc"}, "sha256 must be null or 64 hex digits"),
        ({"max_train": 3}, "missing key 'source'"),
    ],
)
def test_out_of_range_options_are_one_line_errors(entry, pattern):
    with pytest.raises(UserError, match=pattern) as err:
        prepare_dataset("d", entry, seed=0)
    assert "\n" not in str(err.value)


# --- the stage ------------------------------------------------------------------------


def _write_params(path: Path, digits: dict) -> Path:
    params = {
        "base": {"seed": 0, "device": "cpu", "num_workers": 0},
        "datasets": {"digits": digits},
    }
    path.write_text(yaml.safe_dump(params))
    return path


def _argv(tmp_path: Path, params: Path) -> list[str]:
    return [
        "--dataset",
        "digits",
        "--out",
        str(tmp_path / "prepared/digits"),
        "--metrics",
        str(tmp_path / "metrics/digits.json"),
        "--params",
        str(params),
        "--cache-dir",
        str(tmp_path / "downloads"),
    ]


def test_stage_writes_prepared_dir_and_metrics(tmp_path):
    params = _write_params(
        tmp_path / "params.yaml", {"source": "digits", "max_train": 100, "max_test": 50}
    )
    prepare_main(_argv(tmp_path, params))
    ds = load_prepared(tmp_path / "prepared/digits")
    assert ds.counts() == {"train": 100, "test": 50} and ds.images.shape[1:] == (8, 8, 1)
    metrics = read_metrics(tmp_path / "metrics/digits.json")  # with its timings/ merged back
    assert metrics["train"] == 100 and metrics["test"] == 50 and metrics["classes"] == 10
    assert (
        metrics["image_shape"] == [8, 8, 1] and metrics["skipped"] == 0 and metrics["seconds"] >= 0
    )
    assert sorted(p.name for p in (tmp_path / "prepared").iterdir()) == [
        "digits"
    ]  # no temp dirs left


def test_stage_bad_params_exit_2_and_leave_outputs_alone(tmp_path, capsys):
    params = _write_params(tmp_path / "params.yaml", {"source": "digits", "test_fraction": 1.5})
    with pytest.raises(SystemExit) as exit_info:
        prepare_main(_argv(tmp_path, params))
    assert exit_info.value.code == 2
    assert "test_fraction must be in (0, 1)" in capsys.readouterr().err
    assert (
        not (tmp_path / "prepared/digits").exists()
        and not (tmp_path / "metrics/digits.json").exists()
    )

    out = tmp_path / "prepared/digits"
    out.mkdir(parents=True)
    (out / "keep.txt").write_text("previous run")
    missing = _write_params(
        tmp_path / "params.yaml", {"source": "folder", "path": str(tmp_path / "nope")}
    )
    with pytest.raises(SystemExit) as exit_info:
        prepare_main(_argv(tmp_path, missing))
    assert exit_info.value.code == 2
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in (tmp_path / "prepared").iterdir()) == ["digits"]


# --- torchvision sources, success path from a pre-filled cache (no network) ------------


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


def test_mnist_reads_torchvision_cache(tmp_path, no_network):
    raw = tmp_path / "cache/MNIST/raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 20), ("t10k", 10)):
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(_idx(rng.integers(0, 255, (n, 28, 28))))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx(np.arange(n) % 10))
    ds = prepare_dataset(
        "mnist", {"source": "mnist", "max_train": 10}, seed=0, cache_dir=tmp_path / "cache"
    )
    assert ds.images.shape == (20, 28, 28, 1) and ds.counts() == {"train": 10, "test": 10}
    assert len(ds.classes) == 10
    assert ds.meta["provenance"]["torchvision_dataset"] == "torchvision.datasets.MNIST"


def test_eurosat_reads_torchvision_cache_and_splits(tmp_path, no_network):
    from PIL import Image

    root = tmp_path / "cache/eurosat/2750"
    for c, name in enumerate(("Forest", "River")):
        (root / name).mkdir(parents=True)
        for i in range(10):
            Image.new("RGB", (64, 64), (c * 100, i, 0)).save(root / name / f"{name}_{i}.jpg")
    entry = {"source": "eurosat", "test_fraction": 0.2, "max_train": 8}
    ds = prepare_dataset("eurosat", entry, seed=0, cache_dir=tmp_path / "cache")
    assert ds.classes == ("Forest", "River") and ds.images.shape == (12, 64, 64, 3)
    assert ds.counts() == {"train": 8, "test": 4}
    assert list(np.bincount(ds.labels[ds.is_test])) == [2, 2]


def test_photos_are_views_of_the_skimage_photos_all_in_test():
    import skimage.data

    ds = prepare_dataset("photos", {"source": "photos", "names": ["chelsea", "coffee"], "image_size": 64}, seed=0)
    assert ds.classes == ("chelsea", "coffee")
    assert ds.images.shape == (12, 64, 64, 3) and ds.images.dtype == np.uint8
    assert ds.is_test.all() and ds.labels.tolist() == [0] * 6 + [1] * 6
    assert ds.meta["provenance"]["views"][:2] == ["chelsea/full", "chelsea/top_left"]
    # the full view is the photo's centred square: its mean colour matches the photo's centre square
    photo = skimage.data.chelsea().astype(float)
    h, w = photo.shape[:2]
    side = min(h, w)
    square = photo[(h - side) // 2 : (h + side) // 2, (w - side) // 2 : (w + side) // 2]
    np.testing.assert_allclose(ds.images[0].reshape(-1, 3).mean(0), square.reshape(-1, 3).mean(0), atol=2.0)
    no_crops = prepare_dataset("photos", {"source": "photos", "names": ["rocket"], "crops": False}, seed=0)
    assert no_crops.images.shape == (1, 256, 256, 3)


@pytest.mark.parametrize("name", ["camera", "not_a_photo"])
def test_photos_refuse_what_is_not_an_rgb_skimage_photo(name):
    with pytest.raises(UserError, match=rf"datasets\.photos\.names\[0\]: '{name}' is not"):
        prepare_dataset("photos", {"source": "photos", "names": [name]}, seed=0)
