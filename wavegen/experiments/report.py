"""The report of a grid directory: Table 1.3 (Morlet8, Morlet6 and the DTCWT front ends with
symmetric padding and bias 1e-2, top-1 and top-5 mean and spread over seeds, seconds per
epoch), Table 1.4 (every DTCWT cell) as markdown, and
Figure 1.2 as a PNG: per dataset a heatmap of the top-1 accuracy relative to the dataset's
DTCWT mean (percentage points), (wavelet x padding) by magnitude bias, each dataset with
its own colour scale. The accuracies are the final epoch's test accuracies.
"""
from __future__ import annotations

import json
import os
import statistics

from .data import require
from .grid import BIASES, PADDINGS, WAVELETS



def collect(root: str) -> dict:
    """{dataset: {cell name: [final metrics per finished seed]}} from ``root``, plus each
    cell's seconds per epoch."""
    found: dict = {}
    for dataset in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        if not os.path.isdir(os.path.join(root, dataset)):      # the report's own files
            continue
        for cell in sorted(os.listdir(os.path.join(root, dataset))):
            folder = os.path.join(root, dataset, cell)
            if not os.path.isdir(folder):
                continue
            for seed in sorted(os.listdir(folder)):
                result = os.path.join(folder, seed, "result.json")
                if os.path.exists(result):
                    with open(result) as f:
                        saved = json.load(f)
                    final = dict(saved["final"], machine=saved.get("machine"),
                                 config=saved["config"])
                    with open(os.path.join(folder, seed, "metrics.jsonl")) as f:
                        seconds = [json.loads(line)["seconds"] for line in f]
                    # The first epoch also compiles the kernels; the rest time the training.
                    final = dict(final, seconds_per_epoch=statistics.median(
                        seconds[1:] or seconds))
                    found.setdefault(dataset, {}).setdefault(cell, []).append(final)
    if not found:
        raise ValueError(f"no finished runs under {root} (expected "
                         "<root>/<dataset>/<cell>/seed<k>/result.json, as grid writes)")
    return found


def _stat(runs: list, key: str, scale: float = 100) -> str:
    values = [scale * r[key] for r in runs]
    spread = f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.2f}{spread}"


def _dtcwt_cells():
    return [(w, p) for w in WAVELETS for p in PADDINGS]


def _cell(w: str, p: str, b: float) -> str:
    return f"dtcwt-{w}-{p}-bias{b:g}"


def _machines(found: dict) -> str:
    """The machines and the training settings (width, epochs, batch) of the runs."""
    runs = [r for cells in found.values() for rs in cells.values() for r in rs]
    machines = {json.dumps(r.get("machine"), sort_keys=True) for r in runs}
    settings = {f"C={r['config']['width']}, {r['config']['epochs']} epochs, batch "
                f"{r['config']['batch_size']}, lr {r['config']['lr']}" for r in runs}
    return "".join(f"Machine: `{m}`\n\n" for m in sorted(machines)) + \
        "".join(f"Training: {t}\n\n" for t in sorted(settings))


def tables(found: dict) -> str:
    lines = ["## Table 1.3: scattering front ends (test accuracy %, mean ± standard deviation "
             "over seeds)", "",
             "| dataset | front end | seeds | top-1 | top-5 | seconds/epoch |",
             "|---|---|---|---|---|---|"]
    for dataset, cells in found.items():
        fronts = [("Morlet8", "morlet8"), ("Morlet6", "morlet6")] + [
            (f"DTCWT ({w}, symmetric, bias 1e-2)", _cell(w, "symmetric", 1e-2))
            for w in WAVELETS]
        for label, name in fronts:
            if name in cells:
                runs = cells[name]
                lines.append(f"| {dataset} | {label} | {len(runs)} | {_stat(runs, 'test_top1')}"
                             f" | {_stat(runs, 'test_top5')} | "
                             f"{_stat(runs, 'seconds_per_epoch', 1)} |")
    lines += ["", "## Table 1.4: DTCWT options (top-1 %, mean ± standard deviation over seeds)",
              ""]
    for dataset, cells in found.items():
        lines += [f"### {dataset}", "",
                  "| wavelet | padding | " + " | ".join(f"bias {b:g}" for b in BIASES) + " |",
                  "|---|---|" + "---|" * len(BIASES)]
        for w, p in _dtcwt_cells():
            row = [_stat(cells[_cell(w, p, b)], "test_top1") if _cell(w, p, b) in cells
                   else "-" for b in BIASES]
            if any(v != "-" for v in row):
                lines.append(f"| {w} | {p} | " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)


def figure(found: dict, path: str) -> None:
    """Figure 1.2: per dataset, top-1 relative to its DTCWT cells' mean."""
    require("matplotlib", "matplotlib", "the report's figure")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    rows = _dtcwt_cells()
    fig, axes = plt.subplots(1, len(found), figsize=(4.2 * len(found), 3.6), squeeze=False)
    for ax, (dataset, cells) in zip(axes[0], found.items()):
        grid = np.full((len(rows), len(BIASES)), np.nan)
        for i, (w, p) in enumerate(rows):
            for j, b in enumerate(BIASES):
                runs = cells.get(_cell(w, p, b))
                if runs:
                    grid[i, j] = 100 * statistics.mean(r["test_top1"] for r in runs)
        relative = grid - np.nanmean(grid) if np.isfinite(grid).any() else grid
        reach = float(np.nanmax(np.abs(relative))) if np.isfinite(relative).any() else 1.0
        image = ax.imshow(relative, cmap="RdBu", aspect="auto", vmin=-reach or -1,
                          vmax=reach or 1)
        ax.set_xticks(range(len(BIASES)), [f"{b:g}" for b in BIASES])
        ax.set_yticks(range(len(rows)), [f"{w} {p}" for w, p in rows])
        ax.set_xlabel("magnitude bias")
        ax.set_title(dataset)
        fig.colorbar(image, ax=ax, label="top-1 - mean (pp)")
    fig.tight_layout()
    tmp = f"{path}.{os.getpid()}.tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def report(root: str, out: str | None = None) -> tuple[str, str]:
    """Writes ``report.md`` and ``figure_1_2.png`` into ``out`` (default: ``root``)."""
    found = collect(root)
    out = out or root
    os.makedirs(out, exist_ok=True)
    text = f"# Hybrid ScatterNet experiments: {root}\n\n" + _machines(found) + tables(found) + \
        "\nFigure 1.2: figure_1_2.png (top-1 relative to each dataset's DTCWT mean).\n"
    md, png = os.path.join(out, "report.md"), os.path.join(out, "figure_1_2.png")
    with open(md, "w") as f:
        f.write(text)
    figure(found, png)
    return md, png
