"""Bad data, each case handled as the params say with one clear line (issue 9, item 3).

Folder datasets: empty classes, one class only, zero-byte / truncated / non-image files,
decompression bombs and large photos, mixed image modes. Fashion-MNIST idx files: wrong
magic, truncated, images and labels that disagree. A prepared dataset edited by hand:
the sha256 manifest check, and `dvc status` in a tiny git + DVC repo (slow).
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from PIL.JpegImagePlugin import JpegImageFile

from stages.prepare import main as prepare_main
from tests.study_repo import ROOT, run, study_env, write_params
from transferlab.data.images import decode_image
from transferlab.data.prepared import PreparedDataset, load_prepared, save_prepared
from transferlab.data.registry import prepare_dataset, prepare_metrics, skipped_warning
from transferlab.errors import UserError


def _images(folder: Path, n: int, value: int = 0, size: tuple[int, int] = (8, 8)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", size, (value, i, 0)).save(folder / f"{i:02d}.png")


def _entry(path: Path, **options) -> dict:
    return {"source": "folder", "path": str(path), "test_fraction": 0.5, **options}


def _one_line_error(entry: dict) -> str:
    with pytest.raises(UserError) as err:
        prepare_dataset("bad", entry, seed=0)
    msg = str(err.value)
    assert "\n" not in msg
    return msg


# --- empty classes and one class only ---------------------------------------------------


def test_empty_class_folder_is_an_error_naming_it(tmp_path):
    _images(tmp_path / "ants", 4)
    (tmp_path / "bees").mkdir()
    _images(tmp_path / "wasps", 4)
    msg = _one_line_error(_entry(tmp_path))
    assert f"class folder {str(tmp_path / 'bees')!r} has no usable images" in msg
    assert "on_empty_class: skip" in msg


def test_empty_class_skip_drops_it_and_renumbers_labels(tmp_path):
    _images(tmp_path / "ants", 4, value=10)
    (tmp_path / "bees").mkdir()
    (tmp_path / "bees/readme.txt").write_text("only a bad file here\n")  # empty after skipping it (extension)
    _images(tmp_path / "wasps", 6, value=200)
    ds = prepare_dataset("bugs", _entry(tmp_path, on_empty_class="skip"), seed=0)
    assert ds.classes == ("ants", "wasps")
    assert list(np.bincount(ds.labels)) == [4, 6]
    assert (ds.images[ds.labels == 1][..., 0] == 200).all()  # wasps images carry label 1 now
    assert ds.meta["skipped"]["classes"] == [{"class": "bees", "folder": "bees"}]
    assert ds.meta["skipped"]["files"] == [
        {"file": "bees/readme.txt", "reason": "extension", "detail": "'.txt' is not among datasets.bugs.extensions "
         "(.jpg, .jpeg, .png, .ppm, .bmp, .pgm, .tif, .tiff, .webp)"}
    ]
    metrics = prepare_metrics(ds, 0.0)
    assert metrics["classes"] == 2 and metrics["skipped_classes"] == 1 and metrics["skipped"] == 1
    meta = tmp_path / "out/meta.json"
    assert skipped_warning(ds, meta) == (
        f"warning: datasets.bugs: skipped 1 bad files (extension 1) and 1 empty classes (bees); "
        f"listed in {meta}"
    )


def test_class_of_only_bad_files_is_empty_after_decoding(tmp_path):
    _images(tmp_path / "train/cat", 3)
    _images(tmp_path / "train/dog", 3)
    _images(tmp_path / "test/cat", 1)
    (tmp_path / "train/owl").mkdir()
    (tmp_path / "train/owl/0.jpg").write_bytes(b"")
    msg = _one_line_error({"source": "folder", "path": str(tmp_path)})
    assert f"{str(tmp_path / 'train' / 'owl')!r} has no usable images" in msg


def test_one_class_only_needs_a_second(tmp_path):
    _images(tmp_path / "cat", 5)
    msg = _one_line_error(_entry(tmp_path))
    assert msg == (
        f"datasets.bad: 1 class (cat) with images in {str(tmp_path)!r}; "
        "a classifier needs at least 2 classes, add another class folder"
    )
    (tmp_path / "dog").mkdir()  # skipping the empty one still leaves one class
    msg = _one_line_error(_entry(tmp_path, on_empty_class="skip"))
    assert "1 class (cat)" in msg and "at least 2 classes" in msg


def _prepare_stage(tmp_path: Path, entry: dict) -> list[str]:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"base": {"seed": 0, "device": "cpu"}, "datasets": {"bugs": entry}}))
    return ["--dataset", "bugs", "--out", str(tmp_path / "prepared/bugs"),
            "--metrics", str(tmp_path / "metrics/bugs.json"), "--params", str(params)]


def test_prepare_stage_warns_in_one_line_or_exits_2_without_outputs(tmp_path, capsys):
    _images(tmp_path / "pics/ants", 3)
    (tmp_path / "pics/bees").mkdir()
    _images(tmp_path / "pics/wasps", 3)
    (tmp_path / "pics/wasps/zero.png").write_bytes(b"")
    with pytest.raises(SystemExit) as exit_info:
        prepare_main(_prepare_stage(tmp_path, _entry(tmp_path / "pics")))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bees" in err and "on_empty_class" in err
    assert not (tmp_path / "prepared").exists() and not (tmp_path / "metrics").exists()
    prepare_main(_prepare_stage(tmp_path, _entry(tmp_path / "pics", on_empty_class="skip")))
    meta = tmp_path / "prepared/bugs/meta.json"
    assert capsys.readouterr().err == (
        f"warning: datasets.bugs: skipped 1 bad files (empty_file 1) and 1 empty classes (bees); "
        f"listed in {meta}\n"
    )
    assert load_prepared(meta.parent).classes == ("ants", "wasps")


# --- bad files ----------------------------------------------------------------------------


def _tree_with(tmp_path: Path, name: str, data: bytes) -> Path:
    _images(tmp_path / "a", 2)
    _images(tmp_path / "b", 2)
    (tmp_path / "b" / name).write_bytes(data)
    return tmp_path


def _skipped(ds) -> list[tuple[str, str]]:
    return [(s["file"], s["reason"]) for s in ds.meta["skipped"]["files"]]


def test_zero_byte_file_skipped_or_named(tmp_path):
    root = _tree_with(tmp_path, "zero.png", b"")
    ds = prepare_dataset("z", _entry(root), seed=0)
    assert _skipped(ds) == [("b/zero.png", "empty_file")]
    assert len(ds.labels) == 4
    msg = _one_line_error(_entry(root, on_bad_file="error"))
    assert str(root / "b/zero.png") in msg and "empty_file: the file is 0 bytes" in msg


def test_truncated_png_is_truncated_image(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buf, "PNG")
    root = _tree_with(tmp_path, "cut.png", buf.getvalue()[: len(buf.getvalue()) // 2])
    assert _skipped(prepare_dataset("t", _entry(root), seed=0)) == [("b/cut.png", "truncated_image")]
    msg = _one_line_error(_entry(root, on_bad_file="error"))
    assert "cut.png" in msg and "truncated_image" in msg and "on_bad_file: skip" in msg


def test_non_image_files_skipped_and_hidden_files_ignored(tmp_path):
    root = _tree_with(tmp_path, "notes.txt", b"hello\n")
    (root / "a/fake.jpg").write_text("a .jpg that is really text\n")
    (root / "a/.DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")  # hidden: not read at all
    ds = prepare_dataset("n", _entry(root), seed=0)
    assert sorted(_skipped(ds)) == [("a/fake.jpg", "not_an_image"), ("b/notes.txt", "extension")]
    assert ds.meta["provenance"]["files_read"] == 5  # 4 images + fake.jpg; notes.txt (extension), .DS_Store unread
    msg = _one_line_error(_entry(root, on_bad_file="error"))
    assert "fake.jpg" in msg and "not_an_image" in msg


# --- huge images --------------------------------------------------------------------------


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's shape)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_decompression_bomb_is_too_large_before_decoding(tmp_path):
    root = _tree_with(tmp_path, "bomb.png", _png_header_only(100_000, 100_000))
    ds = prepare_dataset("h", _entry(root), seed=0)
    [bad] = ds.meta["skipped"]["files"]
    assert bad["file"] == "b/bomb.png" and bad["reason"] == "too_large"
    assert bad["detail"] == "100000x100000 = 10000000000 pixels, more than max_pixels 89478485"
    msg = _one_line_error(_entry(root, on_bad_file="error"))
    assert "bomb.png" in msg and "more than max_pixels" in msg


def test_max_pixels_param_decides_not_pils_global_limit(tmp_path, monkeypatch):
    _images(tmp_path / "a", 2, size=(40, 40))
    _images(tmp_path / "b", 2, size=(40, 40))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # PIL alone would refuse 1600 pixels
    ds = prepare_dataset("p", _entry(tmp_path, max_pixels=1600), seed=0)
    assert ds.images.shape == (4, 40, 40, 3) and ds.meta["skipped"]["count"] == 0
    assert Image.MAX_IMAGE_PIXELS == 100  # restored after decoding
    msg = _one_line_error(_entry(tmp_path, max_pixels=1599, on_bad_file="error"))
    assert "40x40 = 1600 pixels, more than max_pixels 1599" in msg


def test_large_jpeg_is_decoded_reduced_and_matches_full_decode(monkeypatch):
    x = np.linspace(0, 255, 2400)
    y = np.linspace(0, 255, 1600)
    arr = np.stack([*np.meshgrid(x, y), np.full((1600, 2400), 128.0)], axis=-1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=95)
    decoded_sizes = []
    draft = JpegImageFile.draft

    def spy(self, mode, size):
        result = draft(self, mode, size)
        decoded_sizes.append(self.size)
        return result

    monkeypatch.setattr(JpegImageFile, "draft", spy)
    out = decode_image(buf.getvalue(), 3, 64)
    assert out.shape == (64, 64, 3)
    assert decoded_sizes == [(300, 200)]  # 1/8 scale in the decoder, shorter side still >= 64
    full = Image.fromarray(arr).resize((96, 64), Image.Resampling.BILINEAR).crop((16, 0, 80, 64))
    assert np.abs(out.astype(int) - np.asarray(full, dtype=int)).max() <= 3  # smooth image: same picture


# --- image modes --------------------------------------------------------------------------


def _png_bytes(img: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def test_every_mode_converts_to_the_datasets_channels():
    bits = Image.fromarray(np.array([[0, 255], [255, 0]], dtype=np.uint8)).convert("1")
    palette = Image.new("P", (2, 2), 1)
    palette.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    palette.info["transparency"] = 1  # index 1 transparent: its colour stays, alpha is dropped
    deep = Image.fromarray(np.full((2, 2), 25700, dtype=np.uint16))  # I;16, 25700 / 257 = 100
    cases = {
        "1": (_png_bytes(bits), [[0, 255], [255, 0]]),
        "L": (_png_bytes(Image.new("L", (2, 2), 77)), 77),
        "LA": (_png_bytes(Image.new("LA", (2, 2), (90, 0))), 90),
        "P+tRNS": (_png_bytes(palette, transparency=1), (200, 100, 50)),
        "RGBA": (_png_bytes(Image.new("RGBA", (2, 2), (255, 0, 0, 0))), (255, 0, 0)),
        "CMYK": (_png_bytes(Image.new("CMYK", (2, 2), (0, 255, 0, 0)), "TIFF"), (255, 0, 255)),
        "I;16": (_png_bytes(deep), 100),
    }
    assert Image.open(io.BytesIO(cases["I;16"][0])).mode == "I;16"
    assert Image.open(io.BytesIO(cases["P+tRNS"][0])).info.get("transparency") == 1
    for name, (data, expected) in cases.items():
        rgb = decode_image(data, channels=3)
        gray = decode_image(data, channels=1)
        assert rgb.shape == (2, 2, 3) and gray.shape == (2, 2, 1), name
        want = np.zeros((2, 2, 3), dtype=np.uint8)
        want[...] = np.asarray(expected)[..., None] if np.ndim(expected) == 2 else expected
        assert (rgb == want).all(), name
        luma = np.asarray(Image.fromarray(want).convert("L"))
        assert (gray[..., 0] == luma).all(), name
        assert (decode_image(data, channels=3) == rgb).all(), name  # deterministic


# --- Fashion-MNIST idx files --------------------------------------------------------------


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _idx_folder(root: Path, n_train: int = 6, n_test: int = 4) -> Path:
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte": rng.integers(0, 255, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 255, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": np.arange(n_test) % 10,
    }
    root.mkdir(parents=True, exist_ok=True)
    for name, array in files.items():
        (root / name).write_bytes(_idx(array))
    return root


def _fashion_error(root: Path) -> str:
    return _one_line_error({"source": "fashion-mnist", "path": str(root)})


def test_idx_good_files_prepare(tmp_path):
    ds = prepare_dataset("fm", {"source": "fashion-mnist", "path": str(_idx_folder(tmp_path))}, seed=0)
    assert ds.images.shape == (10, 28, 28, 1) and ds.counts() == {"train": 6, "test": 4}


def test_idx_wrong_magic_names_file_and_fix(tmp_path):
    root = _idx_folder(tmp_path)
    path = root / "train-labels-idx1-ubyte"
    path.write_bytes(b"\x12\x34" + path.read_bytes()[2:])
    msg = _fashion_error(root)
    assert msg.startswith(f"{path}: not an IDX file (magic number 0x12340801")
    assert "apt-get install --reinstall dataset-fashion-mnist" in msg


def test_idx_truncated_names_file(tmp_path):
    root = _idx_folder(tmp_path)
    path = root / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    msg = _fashion_error(root)
    assert msg.startswith(f"{path}: IDX file is {16 + 4 * 784 - 100} bytes but its header (4, 28, 28) says {16 + 4 * 784}")
    assert "reinstall it" in msg


def test_idx_images_and_labels_disagree(tmp_path):
    root = _idx_folder(tmp_path)
    (root / "train-labels-idx1-ubyte").write_bytes(_idx(np.arange(5)))
    msg = _fashion_error(root)
    assert msg.startswith(
        f"{root / 'train-images-idx3-ubyte'} holds 6 images but {root / 'train-labels-idx1-ubyte'} holds 5 labels"
    )
    assert "reinstall them" in msg


# --- prepared data edited by hand ---------------------------------------------------------


def _saved(path: Path) -> Path:
    rng = np.random.default_rng(0)
    ds = PreparedDataset(
        rng.integers(0, 255, (6, 4, 4, 1), dtype=np.uint8),
        np.array([0, 1, 0, 1, 0, 1]),
        np.array([False] * 4 + [True] * 2),
        ("a", "b"),
        {"name": "toy"},
    )
    path.mkdir()
    save_prepared(ds, path)
    return path


def _load_error(path: Path) -> str:
    with pytest.raises(UserError) as err:
        load_prepared(path)
    return str(err.value)


def test_manifest_recorded_and_clean_data_loads(tmp_path):
    path = _saved(tmp_path / "p")
    meta = load_prepared(path).meta
    assert sorted(meta["sha256"]) == ["images.npy", "is_test.npy", "labels.npy", "meta.json"]
    assert all(len(h) == 64 for h in meta["sha256"].values())


@pytest.mark.parametrize("edit", ["labels", "images", "meta", "manifest"])
def test_hand_edited_prepared_data_fails_with_one_line(tmp_path, edit):
    path = _saved(tmp_path / "p")
    if edit == "labels":
        np.save(path / "labels.npy", np.array([1, 1, 0, 1, 0, 1]))
    elif edit == "images":
        images = np.load(path / "images.npy")
        images[0, 0, 0, 0] ^= 1
        np.save(path / "images.npy", images)
    else:
        meta = json.loads((path / "meta.json").read_text())
        if edit == "meta":
            meta["classes"] = ["b", "a"]
        else:
            del meta["sha256"]
        (path / "meta.json").write_text(json.dumps(meta))
    msg = _load_error(path)
    assert "\n" not in msg and "`dvc repro prepare@toy`" in msg and f"`dvc checkout {path}`" in msg
    named = {"labels": "labels.npy changed", "images": "images.npy changed",
             "meta": "meta.json changed", "manifest": "has no sha256 manifest"}[edit]
    assert named in msg


@pytest.mark.slow
def test_dvc_notices_a_hand_edited_prepare_output(tmp_path):
    """A git + DVC repo with one prepare stage: an edit shows in `dvc status` and stops a stage."""
    repo, env = tmp_path / "repo", study_env()
    _images(repo / "pics/ants", 3, value=10)
    _images(repo / "pics/bees", 3, value=200)
    write_params(repo, {"datasets": {"bugs": {"source": "folder", "path": "pics", "test_fraction": 0.34}}}, tiny=False)
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["prepare"]
    stage = {key: stage[key] for key in ("cmd", "outs", "params")} | {"matrix": {"dataset": ["bugs"]}}
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"prepare": stage}}))
    env["PYTHONPATH"] = str(ROOT)  # stages/ and transferlab/ from this checkout
    run(["git", "init", "-q"], repo, env)
    run(["dvc", "init", "-q"], repo, env)
    run(["dvc", "repro"], repo, env)
    assert "up to date" in run(["dvc", "status"], repo, env).stdout
    prepared = repo / "data/prepared/bugs"
    np.save(prepared / "labels.npy", 1 - np.load(prepared / "labels.npy"))  # the hand edit
    status = run(["dvc", "status"], repo, env).stdout
    assert "prepare@bugs" in status and "modified:" in status and "data/prepared/bugs" in status
    proc = run(["python", "-m", "stages.scratch", "--model", "linear", "--data", str(prepared), "--metrics", "m.json", "--plot", "p.csv",
                "--figure", "f.png"], repo, env, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(f"error: prepared dataset {str(prepared)!r}: labels.npy changed")
    run(["dvc", "checkout", "--force"], repo, env)  # DVC restores the cached version
    assert load_prepared(prepared).counts() == {"train": 4, "test": 2}
