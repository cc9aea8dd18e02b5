"""Verified downloads into the cache: temp file, sha256 checked, then renamed into place.

A file is only ever visible under its final name once complete and verified; any
failure (network, HTTP error, checksum mismatch) removes the partial file and raises a
one-line :class:`~transferlab.errors.UserError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from transferlab.errors import UserError
from transferlab.io import temp_file

CHUNK = 1 << 20
TIMEOUT_S = 60


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def cache_path(url: str, cache_dir: Path) -> Path:
    """Where ``url`` is stored in the cache (a URL hash keeps different URLs apart)."""
    name = Path(urlparse(url).path).name or "download"
    return cache_dir / f"{hashlib.sha1(url.encode()).hexdigest()[:10]}-{name}"


def fetch(url: str, cache_dir: Path, *, sha256: str | None, where: str) -> tuple[Path, str]:
    """Download ``url`` into ``cache_dir`` (or reuse a verified copy): (path, sha256).

    With ``sha256`` pinned, a cached or downloaded file that does not match is an error
    (and is deleted); without it the file's sha256 is returned for the provenance.
    """
    cache_dir = Path(cache_dir)
    final = cache_path(url, cache_dir)
    expected = sha256.lower() if sha256 else None
    if final.is_file():
        digest = sha256_file(final)
        if expected is None or digest == expected:
            return final, digest
        final.unlink()  # stale or corrupt copy: download again
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file(f".{final.name}.", cache_dir, suffix=".part")
    try:
        print(f"downloading {url} -> {final}", file=sys.stderr)
        digest = _stream(url, fd)
        if expected is not None and digest != expected:
            raise UserError(
                f"{where}: sha256 mismatch for {url}: expected {expected}, got {digest}; "
                f"the download is corrupt or changed upstream (nothing was kept); "
                f"check {where}.url / {where}.sha256"
            )
        os.replace(tmp, final)
    except UserError:
        tmp.unlink(missing_ok=True)
        raise
    except urllib.error.HTTPError as err:
        tmp.unlink(missing_ok=True)
        raise UserError(
            f"{where}: could not download {url}: the server answered HTTP {err.code} {err.reason}; "
            f"fix {where}.url (or put the file at {final})"
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        tmp.unlink(missing_ok=True)
        reason = getattr(err, "reason", None) or err
        raise UserError(
            f"{where}: could not download {url} ({reason}); check the network connection "
            f"(no network? put the file at {final}) or fix {where}.url"
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final, digest


def _stream(url: str, fd: int) -> str:
    """Write the body of ``url`` to file descriptor ``fd``; return its sha256."""
    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "transferlab"})
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(os.fdopen(fd, "wb"))
        response = stack.enter_context(urllib.request.urlopen(request, timeout=TIMEOUT_S))
        while chunk := response.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()
