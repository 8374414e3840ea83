"""`clippings eval`: the command line; the scoring lives in clippings/evaluate.py, imported
only when the command runs (it pulls in FAISS, SciPy and scikit-learn)."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="evaluate a model on a dataset against image-only, text-only and string matching",
        description="Linking datasets (corpus/query): top-1 accuracy. Dedup datasets (val/test): ARI on test "
        "after tuning the cosine threshold (and the image weight w) on val.",
    )
    p.add_argument("dataset", help="dataset folder (records.jsonl + images/)")
    p.add_argument("--model", default="jp-firms", help="shipped model name or exported model folder (default: jp-firms)")
    p.add_argument("--variant", default="fp32", help="fp32, fp16 or int8 where exported")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clippings.data.dataset import load_dataset
    from clippings.embedding import OnnxEmbedder
    from clippings.evaluate import evaluate_dedup, evaluate_link

    ds = load_dataset(args.dataset)
    emb = OnnxEmbedder(args.model, variant=args.variant)
    result = evaluate_link(emb, ds) if ds.task == "link" else evaluate_dedup(emb, ds)
    result["model"] = {"name": emb.manifest.name, "version": emb.version, "variant": args.variant}
    if args.json:
        print(json.dumps(result))
        return 0
    key = "top1" if result["task"] == "link" else "ari"
    print(f"{args.dataset}: task={result['task']} n={result['n']} model={emb.manifest.name}@{emb.version} ({args.variant})")
    print(f"  {'method':<12} {key:>7} {'threshold':>10}")
    for name, m in result["metrics"].items():
        t = m.get("threshold")
        print(f"  {name:<12} {m[key]:>7.3f} {'' if t is None else f'{t:>10.3f}'}")
    return 0
