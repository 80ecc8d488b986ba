"""What a run directory must agree on to be resumed: the options that shape the networks,
the rewards and the episodes. ``train`` records them when a run starts and refuses a resume
whose options differ, naming the option, instead of failing deep inside RLlib's restore."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from dasha.errors import ConfigError
from dasha.io import json_text, write_json

RUN_OPTIONS_FILE = "train-options.json"
# Options a resumed run may change: how long and where it runs, not what it trains.
MAY_CHANGE = {
    "out",
    "steps",
    "ray_address",
    "num_env_runners",
    "env_steps_per_s",
    "trust_checkpoint",
    "checkpoint_every",
    "checkpoint_every_s",
}


def run_options(config: Any) -> dict[str, Any]:
    """The options of ``config`` (a ``TrainConfig``) that a resume must keep, as plain JSON."""
    fields = {k: v for k, v in asdict(config).items() if k not in MAY_CHANGE}
    fields["episode"] = config.episode.to_dict()
    return json.loads(json_text(fields))


def check_resume(config: Any) -> None:
    """On a new run directory record the options; on an old one refuse different ones."""
    path = Path(config.out) / RUN_OPTIONS_FILE
    now = run_options(config)
    if not path.is_file():
        write_json(path, now)
        return
    try:
        before = json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); choose a new --out") from exc
    changed = _differences(before, now)
    if changed:
        listed = "; ".join(f"{k}: {b!r} then, {n!r} now" for k, b, n in changed[:4])
        raise ConfigError(
            f"{config.out} is a run started with other options ({listed}); resume it with "
            "the options it was started with, or give a new --out"
        )


def _differences(before: Any, now: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(before, dict) and isinstance(now, dict):
        out = []
        for key in sorted(set(before) | set(now)):
            out += _differences(before.get(key), now.get(key), f"{prefix}{key}.")
        return out
    name = prefix.rstrip(".").replace("_", "-")
    return [] if before == now else [(name, before, now)]
