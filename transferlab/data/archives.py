"""Safe extraction of downloaded archives (zip, tar[.gz|.bz2|.xz], rar via bsdtar).

Extraction goes into a temporary sibling folder that is renamed into place only when
complete; any failure removes it. No member may escape the target folder: tar uses
``filter="data"``; zip members and rar listings are checked before anything is written
(absolute paths, ``..`` parts and symlinks are refused).
"""

from __future__ import annotations

import shutil
import stat
import subprocess
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from transferlab.errors import UserError
from transferlab.io import temp_dir

RAR_MAGIC = b"Rar!\x1a\x07"


def _unsafe_name(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":")


def _extract_zip(archive: Path, dest: Path, where: str) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            is_link = stat.S_ISLNK(info.external_attr >> 16)
            if _unsafe_name(info.filename) or is_link:
                raise UserError(
                    f"{where}: unsafe archive member {info.filename!r} in {archive.name} "
                    "(escapes the target folder or is a link); refusing to extract it"
                )
        zf.extractall(dest)


def _extract_tar(archive: Path, dest: Path, where: str) -> None:
    with tarfile.open(archive) as tf:
        try:
            tf.extractall(dest, filter="data")
        except tarfile.FilterError as err:
            raise UserError(
                f"{where}: unsafe archive member in {archive.name} ({err}); refusing to extract it"
            ) from None


def _extract_rar(archive: Path, dest: Path, where: str) -> None:
    bsdtar = shutil.which("bsdtar")
    if bsdtar is None:
        raise UserError(
            f"{where}: {archive.name} is a RAR archive and Python cannot unpack RAR; install "
            "bsdtar (`apt-get install libarchive-tools`) or unpack it yourself and use source: folder"
        )
    listing = subprocess.run(
        [bsdtar, "-tf", str(archive)], capture_output=True, text=True, check=False
    )
    if listing.returncode != 0:
        raise UserError(f"{where}: cannot read {archive.name}: {listing.stderr.strip()}")
    bad = next((n for n in listing.stdout.splitlines() if _unsafe_name(n)), None)
    if bad is not None:
        raise UserError(
            f"{where}: unsafe archive member {bad!r} in {archive.name}; refusing to extract it"
        )
    # bsdtar itself refuses absolute paths, `..` and writing through symlinks (no -P)
    done = subprocess.run(
        [bsdtar, "-xf", str(archive), "-C", str(dest)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise UserError(f"{where}: extracting {archive.name} failed: {done.stderr.strip()}")


def extract_archive(archive: Path, dest: Path, *, where: str) -> Path:
    """Extract ``archive`` into ``dest`` (reused if it already exists, as extraction is atomic)."""
    if dest.is_dir():
        return dest
    with archive.open("rb") as fh:
        magic = fh.read(len(RAR_MAGIC))
    if zipfile.is_zipfile(archive):
        extract = _extract_zip
    elif magic == RAR_MAGIC:
        extract = _extract_rar
    elif tarfile.is_tarfile(archive):
        extract = _extract_tar
    else:
        raise UserError(f"{where}: {archive.name} is not a zip, tar or rar archive; check the url")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir(f".{dest.name}.", dest.parent)
    try:
        extract(archive, tmp, where)
        tmp.rename(dest)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(
            f"{where}: cannot extract {archive.name} ({err}); delete it and try again"
        ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def dataset_root(folder: Path) -> Path:
    """Descend through single-folder wrappers (``hymenoptera_data/``) to the dataset root."""
    while True:
        entries = [
            p for p in folder.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"
        ]
        dirs = [p for p in entries if p.is_dir()]
        if len(dirs) != 1 or len(entries) != 1:
            return folder
        folder = dirs[0]
