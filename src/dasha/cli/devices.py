"""``dasha devices`` (what is plugged in) and ``dasha capture`` (record an exposure x focus
grid on a rig, to replay and train on offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dasha.cli import rig_options as ro
from dasha.cli.app import app, err_console, handle_errors, print_json
from dasha.cli.options import parse_values


@app.command()
@handle_errors
def devices(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """List connected cameras (Basler, V4L2 webcams) and serial ports (cp210x = likely lens)."""
    from rich.console import Console
    from rich.table import Table

    from dasha.hardware.discovery import list_devices

    found = list_devices()
    if as_json:
        print_json(found)
        return
    console = Console()
    for title, rows, columns in (
        ("Cameras", found["cameras"], ("backend", "name", "open_with")),
        ("Serial ports", found["serial_ports"], ("device", "description", "open_with")),
    ):
        if not rows:
            console.print(f"{title}: none found")
            continue
        table = Table(title=title)
        for column in columns:
            table.add_column(column)
        for row in rows:
            mark = " (likely Varioptic lens)" if row.get("likely_varioptic") else ""
            table.add_row(*[str(row[c]) + (mark if c == "description" else "") for c in columns])
        console.print(table)
    for note in found["notes"]:
        console.print(f"[yellow]note:[/] {note}")


@app.command()
@handle_errors
def capture(
    out: Annotated[Path, typer.Option("--out", help="Recording directory (resumed if it exists).")],
    exposures: Annotated[
        str, typer.Option("--exposures", help="Exposure times (us): a,b,c or start:stop:step.")
    ],
    focus: Annotated[
        str,
        typer.Option("--focus", help="Focus values in the lens's unit (V, step): list or range."),
    ],
    camera: ro.CameraName = "sim",
    lens: ro.LensName = "sim",
    port: ro.Port = None,
    camera_serial: ro.CameraSerial = None,
    dll_path: ro.DllPath = None,
    device: ro.Device = None,
    recording: ro.RecordingPath = None,
    settings: ro.Settings = None,
    condition: Annotated[
        list[str] | None,
        typer.Option(
            "--condition", help="Recorded with the data, KEY=VALUE (e.g. illuminance_lux=120)."
        ),
    ] = None,
    timeout_s: Annotated[float, typer.Option("--timeout-s", help="Grab timeout (s).")] = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Record one frame per (exposure, focus) pair: atomic per frame, resumable after Ctrl-C.

    Replay it with `--camera replay --lens replay --recording DIR` (train offline).
    """
    from tqdm import tqdm

    from dasha.hardware.recording import Recording, capture_grid

    exposure_list = parse_values(exposures, "exposures")
    focus_list = parse_values(focus, "focus")
    conditions = ro.parse_pairs(condition, "--condition")
    rig = ro.open_rig_from_cli(
        camera, lens, port=port, camera_serial=camera_serial, dll_path=dll_path,
        device=device, recording=recording, settings=settings,
    )  # fmt: skip
    bar = tqdm(total=len(exposure_list) * len(focus_list), unit="frame", disable=as_json)

    def progress(done: int, total: int) -> None:
        bar.n = done
        bar.refresh()

    try:
        with rig:
            capture_grid(rig, out, exposure_list, focus_list, conditions=conditions,
                         timeout_s=timeout_s, progress=progress)  # fmt: skip
    except KeyboardInterrupt:
        err_console.print(f"interrupted: run the same command again to resume into {out}")
        raise typer.Exit(code=130) from None
    finally:
        bar.close()
    summary = Recording.open(out)
    result = {
        "out": str(out),
        "frames": len(summary.manifest["frames"]),
        "complete": summary.complete,
    }
    if as_json:
        print_json(result)
    else:
        typer.echo(f"recorded {result['frames']} frames into {out}")
