"""Small matplotlib helpers shared by the analyses (Agg backend, PNG files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> str:
    """Write ``fig`` as PNG (dpi 110), close it, return the file name."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path.name


def show_image(ax, raw: np.ndarray) -> None:
    """Draw a stored uint8 image (grey or RGB) without axes."""
    if raw.ndim == 2:
        ax.imshow(raw, cmap="gray", vmin=0, vmax=255)
    else:
        ax.imshow(raw)
    ax.set_xticks([])
    ax.set_yticks([])
