"""``dasha scenes``: the scene library (its splits, every scene's well-posedness check)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from dasha.cli.app import app, handle_errors, print_json

scenes_app = typer.Typer(
    help=(
        "The scene library: targets over backgrounds from photographs that ship in packages, "
        "split train/val/test by source photo. Without a subcommand: list the scenes."
    ),
    invoke_without_command=True,
)
app.add_typer(scenes_app, name="scenes")

JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON object (for scripts).")]
Detector = Annotated[
    str, typer.Option(help="The detector a scene must be well-posed for (yolo, ...).")
]
USER_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def _scene_record(entry: Any, photos: dict[str, Any]) -> dict[str, Any]:
    out = entry.to_dict()
    out["target_source"] = photos[entry.target].source
    if entry.background is not None:
        out["background_source"] = photos[entry.background].source
    return out


def _summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    kept = [r for r in records if r["well_posed"]]
    return {
        "scenes": len(kept),
        "left_out": len(records) - len(kept),
        "per_split": dict(Counter(r["split"] for r in kept)),
        "per_class": dict(Counter(r["class"] for r in kept).most_common()),
        # Source photos behind the kept scenes (a user folder's records have no target photo).
        "target_photos": len({r["target"] for r in kept if r.get("target")}),
        "background_photos": len({r["background"] for r in kept if r.get("background")}),
        "reasons_left_out": dict(
            Counter(r["reason"] for r in records if not r["well_posed"]).most_common()
        ),
    }


@scenes_app.callback()
@handle_errors
def scenes(
    ctx: typer.Context,
    split: Annotated[
        str | None, typer.Option(help="Only this split: train, val or test (default: all).")
    ] = None,
    include_left_out: Annotated[
        bool,
        typer.Option("--all", help="Also list the scenes the check left out, with the reason."),
    ] = False,
    library: Annotated[
        Path | None,
        typer.Option(
            help="Check a folder of your own photos instead: each image beside a sidecar "
            '<stem>.json = {"class": "car", "box": [x1, y1, x2, y2]}.',
        ),
    ] = None,
    detector: Detector = "yolo",
    fetch: Annotated[
        bool,
        typer.Option(
            "--fetch", help="Download (once) and check the photographs the listed scenes need."
        ),
    ] = False,
    json_out: JsonOut = False,
) -> None:
    """List the library's scenes, with class, source photos and the check's figures."""
    if ctx.invoked_subcommand is not None:
        return
    from dasha.errors import ConfigError
    from dasha.sim.library import SPLITS, catalogue, fetch_photos

    if split is not None and split not in SPLITS:
        raise ConfigError(f"--split {split!r}: choose one of {', '.join(SPLITS)}")
    if library is not None:
        if split is not None or fetch:
            raise ConfigError("--library checks your own folder: it has no --split or --fetch")
        records = _check_folder(library, detector)
    else:
        if detector != "yolo":
            raise ConfigError(
                "the shipped catalogue was checked with yolo; to check it with another "
                "detector, rebuild it: dasha scenes build --detector NAME --out FILE"
            )
        cat = catalogue()
        entries = cat.select(split, include_ill_posed=include_left_out)
        records = [_scene_record(e, cat.photos) for e in entries]
        if fetch:
            needed = {e.target for e in entries} | {e.background for e in entries if e.background}
            fetch_photos(cat.photos[p] for p in sorted(needed))
    summary = _summary(records)
    if json_out:
        print_json({"summary": summary, "scenes": records})
        return
    for r in records:
        verdict = "ok  " if r["well_posed"] else "left out: " + str(r["reason"])
        typer.echo(f"{r['id']:<44} {r['class'] or '-':<14} {r['split']:<6} {verdict}")
    typer.echo(
        f"{summary['scenes']} scenes ({', '.join(f'{k} {v}' for k, v in summary['per_split'].items())})"
        + (f", {summary['left_out']} left out" if summary["left_out"] else "")
    )


def _check_folder(folder: Path, detector: str) -> list[dict[str, Any]]:
    """Check every image of a user's folder; one without a sidecar is left out with the reason."""
    from dasha.bench.wellposed import Judge, check_scene
    from dasha.errors import ConfigError
    from dasha.sim.scenes import load_scene

    if not folder.is_dir():
        raise ConfigError(f"--library {folder}: not a folder")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in USER_IMAGE_SUFFIXES)
    if not images:
        raise ConfigError(
            f"--library {folder}: no images ({', '.join(USER_IMAGE_SUFFIXES)}) in the folder"
        )
    judge = Judge(detector)
    records = []
    for path in images:
        record: dict[str, Any] = {"id": str(path), "split": "user", "background": None}
        try:
            scene = load_scene(path)
            result = check_scene(scene, judge)
            record["class"] = scene.target_class
        except ConfigError as exc:
            result = {"well_posed": False, "reason": str(exc)}
            record["class"] = None
        record["well_posed"] = result.pop("well_posed")
        record["reason"] = result.pop("reason")
        record["check"] = result
        records.append(record)
    return records


@scenes_app.command()
@handle_errors
def build(
    out: Annotated[Path, typer.Option(help="Where to write the catalogue (JSON).")],
    detector: Detector = "yolo",
    backgrounds_per_target: Annotated[
        int, typer.Option(help="Backgrounds (of the same split) paired with each cut-out.")
    ] = 12,
    json_out: JsonOut = False,
) -> None:
    """Rebuild the catalogue: pin the candidate photos, pair them within each split, check
    every scene (about 10 minutes here). The shipped catalogue is this command's output."""
    from tqdm import tqdm

    from dasha.bench.wellposed import build_catalogue
    from dasha.errors import ConfigError
    from dasha.io import write_bytes
    from dasha.sim.library import catalogue_text

    if backgrounds_per_target < 1:
        raise ConfigError("--backgrounds-per-target must be at least 1")
    if out.suffix.lower() != ".json":
        raise ConfigError(f"--out {out}: the catalogue is JSON; give a path ending in .json")
    cat = build_catalogue(
        detector, backgrounds_per_target, progress=lambda it: tqdm(list(it), desc="checking scenes")
    )
    write_bytes(out, catalogue_text(cat).encode())
    records = [_scene_record(e, cat.photos) for e in cat.select(None, include_ill_posed=True)]
    summary = _summary(records)
    if json_out:
        print_json({"out": str(out), "summary": summary})
    else:
        typer.echo(f"wrote {out}: {summary['scenes']} scenes, {summary['left_out']} left out")


@scenes_app.command()
@handle_errors
def sheet(
    out: Annotated[Path, typer.Option(help="Where to write the contact sheet (PNG).")],
    split: Annotated[str, typer.Option(help="The split to draw scenes from.")] = "test",
    count: Annotated[int, typer.Option(help="Scenes (rows), 1..24.")] = 6,
    seed: Annotated[int, typer.Option(help="Draws the scenes and their conditions.")] = 0,
) -> None:
    """A contact sheet of scenes drawn as the `full` set draws them: each row one scene,
    focused on the target, on the background, and at the factory 24 V."""
    import numpy as np

    from dasha.envs.library_conditions import library_sampler
    from dasha.envs.metering import TARGET_MEAN_LEVEL
    from dasha.errors import ConfigError
    from dasha.hardware.sim import EXPOSURE_RANGE_US
    from dasha.plots import contact_sheet
    from dasha.sim.world import Conditions, SimWorld

    if not 1 <= count <= 24:
        raise ConfigError(f"--count {count}: give 1..24 scenes")
    if out.suffix.lower() != ".png":
        raise ConfigError(f"--out {out}: the sheet is a PNG; give a path ending in .png")
    sampler = library_sampler(split)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        drawn = sampler.sample(rng)
        world = SimWorld(Conditions(**drawn), seed=seed + i)
        # One exposure for the row, metered with the target in focus.
        exposure_us = world.exposure_for_mean_dn(world.in_focus_v(), TARGET_MEAN_LEVEL)
        exposure_us = EXPOSURE_RANGE_US.clamp(exposure_us)
        focus = {
            "on target": world.in_focus_v(),
            "on background": world.optics.in_focus_v(world.conditions.background_cm),
            "24 V": 24.0,
        }
        cells = [
            (world.render(v, exposure_us, 0.0), f"{name}: {world.target_blur_px(v):.0f} px")
            for name, v in focus.items()
        ]
        label = (
            f"{drawn['scene']}\n{drawn['distance_cm']:.0f} cm / bg {drawn['background_cm']:.0f} cm"
        )
        rows.append((label, cells))
    contact_sheet(rows, f"scene library, {split} split (target blur in px)", out)
    typer.echo(f"wrote {out}")
