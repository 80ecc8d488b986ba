"""Figures shared by commands and benchmarks (matplotlib, Agg, written atomically)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dasha.io import write_bytes


def save_figure(fig: object, out: str | Path) -> None:
    """Save a matplotlib figure as PNG in one atomic write, then close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    write_bytes(out, buffer.getvalue())


def contact_sheet(
    rows: Sequence[tuple[str, Sequence[tuple[np.ndarray, str]]]], title: str, out: str | Path
) -> None:
    """A grid of grey frames: one labelled row per entry, one captioned cell per frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows), max(len(r[1]) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.2 * n_cols, 2.3 * n_rows), squeeze=False)
    for i, (label, cells) in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(cells):
                image, caption = cells[j]
                vmax = 255 if image.dtype == np.uint8 else int(image.max() or 1)
                ax.imshow(image, cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
                ax.set_title(caption, fontsize=7)
            else:
                ax.axis("off")
        axes[i][0].set_ylabel(label, fontsize=9)
    fig.suptitle(title, fontsize=10)
    save_figure(fig, out)


def learning_curve(
    curves: dict[str, list[dict[str, float]]], out: str | Path, title: str = "Learning curves"
) -> None:
    """Mean episode return of each agent against environment steps (paper Fig. 3)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for name, curve in curves.items():
        keys = sorted(
            {
                k
                for row in curve
                for k in row
                if k.startswith("charts/")
                and k.endswith("_return_mean")
                and k != "charts/episode_return_mean"
            }
        )
        for key in keys or ["charts/episode_return_mean"]:
            points = [(row["env_steps"], row[key]) for row in curve if key in row]
            if points:
                xs, ys = zip(*points, strict=True)
                agent = key.removeprefix("charts/").removesuffix("_return_mean")
                ax.plot(xs, ys, label=f"{name}: {agent}")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("mean episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, out)


def detection_map(
    scores: np.ndarray,
    exposures_us: Sequence[float] | np.ndarray,
    focus_v: Sequence[float] | np.ndarray,
    marks: dict[str, list[tuple[float, float]]],
    title: str,
    out: str | Path,
) -> None:
    """Detector confidence over exposure x focus, with where methods start and end (Fig. 4)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    mesh = ax.pcolormesh(
        focus_v, exposures_us, scores, shading="nearest", cmap="viridis", vmin=0, vmax=1
    )
    fig.colorbar(mesh, ax=ax, label="target detection score (0 = not detected)")
    styles = {"start (DASHA off)": ("X", "red"), "DASHA on": ("o", "white")}
    for label, points in marks.items():
        if points:
            marker, color = styles.get(label, ("s", "orange"))
            ax.scatter(
                [p[1] for p in points],
                [p[0] for p in points],
                marker=marker,
                c=color,
                edgecolors="black",
                label=label,
                s=40,
            )
    ax.set_yscale("log")
    ax.set_xlabel("lens focus voltage (V)")
    ax.set_ylabel("exposure time (us)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    save_figure(fig, out)


def histogram_comparison(histograms: dict[str, np.ndarray], out: str | Path) -> None:
    """Mean 256-bin histogram of the final frames of each exposure method (Fig. 5)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    for name, hist in histograms.items():
        ax.plot(np.arange(256), hist / max(hist.sum(), 1), label=name)
    ax.axvspan(50, 150, color="green", alpha=0.08, label="suitable peak P in [50, 150]")
    ax.set_xlabel("pixel value")
    ax.set_ylabel("fraction of pixels")
    ax.set_title(
        "Final-frame histograms: DASHA's exposure agent vs auto-exposure baselines", fontsize=9
    )
    ax.legend(fontsize=8)
    save_figure(fig, out)


def settings_vs_illuminance(rows: Sequence[dict[str, float]], out: str | Path) -> None:
    """Chosen focus voltage and exposure time against illuminance (Fig. 7)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lux = [r["illuminance_lux"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax1.scatter(lux, [r["final_focus_v"] for r in rows], s=12, label="chosen")
    ax1.scatter(
        lux,
        [r["in_focus_v"] for r in rows],
        s=12,
        marker="_",
        c="red",
        label="in focus (ground truth)",
    )
    ax1.set_xlabel("illuminance (lux)")
    ax1.set_ylabel("focus voltage (V)")
    ax1.legend(fontsize=8)
    ax2.scatter(lux, [r["final_exposure_us"] for r in rows], s=12)
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("illuminance (lux)")
    ax2.set_ylabel("exposure time (us)")
    fig.suptitle("DASHA's choices across illuminance", fontsize=10)
    save_figure(fig, out)
