"""PNG plots of F1 against N, one per start mode, with the paper's curves dashed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from botunet.experiments.paper import PAPER_BY_PACKETS, PAPER_MODEL_NAMES


def plot_f1(document: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write f1_<start>.png for each start mode of the sweep; return their paths."""
    # The Agg canvas draws without a display and without pyplot's global state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = document["rows"]
    grid = document["settings"]["sweep"]
    paths = []
    for start in grid["starts"]:
        figure = Figure(figsize=(6.4, 4.0), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        for index, model in enumerate(grid["models"]):
            color = f"C{index}"
            points = sorted(
                (r["n_packets"], 100 * r["f1"])
                for r in rows
                if r["start"] == start and r["model"] == model
            )
            if points:
                xs, ys = zip(*points)
                axes.plot(xs, ys, marker="o", color=color, label=f"{model} (ours)")
            paper = PAPER_BY_PACKETS.get(start, {}).get(model)
            if paper:
                ns = [n for n in grid["packets"] if n in paper]
                if ns:
                    axes.plot(
                        ns,
                        [paper[n][3] for n in ns],
                        linestyle="--",
                        color=color,
                        alpha=0.6,
                        label=f"{PAPER_MODEL_NAMES[model]} (paper)",
                    )
        axes.set_xlabel("N (packets per sample)")
        axes.set_ylabel("F1 (%)")
        axes.set_title(f"F1 against N, start {start}, protocol {document['settings']['protocol']}")
        axes.set_xticks(grid["packets"])
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize="small")
        path = out_dir / f"f1_{start}.png"
        figure.savefig(path, dpi=120)
        paths.append(path)
    return paths
