"""Loading torchvision-published weights: from a file the user gives, or torch's cache.

Used by the ResNet-152 encoder and the Faster R-CNN / RetinaNet detectors. The rule is
the same for all: the weights come from ``weights=PATH`` if given, else from torch's
checkpoint cache (``$TORCH_HOME/hub/checkpoints``, where ``torchvision`` puts them),
downloading them there first when allowed. If none of that works the error names the
file, where it was looked for and the URL to get it from. Random weights are never
used in their place.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dasha.errors import ConfigError
from dasha.perception.cache import downloads_allowed


def torch_checkpoint_dir() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def load_state_dict(
    weights_enum: Any,
    path: str | os.PathLike[str] | None = None,
    download: bool | None = None,
) -> dict[str, Any]:
    """The state dict for ``weights_enum`` (a torchvision ``Weights`` member).

    ``download``: ``None`` reads ``$DASHA_DOWNLOAD`` (``0`` forbids it; default allowed).
    """
    import torch

    if path is not None:
        return load_file(path)
    url: str = weights_enum.url
    cached = torch_checkpoint_dir() / Path(url).name
    if cached.is_file():
        _check_published_hash(cached)
        return load_file(cached)
    if download is None:
        download = downloads_allowed()
    how = (
        f"Download {url} and either put it at {cached} or pass its path "
        "(weights=PATH in Python; --weights / --encoder-weights of `dasha perceive`)."
    )
    if not download:
        raise ConfigError(f"weights {cached.name} are not in {cached.parent}. {how}")
    try:
        # check_hash: torchvision's file names carry the start of their SHA-256.
        state = torch.hub.load_state_dict_from_url(
            url, map_location="cpu", progress=False, check_hash=True, weights_only=True
        )
        return dict(state)
    except Exception as exc:  # any network or disk failure ends the same way for the user
        raise ConfigError(f"could not download weights {cached.name} ({exc}). {how}") from exc


def _check_published_hash(path: Path) -> None:
    """A torchvision file is named ``NAME-<first hex digits of its SHA-256>.pth``."""
    import re

    from dasha.perception.cache import sha256_of

    match = re.search(r"-([a-f0-9]{8,})\.", path.name)
    if match and not sha256_of(path).startswith(match.group(1)):
        raise ConfigError(
            f"{path} does not match the SHA-256 its name publishes ({match.group(1)}...); "
            "delete it to download it again"
        )


def load_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A state dict saved with ``torch.save`` (tensors only: nothing in it is executed)."""
    import torch

    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"{path} is not a PyTorch state dict: {exc}") from exc
    if not isinstance(state, dict):
        raise ConfigError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state


def apply_state_dict(model: Any, state: dict[str, Any], source: str) -> None:
    """Load ``state`` into ``model`` strictly: a partial match is an error, not a warning."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ConfigError(f"weights from {source} do not fit the model: {exc}") from exc
