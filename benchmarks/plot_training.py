"""Plot training curves (the ``history.csv`` that ``audio2vec train`` writes) into one PNG.

    python benchmarks/plot_training.py docs/training_history_con1.csv --out docs/training_curve_contrastive.png

Every numeric column is drawn against the epoch: losses on the left axis, ``top1`` (contrastive:
share of pairs whose nearest vector in the batch is their partner) on the right.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("history", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--title", default=None)
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(args.history.open()))
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    right = None
    for col in rows[0]:
        if col in ("epoch", "learning_rate"):
            continue
        values = [float(r[col]) for r in rows]
        if "top1" in col:
            right = right or ax.twinx()
            right.plot(epochs, values, "--", label=col)
        else:
            ax.plot(epochs, values, label=col)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    lines, labels = ax.get_legend_handles_labels()
    if right is not None:
        right.set_ylabel("top-1 pair accuracy in batch")
        more = right.get_legend_handles_labels()
        lines, labels = lines + more[0], labels + more[1]
    ax.legend(lines, labels, loc="center right")
    ax.set_title(args.title or args.history.stem)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
