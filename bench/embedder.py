"""Embedder bench: clippings/s and ms per batch against batch size, ONNX fp32/fp16/int8 against
eager PyTorch on the same real inputs, at 1 and 2 threads; and where the time of one service
batch goes (parse, decode, preprocess, inference, serialise, produce).

    python -m bench.embedder                      # both shipped models, CPU, full sweep
    python -m bench.embedder --provider cuda      # the CUDA execution provider (bench/gpu.sh)

Sections:
- inference: OnnxEmbedder.run (what the service calls) per variant, and the PyTorch module
  rebuilt from the training checkpoint runs/<model>/best.pt (a fresh clone without runs/
  falls back to a randomly initialised model of the same preset: the speed does not depend on
  the weights; the JSON says which was used and how close it is to the ONNX output).
- pipeline: EmbedStep.process and the wait for the acks, the service's own batch path, on real raw events
  (inline images, as `clippings replay` sends them) wrapped as Kafka messages, producing to a
  real Tansu broker; the time per step comes from the service's clippings_stage_seconds metric.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from bench.common import REPO, add_common_args, load_records, machine, pct, results_path, table, timed, write_json

PIPELINE_STEPS = ("decode", "preprocess", "inference", "serialize", "produce")
PROVIDERS = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.embedder", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["news", "jp-firms"], help="shipped model names (default: %(default)s)")
    p.add_argument("--variants", nargs="+", default=["fp32", "fp16", "int8"])
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 2, 4, 8, 16, 32, 64, 128, 256])
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="intra-op threads (ONNX and torch)")
    p.add_argument("--provider", choices=sorted(PROVIDERS), default="cpu")
    p.add_argument("--no-torch", action="store_true", help="skip the eager PyTorch baseline")
    p.add_argument("--min-time", type=float, default=0.6, help="seconds of timed calls per cell (default: %(default)s)")
    p.add_argument("--sections", nargs="+", choices=["inference", "pipeline"], default=["inference", "pipeline"])
    p.add_argument("--pipeline-batch", type=int, default=64, help="events per service batch (the default batch_max_events)")
    p.add_argument("--pipeline-batches", type=int, default=12, help="timed service batches per configuration")
    p.add_argument("--decode-workers", nargs="+", type=int, default=[1, 2], help="image pool sizes for the pipeline section")
    p.add_argument("--bootstrap", help="a running Kafka for the pipeline section (default: start a Tansu broker)")
    add_common_args(p, "embedder")
    args = p.parse_args(argv)
    args.out = results_path(args, "embedder")
    if args.quick:
        args.models, args.variants, args.batch_sizes, args.threads = args.models[:1], ["fp32", "int8"], [1, 4], [1]
        args.min_time, args.pipeline_batch, args.pipeline_batches, args.decode_workers = 0.02, 8, 2, [2]
    return args


# -- eager PyTorch baseline ----------------------------------------------------------------------
def torch_model(name: str, manifest, model_dir: Path, device: str, pixels: np.ndarray, ids: np.ndarray, reference):
    """-> (module, where it came from, min cosine to the ONNX fp32 output). Of the training
    checkpoints runs/<name>*/best.pt of the exported architecture, the one whose output is
    closest to the shipped ONNX model; with none (a fresh clone), a random model of the same
    preset: the same shapes, so the same speed."""
    from clippings.models.config import preset
    from clippings.models.factory import create_model, load_checkpoint

    wanted = manifest.preprocess
    best = None
    for ckpt in sorted((REPO / "runs").glob(f"{name}*/best.pt")):
        model, cfg, _ = load_checkpoint(ckpt)
        if cfg.preprocess != wanted or cfg.embed_dim != manifest.embedding_dim:
            continue
        model = model.to(device).eval()
        parity = _parity(model, pixels, ids, device, reference)
        if best is None or parity > best[2]:
            best = (model, f"checkpoint {ckpt.relative_to(REPO)}", parity)
    if best is not None:
        return best
    name_of_preset = manifest.preset or ("reader-crops" if manifest.family == "reader" else "small-crops"
                                         if wanted.channels == 1 else "small-photos")
    model = create_model(preset(name_of_preset))
    if manifest.family == "small" and manifest.preset:
        # The graph holds every weight (models/exported.py): eager runs what is served, a
        # pretrained photo trunk and its head included (a random model would skip an untrained head).
        from clippings.models.exported import load_small_exported

        load_small_exported(model, model_dir, model_dir / manifest.files["fp32"], wanted, manifest.embedding_dim)
        source = f"the weights of the exported graph (preset {name_of_preset}; no runs/{name}*/best.pt)"
    else:
        source = f"random init of preset {name_of_preset} (no runs/{name}*/best.pt)"
    model = model.to(device).eval()
    return model, source, _parity(model, pixels, ids, device, reference)


def _parity(model, pixels: np.ndarray, ids: np.ndarray, device: str, reference) -> float:
    img, txt = (t.float().cpu().numpy() for t in torch_runner(model, pixels, ids, device)())
    return float(min(cosine_rows(reference[0], img).min(), cosine_rows(reference[1], txt).min()))


def torch_runner(model, pixels: np.ndarray, ids: np.ndarray, device: str):
    import torch

    px, tx = torch.from_numpy(pixels).to(device), torch.from_numpy(ids).to(device)
    # The reader's frozen recogniser exists only as ONNX: its "eager" run is that graph
    # (ONNX Runtime, CPU) followed by the PyTorch head, as in training.
    trunk = None
    if getattr(model, "cfg", None) is not None and model.cfg.family == "reader":
        from clippings.models.trunk import TrunkRunner

        trunk = TrunkRunner(model.cfg.trunk, threads=torch.get_num_threads())

    def run():
        with torch.inference_mode():
            vision = px if trunk is None else torch.from_numpy(trunk(pixels)).to(device)
            out = model(vision, tx)
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    return run


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


# -- inference sweep -------------------------------------------------------------------------------
def inference_section(args, name: str) -> tuple[list[dict], dict]:
    from clippings.data.dataset import record_image
    from clippings.runtime.onnx_model import OnnxEmbedder

    max_bs = max(args.batch_sizes)
    records = load_records(name, max_bs)
    images = [record_image(r) for r in records]
    texts = [r.text for r in records]
    providers = PROVIDERS[args.provider]
    probe = OnnxEmbedder(name, "fp32", providers=providers, intra_op_threads=1)
    if args.provider == "cuda" and probe.session.get_providers()[0] != "CUDAExecutionProvider":
        raise SystemExit(f"the CUDA provider did not load (got {probe.session.get_providers()}): "
                         "CUDA or cuDNN libraries missing? see docs/performance.md")
    pixels, _, ids, _ = probe.prepare(images, texts)  # (N, C, H, W), (N, L): the same inputs for every engine
    info: dict = {"model": name, "version": probe.version, "inputs": f"{len(records)} clippings of "
                  f"{Path(records[0].image or '').parent.parent.name or name}",
                  "providers": probe.session.get_providers()}
    rows: list[dict] = []

    engines: list[tuple[str, object]] = [(f"onnx-{v}", v) for v in args.variants if v in probe.manifest.files]
    torch_mod = None
    if not args.no_torch:
        import torch

        device = "cuda" if args.provider == "cuda" and torch.cuda.is_available() else "cpu"
        reference = probe.run(pixels[:32], ids[:32])
        torch_mod, source, parity = torch_model(probe.manifest.name, probe.manifest, probe.model_dir, device,
                                                pixels[:32], ids[:32], reference)
        info |= {"torch_source": source, "torch_device": device, "torch_vs_onnx_fp32_min_cosine": parity}
        engines.append(("torch-eager", device))

    for threads in args.threads:
        for engine, arg in engines:
            if engine == "torch-eager":
                import torch

                torch.set_num_threads(threads)
                make = lambda bs: torch_runner(torch_mod, pixels[:bs], ids[:bs], arg)  # noqa: E731
            else:
                emb = OnnxEmbedder(name, arg, providers=providers, intra_op_threads=threads)
                make = lambda bs: (lambda: emb.run(pixels[:bs], ids[:bs]))  # noqa: E731
            for bs in args.batch_sizes:
                t = timed(make(bs), min_s=args.min_time, warmup=2)
                p50 = pct(t, 50)
                rows.append({"section": "inference", "model": name, "engine": engine, "threads": threads,
                             "batch": bs, "reps": len(t), "ms_per_batch_p50": p50 * 1e3,
                             "ms_per_batch_p90": pct(t, 90) * 1e3, "ms_per_batch_min": float(t.min()) * 1e3,
                             "ms_per_clipping": p50 * 1e3 / bs,
                             "clippings_per_s": bs / p50})
                print(f"  {name} {engine:12s} threads={threads} batch={bs:4d}: {p50 * 1e3:9.2f} ms/batch "
                      f"{bs / p50:8.1f} clippings/s", file=sys.stderr)
    return rows, info


# -- the service's batch path ------------------------------------------------------------------------
def raw_messages(topic: str, values: list[tuple[bytes, bytes]], b: int, n: int) -> list:
    """Batch b as the consumer would hand it over: the (b mod 4)-th slice of n records."""
    from confluent_kafka import TIMESTAMP_CREATE_TIME, Message

    now_ms = int(time.time() * 1000)
    return [Message(topic=topic, partition=0, offset=b * n + i, key=k, value=v, timestamp=(TIMESTAMP_CREATE_TIME, now_ms))
            for i, (k, v) in enumerate(values[(b % 4) * n:(b % 4 + 1) * n])]


def step_sums(registry) -> dict[str, float]:
    """Seconds the embedder's metrics have counted in each step so far."""
    return {st: registry.get_sample_value("clippings_stage_seconds_sum", {"stage": "embedder", "step": st}) or 0.0
            for st in PIPELINE_STEPS}


def pipeline_row(per_batch: list[dict[str, float]], n: int) -> dict:
    """Step times of batches of n -> the pipeline row's figures: latency percentiles, rate, each step's mean and share."""
    totals = [x["total"] for x in per_batch]
    mean_total = float(np.mean(totals))
    row = {"batches": len(per_batch), "ms_per_batch_p50": pct(totals, 50) * 1e3,
           "ms_per_batch_p99": pct(totals, 99) * 1e3, "clippings_per_s": n / mean_total}
    for st in PIPELINE_STEPS + ("parse_pool_other",):
        mean = float(np.mean([x[st] for x in per_batch]))
        row[f"{st}_ms"] = mean * 1e3
        row[f"{st}_share"] = mean / mean_total
    return row


def pipeline_section(args, name: str, bootstrap: str) -> list[dict]:
    from clippings.runtime.onnx_model import OnnxEmbedder
    from clippings.services.config import EmbedderSettings, load_settings
    from clippings.services.kafka.dlq import DeadLetters
    from clippings.services.embedder.service import EmbedderService, EmbedStep
    from clippings.services.embedder.images import ImageLimits, ImagePreparer
    from clippings.services.kafka.clients import BrokerWatch, Outbox, ensure_topics, make_producer
    from clippings.services.local.replay import raw_event

    n = args.pipeline_batch
    records = load_records(name, n * 4)  # four distinct batches, cycled
    raws = [raw_event(r, "bench", "default", "", "inline", 700_000) for r in records]
    values = [(raw.id.encode(), raw.to_bytes()) for raw in raws]
    suffix = uuid.uuid4().hex[:8]
    topics = dict(topic_raw=f"bench-raw-{suffix}", topic_embedded=f"bench-embedded-{suffix}",
                  topic_dlq=f"bench-dlq-{suffix}")
    rows = []
    for threads in args.threads:
        for workers in args.decode_workers:
            s = load_settings(EmbedderSettings, kafka_bootstrap_servers=bootstrap, model=name, onnx_threads=threads,
                              decode_workers=workers, onnx_providers=PROVIDERS[args.provider],
                              batch_max_events=n, metrics_port=0, **topics)
            ensure_topics(s, {s.topic_embedded: 1, s.topic_dlq: 1})
            service = EmbedderService(s)
            model = OnnxEmbedder(s.model, variant=s.model_variant, providers=s.onnx_providers,
                                 intra_op_threads=s.onnx_threads)
            preparer = ImagePreparer(ImageLimits.from_settings(s), model.preprocess, s.decode_workers)
            watch = BrokerWatch(s.broker_timeout_s)
            producer = make_producer(s, watch)
            dlq = DeadLetters(s.topic_dlq, "embedder", s.kafka_client_id, service.metrics)
            step = EmbedStep(s, service.metrics, model, preparer, dlq)

            per_batch: list[dict[str, float]] = []
            try:
                for b in range(args.pipeline_batches + 1):  # the first one warms up
                    msgs = raw_messages(s.topic_raw, values, b, n)
                    before = step_sums(service.metrics.registry)
                    start = time.perf_counter()
                    outbox = Outbox(producer, watch)  # what the loop (services/kafka/loop.py) does per batch
                    step.process(msgs, outbox)
                    with service.metrics.step("produce"):
                        outbox.wait()
                    total = time.perf_counter() - start
                    after = step_sums(service.metrics.registry)
                    if b:
                        steps = {st: after[st] - before[st] for st in PIPELINE_STEPS}
                        per_batch.append(steps | {"parse_pool_other": total - sum(steps.values()), "total": total})
            finally:
                producer.flush(10)
                preparer.close()
            row = {"section": "pipeline", "model": name, "threads": threads, "decode_workers": workers,
                   "batch": n} | pipeline_row(per_batch, n)
            rows.append(row)
            print(f"  {name} pipeline threads={threads} workers={workers}: {row['ms_per_batch_p50']:.1f} ms/batch "
                  f"{row['clippings_per_s']:.1f} clippings/s", file=sys.stderr)
    return rows


def summarise(rows: list[dict], default_model: str) -> dict:
    """The Done-means figure: the default model's best ONNX per-clipping time against eager
    PyTorch at batch size 1, at each thread count (and like for like, both at batch size 1)."""
    out: dict = {"default_model": default_model}
    inf = [r for r in rows if r["section"] == "inference" and r["model"] == default_model]
    for threads in sorted({r["threads"] for r in inf}):
        at = [r for r in inf if r["threads"] == threads]
        torch1 = next((r for r in at if r["engine"] == "torch-eager" and r["batch"] == 1), None)
        onnx = [r for r in at if r["engine"].startswith("onnx-")]
        if not onnx:
            continue
        best = min(onnx, key=lambda r: r["ms_per_clipping"])
        onnx1 = min((r for r in onnx if r["batch"] == 1), key=lambda r: r["ms_per_clipping"], default=None)
        entry = {"best_onnx": {k: best[k] for k in ("engine", "batch", "ms_per_clipping", "clippings_per_s")}}
        if torch1 is not None:
            entry["torch_bs1_ms_per_clipping"] = torch1["ms_per_clipping"]
            entry["speedup_best_onnx_vs_torch_bs1"] = torch1["ms_per_clipping"] / best["ms_per_clipping"]
            if onnx1 is not None:
                entry["speedup_onnx_bs1_vs_torch_bs1"] = torch1["ms_per_clipping"] / onnx1["ms_per_clipping"]
        out[f"threads_{threads}"] = entry
    # Best against best: each side at the thread count that suits it (eager PyTorch at batch 1
    # is slower with 2 threads than with 1), so neither is handicapped by the sweep.
    torch1 = [r for r in inf if r["engine"] == "torch-eager" and r["batch"] == 1]
    onnx = [r for r in inf if r["engine"].startswith("onnx-")]
    if torch1 and onnx:
        t, o = min(torch1, key=lambda r: r["ms_per_clipping"]), min(onnx, key=lambda r: r["ms_per_clipping"])
        out["best_vs_best"] = {"torch_bs1": {k: t[k] for k in ("threads", "ms_per_clipping")},
                               "onnx": {k: o[k] for k in ("engine", "threads", "batch", "ms_per_clipping")},
                               "speedup": t["ms_per_clipping"] / o["ms_per_clipping"], "target": 5.0}
    pipe = [r for r in rows if r["section"] == "pipeline" and r["model"] == default_model]
    if pipe:
        best = max(pipe, key=lambda r: r["clippings_per_s"])
        out["pipeline_best"] = {k: best[k] for k in ("threads", "decode_workers", "clippings_per_s", "ms_per_batch_p50")}
    return out


def main(argv: list[str] | None = None) -> int:
    started = time.time()
    args = parse_args(argv)
    import onnxruntime as ort

    machine_info = machine()

    from clippings.services.config import ServiceSettings

    if args.provider == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
        print("no CUDAExecutionProvider in this onnxruntime (install onnxruntime-gpu; see docs/performance.md)",
              file=sys.stderr)
        return 2
    rows: list[dict] = []
    infos: list[dict] = []
    if "inference" in args.sections:
        for name in args.models:
            r, info = inference_section(args, name)
            rows += r
            infos.append(info)
        print("\ninference (ms per batch p50, clippings/s)")
        print(table([r for r in rows if r["section"] == "inference"], [
            ("model", "model", "s"), ("engine", "engine", "s"), ("threads", "thr", "d"), ("batch", "batch", "d"),
            ("ms_per_batch_p50", "ms/batch", ".2f"), ("ms_per_clipping", "ms/clip", ".3f"),
            ("clippings_per_s", "clip/s", ".1f")]))
    if "pipeline" in args.sections:
        from clippings.services.local.stack import TansuBroker

        with tempfile.TemporaryDirectory(prefix="bench-embedder-") as tmp:
            broker = None if args.bootstrap else TansuBroker(log_path=Path(tmp) / "tansu.log").start()
            try:
                for name in args.models:
                    rows += pipeline_section(args, name, args.bootstrap or broker.bootstrap)
            finally:
                if broker is not None:
                    broker.stop()
        print("\nservice batch (EmbedStep.process + acks): mean ms per batch in each step")
        print(table([r for r in rows if r["section"] == "pipeline"], [
            ("model", "model", "s"), ("threads", "thr", "d"), ("decode_workers", "pool", "d"), ("batch", "batch", "d"),
            ("parse_pool_other_ms", "parse+pool", ".1f"), ("decode_ms", "decode", ".1f"),
            ("preprocess_ms", "preproc", ".1f"), ("inference_ms", "infer", ".1f"),
            ("serialize_ms", "serialise", ".1f"), ("produce_ms", "produce", ".1f"),
            ("ms_per_batch_p50", "total p50", ".1f"), ("clippings_per_s", "clip/s", ".1f")]))
    summary = summarise(rows, ServiceSettings.model_fields["model"].default)
    print("\nsummary:", summary)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()} | {"models_info": infos}
    write_json(args.out, "embedder", config, rows, summary, machine_info, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
