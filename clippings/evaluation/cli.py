"""`clippings eval`: the command line; the scoring lives in clippings/evaluation/evaluate.py, imported
only when the command runs (it pulls in FAISS, SciPy and scikit-learn)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from clippings.errors import ClippingsError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="evaluate a model on a dataset against image-only, text-only and string matching",
        description="Linking datasets (corpus/query): top-1 accuracy. Dedup datasets (val/test): ARI on test. "
        "The model's decision uses the thresholds and image weight of its manifest, as the linker does "
        "(--thresholds tuned: chosen on the set's val split instead); the baselines are always tuned on val.",
    )
    p.add_argument("dataset", help="dataset folder (records.jsonl + images/)")
    p.add_argument("--model", help="shipped model name (jp-firms, news) or exported model folder; required: "
                   "a dataset does not say which model it is for")
    p.add_argument("--variant", help="fp32, fp16 or int8 where exported (default: the one the model serves)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--thresholds", choices=["manifest", "tuned"], default="manifest",
                   help="manifest (default): the model's decision as the services make it; tuned: its threshold "
                   "and image weight chosen on this dataset's val split")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="also write DIR/eval.json and DIR/scores.png (score distributions of matches and "
                   "non-matches, with the threshold)")
    p.set_defaults(func=run)


def _plot_path(out: Path | None) -> Path | None:
    if out is None:
        return None
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ClippingsError("--out draws its plots with matplotlib: pip install 'clippings[train]' "
                             "(or matplotlib alone)") from None
    out.mkdir(parents=True, exist_ok=True)
    return out / "scores.png"


def run(args: argparse.Namespace) -> int:
    from clippings.data.dataset import load_dataset
    from clippings.runtime.onnx_model import OnnxEmbedder
    from clippings.evaluation.evaluate import evaluate_dedup, evaluate_link

    if not args.model:
        raise ClippingsError("name the model to score: --model NAME|PATH (shipped: jp-firms for firm-name linking, "
                             "news for photo+caption duplicates; `clippings up` serves news unless CLIPPINGS_MODEL "
                             "names another)")
    ds = load_dataset(args.dataset)
    emb = OnnxEmbedder(args.model, variant=args.variant)
    plot_to = _plot_path(args.out)
    evaluate = evaluate_link if ds.task == "link" else evaluate_dedup
    result = evaluate(emb, ds, served=args.thresholds == "manifest", plot_to=plot_to)
    result["model"] = {"name": emb.manifest.name, "version": emb.version, "variant": emb.variant}
    result["thresholds"] = args.thresholds
    if args.out:
        (args.out / "eval.json").write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out / 'eval.json'} and {plot_to}", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
        return 0
    key = "top1" if result["task"] == "link" else "ari"
    print(f"{args.dataset}: task={result['task']} n={result['n']} model={emb.manifest.name}@{emb.version} ({emb.variant})")
    print(f"  {'method':<12} {key:>7} {'threshold':>10}")
    for name, m in result["metrics"].items():
        t = m.get("threshold")
        print(f"  {name:<12} {m[key]:>7.3f} {'' if t is None else f'{t:>10.3f}'}")
    partial = result["missing_modality"]
    print(f"  missing one modality (n={partial['n']}, at {partial['threshold']:.3f}): linked to their own entity: "
          f"text only {partial['text_only']['links']:.3f}, image only {partial['image_only']['links']:.3f}")
    errors = result.get("errors")
    if errors:
        print(f"  at the manifest's cut: {errors['wrong_links']} links between two entities (ARI "
              f"{errors['ari_without_wrong_links']:.3f} without them), {errors['missed_pairs']} of "
              f"{errors['entity_pairs']} pairs of one entity apart (ARI {errors['ari_without_missed_pairs']:.3f} joined)")
    prob = result.get("match_probability")
    if prob and prob["pairs"]:
        print(f"  match probability on {prob['pairs']} candidate pairs ({prob['matching']:.3f} matching): "
              f"mean {prob['mean_probability']:.3f}, Brier {prob['brier']:.3f}, log loss {prob['log_loss']:.3f}")
    return 0
