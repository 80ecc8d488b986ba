"""Signed manifests: load a pickled artefact only if DASHA wrote it, or the user trusts it.

RLlib checkpoints and Stable-Baselines3 ``model.zip`` files are pickles: loading one runs
whatever code it holds. So whatever DASHA saves in that form gets a manifest: the SHA-256
of every file, authenticated by an HMAC under a key that lives in this user's state
directory (``$DASHA_STATE_DIR``, else ``~/.local/state/dasha``) and is never written into a
run. A copied or crafted run cannot carry a valid manifest, and a run changed after saving
no longer matches its own. Loading checks the manifest first; ``--trust-checkpoint`` skips
the check for a run the user vouches for (e.g. one trained on another machine).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from dasha.errors import ConfigError
from dasha.io import write_json

MANIFEST_NAME = "dasha-manifest.json"
FORMAT = "dasha-manifest-1"


def state_dir() -> Path:
    return Path(os.environ.get("DASHA_STATE_DIR") or Path.home() / ".local" / "state" / "dasha")


def _key() -> bytes:
    """This user's signing key, created on first use (0600, never overwritten)."""
    path = state_dir() / "signing.key"
    with contextlib.suppress(FileNotFoundError):
        return bytes.fromhex(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return bytes.fromhex(path.read_text().strip())
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex() + "\n")
    return key


def manifest_path(artefact: Path) -> Path:
    """A directory holds its manifest; a file has it beside it (``model.zip.dasha-manifest.json``)."""
    return (
        artefact / MANIFEST_NAME
        if artefact.is_dir()
        else artefact.with_name(f"{artefact.name}.{MANIFEST_NAME}")
    )


def _digests(artefact: Path) -> dict[str, str]:
    if artefact.is_file():
        return {artefact.name: _sha256(artefact)}
    files = sorted(p for p in artefact.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)
    return {p.relative_to(artefact).as_posix(): _sha256(p) for p in files}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _mac(files: dict[str, str]) -> str:
    text = json.dumps({"format": FORMAT, "files": files}, sort_keys=True).encode()
    return hmac.new(_key(), text, hashlib.sha256).hexdigest()


def sign(artefact: Path) -> None:
    """Write the manifest of a file or directory DASHA has just saved."""
    files = _digests(artefact)
    write_json(manifest_path(artefact), {"format": FORMAT, "files": files, "hmac": _mac(files)})


def verify(artefact: Path, what: str, *, trust: bool = False) -> None:
    """Raise ``ConfigError`` unless ``artefact`` is exactly what DASHA signed (or ``trust``)."""
    if trust:
        return
    reason = _mismatch(artefact)
    if reason:
        raise ConfigError(
            f"{artefact}: {reason}, so it was not saved by DASHA for this user. {what} is a "
            "pickle, and loading it would run any code it holds. If you trust where it came "
            "from, pass --trust-checkpoint; otherwise choose a new --out directory"
        )


def _mismatch(artefact: Path) -> str | None:
    path = manifest_path(artefact)
    try:
        manifest = json.loads(path.read_text())
        files, mac = dict(manifest["files"]), str(manifest["hmac"])
    except FileNotFoundError:
        return f"it has no {MANIFEST_NAME}"
    except (OSError, ValueError, KeyError, TypeError):
        return f"its {path.name} is not a DASHA manifest"
    if not hmac.compare_digest(mac, _mac(files)):
        return f"its {path.name} is not signed by this user's key"
    actual = _digests(artefact)
    changed = sorted(set(files) ^ set(actual) | {n for n in files if actual.get(n) != files[n]})
    if changed:
        return f"{', '.join(changed[:3])} changed after it was saved"
    return None
