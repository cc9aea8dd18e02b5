"""Archive downloads against a loopback HTTP server: verified, extracted safely, cleaned up."""

from __future__ import annotations

import functools
import hashlib
import io
import socket
import stat
import tarfile
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from transferlab.data.archives import extract_archive
from transferlab.data.registry import prepare_dataset
from transferlab.errors import UserError
from transferlab.io import current_umask


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """Serve tmp_path/www on 127.0.0.1:<free port>; yields (www dir, base URL)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    www = tmp_path / "www"
    www.mkdir()
    httpd = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(www))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _png(color: int, size=(12, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (color, 0, 0)).save(buf, format="PNG")
    return buf.getvalue()


def _hymenoptera_zip(path: Path, extra: dict[str, bytes] | None = None) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        for split, n in (("train", 3), ("val", 2)):
            for cls in ("ants", "bees"):
                for i in range(n):
                    zf.writestr(f"hymenoptera_data/{split}/{cls}/{i}.png", _png(10 * i))
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _scene_tar(path: Path, evil: bool = False) -> str:
    with tarfile.open(path, "w:gz") as tf:
        members = [
            (f"15-Scene/{c}/{i:02d}.png", _png(20 * i))
            for c in ("coast", "forest", "street")
            for i in range(5)
        ]
        if evil:
            members.append(("../evil.txt", b"escaped"))
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_hymenoptera_zip_verified_and_prepared(server, tmp_path):
    www, base = server
    digest = _hymenoptera_zip(www / "hymenoptera_data.zip")
    cache = tmp_path / "cache"
    entry = {
        "source": "hymenoptera",
        "url": f"{base}/hymenoptera_data.zip",
        "sha256": digest,
        "image_size": 8,
    }
    ds = prepare_dataset("hymenoptera", entry, seed=0, cache_dir=cache)
    assert ds.classes == ("ants", "bees")
    assert ds.counts() == {"train": 6, "test": 4}  # val/ -> test
    assert ds.images.shape == (10, 8, 8, 3)
    prov = ds.meta["provenance"]
    assert prov["sha256"] == digest and prov["sha256_pinned"] is True
    assert prov["url"] == entry["url"]
    # the download and its extracted tree are ordinary files for the group, not mkstemp's 0600
    want = {0o666 & ~current_umask(), 0o777 & ~current_umask()}
    assert {stat.S_IMODE(p.stat().st_mode) for p in cache.rglob("*")} == want
    # a second run reuses the verified cache (the server is not needed)
    (www / "hymenoptera_data.zip").unlink()
    again = prepare_dataset("hymenoptera", entry, seed=0, cache_dir=cache)
    assert np.array_equal(again.images, ds.images)


def test_15scene_tar_records_first_sha256_and_draws_train_per_class(server, tmp_path):
    www, base = server
    digest = _scene_tar(www / "scenes.tar.gz")
    entry = {
        "source": "15scene",
        "url": f"{base}/scenes.tar.gz",
        "train_per_class": 2,
        "image_size": 8,
    }
    ds = prepare_dataset("15scene", entry, seed=0, cache_dir=tmp_path / "cache")
    assert ds.classes == ("coast", "forest", "street")
    assert list(np.bincount(ds.labels[~ds.is_test])) == [2, 2, 2]
    assert list(np.bincount(ds.labels[ds.is_test])) == [3, 3, 3]
    assert ds.meta["provenance"]["sha256"] == digest
    assert ds.meta["provenance"]["sha256_pinned"] is False


def test_sha256_mismatch_fails_and_leaves_nothing(server, tmp_path):
    www, base = server
    _hymenoptera_zip(www / "h.zip")
    cache = tmp_path / "cache"
    entry = {"source": "hymenoptera", "url": f"{base}/h.zip", "sha256": "0" * 64}
    with pytest.raises(UserError) as err:
        prepare_dataset("hymenoptera", entry, seed=0, cache_dir=cache)
    assert "sha256 mismatch" in str(err.value) and "\n" not in str(err.value)
    assert _files(cache) == []
    assert [p for p in cache.iterdir() if p.is_dir()] == []


def test_zip_member_escaping_target_fails_and_leaves_nothing(server, tmp_path):
    www, base = server
    _hymenoptera_zip(www / "h.zip", extra={"../evil.txt": b"escaped"})
    cache = tmp_path / "cache"
    with pytest.raises(UserError, match=r"unsafe archive member '\.\./evil\.txt'"):
        prepare_dataset(
            "hymenoptera",
            {"source": "hymenoptera", "url": f"{base}/h.zip"},
            seed=0,
            cache_dir=cache,
        )
    assert _files(cache) == [] and list(cache.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_tar_member_escaping_target_fails_and_leaves_nothing(server, tmp_path):
    www, base = server
    _scene_tar(www / "s.tar.gz", evil=True)
    cache = tmp_path / "cache"
    with pytest.raises(UserError, match="unsafe archive member"):
        prepare_dataset(
            "15scene", {"source": "15scene", "url": f"{base}/s.tar.gz"}, seed=0, cache_dir=cache
        )
    assert list(cache.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_unreachable_url_fails_with_one_network_line(tmp_path, monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cache = tmp_path / "cache"
    entry = {"source": "hymenoptera", "url": f"http://127.0.0.1:{port}/h.zip"}
    with pytest.raises(UserError) as err:
        prepare_dataset("hymenoptera", entry, seed=0, cache_dir=cache)
    msg = str(err.value)
    assert "\n" not in msg and "could not download" in msg and "network" in msg
    assert _files(cache) == []


def test_http_404_fails_cleanly(server, tmp_path):
    _, base = server
    with pytest.raises(UserError, match="HTTP 404"):
        prepare_dataset(
            "h",
            {"source": "hymenoptera", "url": f"{base}/missing.zip"},
            seed=0,
            cache_dir=tmp_path / "c",
        )
    assert _files(tmp_path / "c") == []


def test_not_an_archive(tmp_path):
    bogus = tmp_path / "x.bin"
    bogus.write_bytes(b"plain bytes, no archive")
    with pytest.raises(UserError, match="not a zip, tar or rar"):
        extract_archive(bogus, tmp_path / "out", where="datasets.x")
    assert not (tmp_path / "out").exists()
