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
