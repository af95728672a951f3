"""PNG plots of a lab run (matplotlib, the optional `lab` extra; Agg backend, no display).

grad_norms.png       ||dL/dW_l|| and ||dL/dz_l|| per hidden layer, log scale, one line per
                     activation (init/variant), at the deepest depth of the run
ratio_vs_depth.png   ||dL/dz_1|| / ||dL/dz_L|| against depth, log scale (runs with several
                     depths); ratios.png: the same ratio per configuration otherwise
training.png         training loss per step, one panel per depth (trained runs)
"""

from __future__ import annotations

import math
import os

PLOT_NAMES = ("grad_norms.png", "ratio_vs_depth.png", "ratios.png", "training.png")

MATPLOTLIB_HINT = (
    "plots need matplotlib: pip install 'fastact[lab]' (or pip install "
    "matplotlib); results.json and results.csv need nothing."
)


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("lab: " + MATPLOTLIB_HINT) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _name(r, multi_init, multi_variant):
    s = r["label"] or r["activation"]
    if not r["label"]:
        if multi_init:
            s += f" {r['init']}"
        if multi_variant:
            s += f" {r['variant']}"
    return s


def _pos(v):
    return v if (v is not None and v > 0 and math.isfinite(v)) else float("nan")


def plot_all(result, out_dir) -> list:
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator, NullFormatter

    os.makedirs(out_dir, exist_ok=True)
    recs = result.records
    if not recs:
        return []
    multi_init = len({r["init"] for r in recs}) > 1
    multi_var = len({r["variant"] for r in recs}) > 1
    paths = []
    title = f"fastact lab{' --preset ' + result.preset if result.preset else ''}"

    # 1. per-layer gradient norms at the deepest depth
    deepest = max(r["depth"] for r in recs)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for r in (r for r in recs if r["depth"] == deepest):
        lab = _name(r, multi_init, multi_var)
        layers = range(1, r["depth"] + 1)
        axes[0].plot(
            layers, [_pos(v) for v in r["weight_grad_norms"][: r["depth"]]], marker=".", label=lab
        )
        axes[1].plot(layers, [_pos(v) for v in r["backprop_grad_norms"]], marker=".", label=lab)
    for ax, what in zip(axes, ("||dL/dW_l|| (weights)", "||dL/dz_l|| (back-propagated)")):
        ax.set_yscale("log")
        ax.set_xlabel("hidden layer l (1 = next to the input)")
        ax.set_ylabel(what)
        ax.grid(True, which="major", alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # layers: no 1.5
    outside = _legend(axes[1], 7)
    fig.suptitle(f"{title}: gradient norm per layer at initialisation, depth {deepest}")
    if not outside:
        fig.tight_layout()
    paths.append(_save(fig, plt, out_dir, "grad_norms.png", outside))

    # 2. the ratio against depth (or per configuration)
    depths = sorted({r["depth"] for r in recs})
    fig, ax = plt.subplots(figsize=(8, 4.6))
    if len(depths) > 1:
        groups = {}
        for r in recs:
            groups.setdefault((r["activation"], r["init"], r["variant"]), []).append(r)
        for rs in groups.values():
            rs.sort(key=lambda r: r["depth"])
            ax.plot(
                [r["depth"] for r in rs],
                [_pos(r["backprop_grad_ratio"]) for r in rs],
                marker="o",
                label=_name(rs[0], multi_init, multi_var),
            )
        ax.set_xlabel("depth (hidden layers)")
        ax.set_xscale("log")
        ax.set_xticks(depths)
        ax.set_xticklabels([str(d) for d in depths])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel("||dL/dz_1|| / ||dL/dz_L||")
        outside = _legend(ax, 7)
        name = "ratio_vs_depth.png"
    else:
        labels = [_name(r, multi_init, multi_var) for r in recs]
        ax.barh(range(len(recs)), [_pos(r["backprop_grad_ratio"]) for r in recs])
        ax.set_yticks(range(len(recs)))
        ax.set_yticklabels(labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(f"||dL/dz_1|| / ||dL/dz_L|| at depth {depths[0]}")
        fig.set_size_inches(8, max(4.6, 1.2 + 0.13 * len(recs)))  # a readable row each
        outside = False
        name = "ratios.png"
    scale_axis = ax.set_yscale if len(depths) > 1 else ax.set_xscale
    scale_axis("log")
    span = ax.axhspan if len(depths) > 1 else ax.axvspan
    span(0.1, 10, color="green", alpha=0.08, label="within a decade of 1")
    ax.grid(True, alpha=0.3)
    ax.set_title(
        f"{title}: first-layer over last-hidden-layer gradient, at initialisation", fontsize=9
    )
    if not outside:
        fig.tight_layout()
    paths.append(_save(fig, plt, out_dir, name, outside))

    # 3. training curves, one panel per depth
    trained = [r for r in recs if r.get("loss_curve")]
    if trained:
        tdepths = sorted({r["depth"] for r in trained})
        ncol = min(3, len(tdepths))
        nrow = -(-len(tdepths) // ncol)
        fig, axes = plt.subplots(
            nrow, ncol, figsize=(4.2 * ncol + 0.6, 3.4 * nrow + 0.6), squeeze=False, sharey=True
        )
        flat = [ax for row in axes for ax in row]
        for ax, d in zip(flat, tdepths):
            for r in (r for r in trained if r["depth"] == d):
                ax.plot(
                    range(1, len(r["loss_curve"]) + 1),
                    r["loss_curve"],
                    lw=0.8,
                    label=_name(r, multi_init, multi_var),
                )
            ax.axhline(trained[0]["chance_loss"], color="gray", ls=":", lw=0.8)
            ax.set_title(f"depth {d}", fontsize=9)
            ax.set_xlabel("step")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(True, alpha=0.3)
        for ax in flat[len(tdepths) :]:
            ax.set_visible(False)
        for row in axes:
            row[0].set_ylabel("training loss")
        many = len(flat[0].get_legend_handles_labels()[1]) > _LEGEND_INSIDE
        outside = _legend(flat[ncol - 1] if many else flat[0], 6)  # (beside: the top right)
        # (the title wraps in a one-panel figure: 4.8 in cut it off on both sides)
        sep = "\n" if ncol == 1 else " "
        fig.suptitle(
            f"{title}: training loss{sep}(dotted: guessing the class frequencies)",
            fontsize=10 if ncol == 1 else 12,
        )
        if not outside:
            fig.tight_layout()
        paths.append(_save(fig, plt, out_dir, "training.png", outside))
    return paths


_LEGEND_INSIDE = 12  # more lines than this: the legend goes beside the axes


def _legend(ax, fontsize):
    """the legend of ax's lines: inside where it fits, else beside the axes in columns
    (80 entries inside ran off the figure); True when beside"""
    n = len(ax.get_legend_handles_labels()[1])
    if n <= _LEGEND_INSIDE:
        ax.legend(fontsize=fontsize, loc="best")
        return False
    ax.legend(
        fontsize=6,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        ncol=-(-n // 40),
    )
    return True


def _save(fig, plt, out_dir, name, outside=False):
    path = os.path.join(out_dir, name)
    # a legend beside the axes: the saved area grows to hold it (tight_layout cannot)
    fig.savefig(path, dpi=110, bbox_inches="tight" if outside else None)
    plt.close(fig)
    return path
