"""Training curves as a PNG beside history.json: people look at curves, they do not read them."""

from __future__ import annotations

from pathlib import Path


def plot_history(history: list[dict], path: Path) -> None:
    """Loss per epoch, one colour per stage, and the validation score (when there is one) on a
    second axis. Rewritten after every epoch, so a running job can be watched."""
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")  # no display on training machines
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for stage, colour in (("stage1", "tab:blue"), ("stage2", "tab:orange")):
        points = [(h["epoch"], h["loss"]) for h in history if h["stage"] == stage]
        if points:
            ax.plot(*zip(*points), marker="o", color=colour, label=f"{stage} loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    scores = [(h["epoch"], h["score"]) for h in history if "score" in h]
    if scores:
        key = "val_top1" if "val_top1" in history[-1] else "val_ari"
        twin = ax.twinx()
        twin.plot(*zip(*scores), marker="s", color="tab:green", label=key)
        twin.set_ylabel(f"validation {key[4:]}")
        twin.legend(loc="upper right")
    ax.legend(loc="upper left")
    ax.set_title("clippings train")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
