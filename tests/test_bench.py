"""Each bench script runs at its smallest size and writes JSON of the documented shape.

Smoke tests only: a bench that breaks when the services change fails here; how fast anything
is stays in docs/performance.md, never in an assertion.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench.common import SIMD_FLAGS

REPO = Path(__file__).resolve().parent.parent
TOP_KEYS = {"bench", "schema", "command", "started_at", "seconds", "machine", "config", "results", "summary"}


def run_bench(name: str, out: Path, *extra: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", f"bench.{name}", "--quick", "--out", str(out), *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"bench.{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    data = json.loads(out.read_text())
    assert TOP_KEYS <= set(data), set(data) ^ TOP_KEYS
    assert data["bench"] == name and data["schema"] == 1
    assert data["command"].startswith(f"python -m bench.{name} ")
    assert data["machine"]["logical_cpus"] >= 1 and data["machine"]["cpu_model"]
    positive(data["machine"]["speed_probe"], "matmul_512_ms", "python_loop_ms")
    cpu = data["machine"]["cpu_id"]  # which host's CPU: the VM names them all alike
    assert cpu["cpu_family"] >= 1 and set(cpu["simd"]) <= set(SIMD_FLAGS), cpu
    assert data["results"], "no results"
    return data


def positive(row: dict, *keys: str) -> None:
    for k in keys:
        assert isinstance(row[k], (int, float)) and math.isfinite(row[k]) and row[k] > 0, (k, row.get(k))


def test_embedder_bench(tmp_path, kafka_bootstrap):
    data = run_bench("embedder", tmp_path / "embedder.json", "--bootstrap", kafka_bootstrap)
    inference = [r for r in data["results"] if r["section"] == "inference"]
    engines = {r["engine"] for r in inference}
    assert {"onnx-fp32", "onnx-int8", "torch-eager"} <= engines
    assert {r["batch"] for r in inference} == {1, 4}
    for r in inference:
        positive(r, "ms_per_batch_p50", "ms_per_clipping", "clippings_per_s", "reps")
    info = data["config"]["models_info"][0]
    assert info["torch_source"] and -1.0 <= info["torch_vs_onnx_fp32_min_cosine"] <= 1.0 + 1e-6
    (pipeline,) = [r for r in data["results"] if r["section"] == "pipeline"]
    positive(pipeline, "clippings_per_s", "inference_ms", "decode_ms", "produce_ms")
    shares = sum(pipeline[f"{s}_share"] for s in ("decode", "preprocess", "inference", "serialize", "produce",
                                                     "parse_pool_other"))
    assert shares == pytest.approx(1.0, abs=1e-6)
    summary = data["summary"]["threads_1"]
    positive(summary, "torch_bs1_ms_per_clipping", "speedup_best_onnx_vs_torch_bs1")


def test_linker_bench(tmp_path, redis_url):
    data = run_bench("linker", tmp_path / "linker.json", "--redis", redis_url)
    index = [r for r in data["results"] if r["section"] == "index"]
    assert {r["index"] for r in index} == {"numpy", "flat", "ivf", "hnsw"}
    for r in index:
        positive(r, "search1_p50_ms", "search1_p99_ms", "batch_p50_ms", "decisions_per_s", "bytes_per_vector")
        assert 0.0 <= r["link_recall"] <= 1.0 and 0.0 <= r["recall_at_10"] <= 1.0
    (flat,) = [r for r in index if r["index"] == "flat"]
    assert flat["mode"] == "range" and flat["link_recall"] == 1.0  # exact search finds every link
    (pipeline,) = [r for r in data["results"] if r["section"] == "pipeline"]
    positive(pipeline, "parse_ms", "redis_read_ms", "decide_ms", "redis_write_ms", "decisions_per_s")
    (memory,) = [r for r in data["results"] if r["section"] == "state_memory"]
    positive(memory, "bytes_per_clipping")
    assert set(data["summary"]["at_largest"]) == {"numpy", "flat", "ivf", "hnsw"}


def test_linker_reprints_bench(tmp_path):
    data = run_bench("linker_reprints", tmp_path / "reprints.json")
    assert [r["copies"] for r in data["results"]] == [2, 8]
    for r in data["results"]:
        positive(r, "ms_per_decision", "decisions_timed")
        assert r["entities"] == r["stories"]  # identical copies: each story one entity, no two joined


def test_linker_growth_bench(tmp_path):
    """Grown from empty past the policy's size: once the builds in progress are done (on a busy
    machine they fall behind the last checkpoint), the block searches an IVF index."""
    data = run_bench("linker_growth", tmp_path / "growth.json")
    last = data["results"][-1]
    assert last["vectors"] >= data["config"]["size"]
    after = data["summary"]["after_growth"]
    assert after["approximate"] is True and after["nlist"] > 0 and 0.0 <= after["link_recall"] <= 1.0
    positive(last, "batch_decisions_per_s", "decide1_p50_ms", "decide1_p99_ms")
    assert data["summary"]["final"]["exact_pairs"] > 0


def test_e2e_bench(tmp_path, redis_url):
    data = run_bench("e2e", tmp_path / "e2e.json", "--redis", redis_url)
    capacity, paced = data["results"]
    assert capacity["phase"] == "capacity" and capacity["events"] == 60
    positive(capacity, "linked_per_s", "cpu_ms_per_clipping_embedder-0", "cpu_ms_per_clipping_linker-0")
    assert paced["phase"] == "paced-20" and paced["all_linked"] and paced["linked"] == paced["events"]
    positive(paced, "latency_p50_s", "latency_p99_s")
    assert paced["latency_p50_s"] <= paced["latency_p99_s"]
    assert isinstance(data["summary"]["meets_target"], bool)


def test_review_labels_bench(tmp_path, redis_url, sample_feed):
    """Stack, review page, a reviewer through the page, labels, fine-tuning, recalibration, eval
    before and after."""
    data = run_bench("review_labels", tmp_path / "review.json", "--dataset", str(sample_feed),
                     "--workdir", str(tmp_path / "work"))
    summary = data["summary"]
    assert summary["linked"] == 44 and sum(summary["actions"].values()) == 10
    assert summary["applied_by_linker"]["recorded"] == 10  # the linker recorded every correction
    assert summary["labels"]["corrections"] == 10
    assert set(summary["labels"]["splits"]) == {"train", "val", "test"}  # something to train, choose and score on
    assert [r["model"] for r in data["results"]] == ["news", "fine-tuned on the labels", "recalibrated on the labels"]
    recalibrated = json.loads((tmp_path / "work" / "recalibrated" / "manifest.json").read_text())
    assert recalibrated["calibrated_on"] == [str(tmp_path / "work" / "labels")]
    for row in data["results"]:
        assert 0.0 <= row["clippings"] <= 1.0 and row["n"] == summary["labels"]["splits"]["test"]


def test_review_labels_resplit_gives_every_split_an_entity(tmp_path):
    """Ten reviews name about five entities; a 70/15/15 hash split often leaves val or test empty."""
    from bench.review_labels import resplit
    from clippings.review.labels import split_of

    entities = [e for e in (f"e{i}" for i in range(40)) if split_of(e) == "train"][:5]
    records = [{"id": f"{e}-{k}", "image": None, "text": "x", "entity": e, "split": "train"}
               for e in entities for k in range(2)]
    (tmp_path / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert resplit(tmp_path) == {"train": 6, "val": 2, "test": 2}
    after = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    by_entity = {}
    for r in after:
        by_entity.setdefault(r["entity"], set()).add(r["split"])
    assert all(len(s) == 1 for s in by_entity.values())  # an entity's clippings stay in one split
    assert resplit(tmp_path) is None  # every split has an entity now: left as it is


def test_capacity_model_reads_the_committed_figures(tmp_path):
    out = tmp_path / "capacity.json"
    proc = subprocess.run([sys.executable, "-m", "bench.capacity", "--feed", "200", "--index", "1e6", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["bench"] == "capacity" and data["command"].startswith("python -m bench.capacity ")
    embedders = [r for r in data["results"] if "embedder_replicas" in r]
    linkers = [r for r in data["results"] if "linker_replicas" in r]
    assert embedders and linkers
    for r in embedders:
        assert r["embedder_replicas"] >= 1 and r["embedder_per_s_per_replica"] > 0
    for r in linkers:
        assert 1 <= r["linker_replicas"] <= r["linker_partitions"] and r["linker_ms_per_decision"] > 0


@pytest.mark.parametrize("name", ["embedder", "linker", "linker_growth", "linker_reprints", "e2e"])
def test_quick_runs_never_replace_the_committed_results(name):
    """`python -m bench.X --quick` writes a git-ignored file; only a full run (or --out) writes bench/results/X.json."""
    import importlib

    parse_args = importlib.import_module(f"bench.{name}").parse_args
    quick = parse_args(["--quick"]).out
    assert quick != REPO / "bench" / "results" / f"{name}.json"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(quick)], cwd=REPO)
    assert ignored.returncode == 0, f"{quick} is not ignored by git"
    assert parse_args([]).out == REPO / "bench" / "results" / f"{name}.json"
    assert parse_args(["--quick", "--out", "/tmp/x.json"]).out == Path("/tmp/x.json")
