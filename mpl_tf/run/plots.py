"""Figures for 2-D datasets: decision boundaries of the trained networks beside the truth."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def decision_boundaries(path, points, labels, labeled_indices, panels, resolution=200):
    """Writes one panel per (title, predict_fn or None for ground truth) to `path`.

    `predict_fn` maps an [N, 2] float32 array to class ids; the labeled points are ringed.
    """
    low, high = points.min(axis=0) - 0.5, points.max(axis=0) + 0.5
    gx, gy = np.meshgrid(np.linspace(low[0], high[0], resolution),
                         np.linspace(low[1], high[1], resolution))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    for ax, (title, predict) in zip(np.atleast_1d(axes), panels):
        colors = labels
        if predict is not None:
            ax.contourf(gx, gy, predict(grid).reshape(gx.shape), levels=[-0.5, 0.5, 1.5],
                        colors=["#c6dbef", "#fdd0a2"], alpha=0.8)
            colors = predict(points)
        ax.scatter(points[:, 0], points[:, 1], c=colors, cmap="coolwarm", s=3, vmin=0, vmax=1)
        ax.scatter(points[labeled_indices, 0], points[labeled_indices, 1],
                   c=labels[labeled_indices], cmap="coolwarm", vmin=0, vmax=1, s=90,
                   edgecolors="black", linewidths=1.5, marker="o")
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
