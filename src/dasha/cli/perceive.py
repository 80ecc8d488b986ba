"""``dasha perceive``: what the agents see of an image; ``dasha perceive-bench``: how fast."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from dasha.cli.app import app, handle_errors, print_json
from dasha.cli.options import BackendName
from dasha.errors import ConfigError


def _read_gray(path: Path) -> Any:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ConfigError(f"cannot read an image from {path}")
    return image


@app.command()
@handle_errors
def perceive(
    image: Annotated[
        Path | None,
        typer.Argument(help="Image file (converted to 8-bit mono, as the camera gives)."),
    ] = None,
    encoder: Annotated[
        str, typer.Option(help="efficientnet-lite0 | resnet152 | none")
    ] = "efficientnet-lite0",
    encoder_weights: Annotated[
        Path | None, typer.Option(help="Local weights file for the encoder.")
    ] = None,
    detector: Annotated[
        str, typer.Option(help="yolo | faster-rcnn | retinanet | mtcnn | none")
    ] = "yolo",
    weights: Annotated[
        Path | None, typer.Option(help="Local weights file for the detector.")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="Target class, e.g. car, person, motorbike; face for mtcnn.")
    ] = None,
    score_threshold: Annotated[
        float | None, typer.Option(help="Lowest detection confidence reported.")
    ] = None,
    fetch_weights: Annotated[
        bool,
        typer.Option(
            "--fetch-weights", help="Download and cache the default YOLO weights, then exit."
        ),
    ] = False,
    backend: BackendName = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show what the agents see of IMAGE: features, histogram + peak, detections, BRISQUE, focus."""
    if fetch_weights:
        from dasha.perception.detectors.yolo import fetch_yolov3_tiny

        print_json({"yolov3-tiny": str(fetch_yolov3_tiny())})
        return
    if image is None:
        raise ConfigError("give an IMAGE (or --fetch-weights)")
    from dasha.perception.senses import Senses

    options = {} if score_threshold is None else {"score_threshold": score_threshold}
    senses = Senses(
        encoder=None if encoder == "none" else encoder,
        detector=None if detector == "none" else detector,
        target=target,
        encoder_weights=encoder_weights,
        detector_weights=weights,
        detector_options=options,
        backend=backend,
    )
    frame = _read_gray(image)
    senses.perceive(frame)  # warm-up: lazy loading would otherwise dominate timings_ms
    result = senses.perceive(frame).to_dict()
    if json_out:
        print_json(result)
        return
    from rich.console import Console
    from rich.pretty import Pretty

    Console().print(Pretty(result))


@app.command("perceive-bench")
@handle_errors
def perceive_bench(
    image: Annotated[
        Path | None, typer.Argument(help="Image file; default: skimage's cameraman at 417x404.")
    ] = None,
    encoder: Annotated[
        str, typer.Option(help="efficientnet-lite0 | resnet152")
    ] = "efficientnet-lite0",
    detector: Annotated[
        str, typer.Option(help="yolo | faster-rcnn | retinanet | mtcnn | none")
    ] = "yolo",
    batch_size: Annotated[
        int, typer.Option(help="Frames per batch for the batched-encoder timing.")
    ] = 8,
    repeats: Annotated[
        int, typer.Option(help="Timed repeats per part (the median is reported).")
    ] = 5,
    backends: Annotated[
        bool,
        typer.Option(
            "--backends/--no-backends",
            help="Also time encoder, detector, BRISQUE and a full A_L step under each installed backend, interleaved, with the ratios.",
        ),
    ] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Milliseconds per frame of each perception part (encoder single vs batched), and the
    same parts under each backend with their speed-ups."""
    import cv2

    from dasha.perception.bench import bench_backends, bench_perception

    if image is None:
        import skimage.data

        frame = cv2.resize(skimage.data.camera(), (417, 404), interpolation=cv2.INTER_AREA)
    else:
        frame = _read_gray(image)
    result = bench_perception(
        frame, encoder, None if detector == "none" else detector, batch_size, repeats
    )
    if backends and detector != "none":
        result["by_backend"] = bench_backends(
            encoder=encoder, detector=detector, repeats=max(repeats, 15), batch_size=batch_size
        )
    if json_out:
        print_json(result)
        return
    for key, value in result.items():
        typer.echo(f"{key:40s} {value}")
