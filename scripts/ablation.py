"""The paper's ablation on our synthetic data: supervised vs self-supervised (stage 1 only),
multimodal vs image-only vs text-only, against the string baselines. Prints a Markdown table.

    .venv/bin/python scripts/ablation.py --run runs/jp-firms --val data/jp-firms-val --test data/jp-test \
        --run runs/news --val data/news-val --test data/news-test

Each run folder holds best.pt (supervised) and stage1.pt (the self-supervised model: the end
of stage 1). Both are exported to a temporary folder (image weight and thresholds tuned on the
validation set, as `clippings export` does) and scored on the test set by `clippings eval`'s code.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from clippings.data.dataset import load_dataset
from clippings.runtime.onnx_model import OnnxEmbedder
from clippings.evaluation.evaluate import evaluate_dedup, evaluate_link
from clippings.export.cli import export_model


def score(model_dir: Path, test: Path) -> dict:
    ds = load_dataset(test)
    result = evaluate_link(OnnxEmbedder(model_dir), ds) if ds.task == "link" else evaluate_dedup(OnnxEmbedder(model_dir), ds)
    key = "top1" if result["task"] == "link" else "ari"
    return {"task": result["task"], "n": result["n"], "key": key, **{k: v[key] for k, v in result["metrics"].items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, action="append", required=True)
    p.add_argument("--val", type=Path, action="append", required=True, help="tunes w and thresholds")
    p.add_argument("--test", type=Path, action="append", required=True)
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args()
    rows, figures = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for run, val, test in zip(args.run, args.val, args.test):
            for label, ckpt in (("supervised", run / "best.pt"), ("self-supervised", run / "stage1.pt")):
                out = Path(tmp) / f"{run.name}-{label}"
                export_model(ckpt, out, val)
                s = score(out, test)
                figures[f"{run.name}/{label}"] = s
                rows.append(f"| {test.name} ({s['key']}, n={s['n']}) | {label} | {s['clippings']:.3f} | "
                            f"{s['image_only']:.3f} | {s['text_only']:.3f} | {s['levenshtein']:.3f} | {s['jaccard']:.3f} |")
    print("| test set | training | multimodal | image-only | text-only | Levenshtein | n-gram Jaccard |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
