"""synth -> train -> export -> eval, through the real CLI, on a tiny data set.

One tiny model is trained per test session (about half a minute on 2 cores) and reused.
"""

import copy
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from clippings.data.dataset import load_dataset
from clippings.data.synth.generate import generate
from clippings.runtime.manifest import Manifest
from clippings.runtime.onnx_model import OnnxEmbedder
from clippings.errors import ExportError
from clippings.models.factory import create_model, load_checkpoint
from clippings.runtime.preprocess import load_image, make_tokenizer, prepare_images


def clippings(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "clippings.cli", *args], capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"clippings {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def tiny_run(root, kind: str, val_task: str, entities: tuple[int, int], seed: int, preset: str, *export_flags: str):
    """A generated training and validation set of `kind`, one epoch of each stage with
    `preset`, exported to root/model."""
    generate(kind, root / "train", task="train", entities=entities[0], instances=3, seed=seed, progress=False)
    generate(kind, root / "val", task=val_task, entities=entities[1], seed=seed + 1, progress=False)
    clippings("train", "--data", str(root / "train"), "--val", str(root / "val"), "--out", str(root / "run"),
              "--preset", preset, "--stage1-epochs", "1", "--stage2-epochs", "1",
              "--classes-per-batch", "8", "--seed", "7")
    clippings("export", str(root / "run"), "--out", str(root / "model"), *export_flags)
    return root


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    generate("jp-firms", root / "train", task="train", entities=40, instances=3, seed=101, progress=False)
    generate("jp-firms", root / "val", task="link", entities=30, seed=102, progress=False)
    generate("news", root / "dedup", task="dedup", entities=30, seed=103, progress=False)
    run = root / "run"
    clippings("train", "--data", str(root / "train"), "--val", str(root / "val"), "--out", str(run),
              "--stage1-epochs", "1", "--stage2-epochs", "1", "--classes-per-batch", "8", "--seed", "7")
    clippings("export", str(run), "--out", str(root / "model"), "--fp16", "--int8")
    return root


def test_training_writes_checkpoints_and_history(tiny):
    run = tiny / "run"
    assert (run / "best.pt").is_file() and (run / "last.pt").is_file()
    history = json.loads((run / "history.json").read_text())
    assert [h["stage"] for h in history] == ["stage1", "stage2"]
    assert all(0.0 <= h["val_top1"] <= 1.0 for h in history)


def test_resume_continues_from_last_epoch(tiny, tmp_path):
    run = tmp_path / "run"
    args = ["train", "--data", str(tiny / "train"), "--val", str(tiny / "val"), "--out", str(run),
            "--stage1-epochs", "1", "--classes-per-batch", "8", "--seed", "7"]
    clippings(*args, "--stage2-epochs", "1")
    clippings(*args, "--stage2-epochs", "2", "--resume")
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]


def test_export_parity_on_real_inputs(tiny):
    """ONNX Runtime against PyTorch on real clippings: cosine > 0.999 for fp32."""
    model_dir = tiny / "model"
    manifest = Manifest.load(model_dir)
    assert set(manifest.files) == {"fp32", "fp16", "int8"}
    assert manifest.parity["fp32"]["min_cosine"] > 0.999
    model, _, _ = load_checkpoint(tiny / "run" / "best.pt")
    records = [json.loads(line) for line in (tiny / "val" / "records.jsonl").read_text().splitlines()]
    emb = OnnxEmbedder(model_dir)
    pixels, ip, ids, tp = emb.prepare([load_image(tiny / "val" / r["image"]) for r in records], [r["text"] for r in records])
    ort_img, ort_txt = emb.run(pixels, ids)
    with torch.no_grad():
        pt_img, pt_txt = model(torch.from_numpy(pixels), torch.from_numpy(ids))
    cos_img = np.sum(ort_img * pt_img.numpy(), axis=1)
    cos_txt = np.sum(ort_txt * pt_txt.numpy(), axis=1)[tp > 0]
    assert cos_img.min() > 0.999 and cos_txt.min() > 0.999
    # The dynamic batch axis: one clipping at a time gives the same vectors as the batch.
    one_img, _ = emb.run(pixels[:1], ids[:1])
    assert np.allclose(one_img, ort_img[:1], atol=1e-5)


def test_int8_variant_quantises_every_convolution_but_the_first_image_one(tiny):
    """Static QDQ: each Conv reads int8 weights through a DequantizeLinear, except the first
    image convolution (raw pixels), which stays fp32; the dynamic variant it replaced had none."""
    import onnx

    from clippings.export.int8 import first_image_convs

    firsts = first_image_convs(onnx.load(str(tiny / "model" / "model.onnx")))
    graph = onnx.load(str(tiny / "model" / "model.int8.onnx")).graph
    made_by = {out: node for node in graph.node for out in node.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    int8 = {n.name for n in convs if getattr(made_by.get(n.input[1]), "op_type", None) == "DequantizeLinear"}
    assert len(firsts) == 1 and firsts[0].startswith("/vision/")
    assert int8 == {n.name for n in convs} - set(firsts) and len(int8) >= 4
    assert Manifest.load(tiny / "model").parity["int8"]["min_cosine"] > 0.97


def test_int8_stores_an_ngram_bag_table_in_float16(tmp_path):
    """`quantize_int8` on a graph with an n-gram bag (the news preset, the shipped weights):
    the bag's table is read as float16 rows cast to float32, the character table through int8,
    and the similarity of no two of the sample feed's captions moves by more than 0.005 from
    the fp32 graph's (one int8 scale for the bag's table moved them by 0.011)."""
    import onnx
    from onnx import TensorProto

    from clippings.export.convert import _torch_export, pair_drift
    from clippings.export.int8 import bag_tables, embedding_tables, quantize_int8
    from clippings.models.config import preset
    from clippings.models.reader import load_exported_weights
    from clippings.runtime.onnx_model import resolve_model
    from clippings.runtime.preprocess import tokenize_texts
    from clippings.services.local.cli import SAMPLE_FEED
    import onnxruntime as ort

    cfg = preset("lede-grid-trunk")  # the shipped news model's preset: its weights load
    torch.manual_seed(0)
    model = create_model(cfg).eval()
    load_exported_weights(model, resolve_model("news"))
    _torch_export(model, cfg, tmp_path / "model.onnx")
    texts = [r.text for r in load_dataset(SAMPLE_FEED).records if r.text]
    ids = tokenize_texts(texts, cfg.preprocess)[0]
    pixels = np.zeros((len(texts), cfg.preprocess.channels, 64, 64), np.float32)
    quantize_int8(tmp_path / "model.onnx", tmp_path / "model.int8.onnx", pixels[::2], ids[::2])
    graph = onnx.load(str(tmp_path / "model.int8.onnx")).graph
    bag = bag_tables(onnx.load(str(tmp_path / "model.onnx")))
    gathers = {n.name: n for n in graph.node if n.op_type == "Gather"}
    dtypes = {t.name: t.data_type for t in graph.initializer}
    assert len(bag) == 1 and dtypes.get(gathers[bag[0]].input[0]) == TensorProto.FLOAT16
    assert any(n.op_type == "Cast" and n.input[0] == gathers[bag[0]].output[0] for n in graph.node)
    made_by = {out: node for node in graph.node for out in node.output}
    tables = embedding_tables(onnx.load(str(tmp_path / "model.onnx")))
    chars = [gathers[name] for name in tables if name not in bag]
    assert len(chars) == 1 and made_by[chars[0].input[0]].op_type == "DequantizeLinear"
    text = {}
    for name in ("model.onnx", "model.int8.onnx"):
        session = ort.InferenceSession(str(tmp_path / name), providers=["CPUExecutionProvider"])
        text[name] = session.run(["text_embedding"], {"pixels": pixels, "text_ids": ids})[0]
    assert pair_drift(text["model.int8.onnx"], text["model.onnx"]) <= 0.005


def test_export_gate_refuses_a_graph_that_is_not_the_model(tiny):
    """The parity gate passes the exported graphs against their checkpoint, and refuses them
    against another model of the same architecture, and against the same model nudged (its
    vectors about 2% off: past fp32's tolerance)."""
    from clippings.export.convert import check_parity

    model, cfg, _ = load_checkpoint(tiny / "run" / "best.pt")
    records = load_dataset(tiny / "val").records[:32]
    images, texts = [load_image(r.image) for r in records], [r.text for r in records]
    assert check_parity(model, tiny / "model", ["fp32", "int8"], images, texts)["fp32"]["min_cosine"] > 0.999
    torch.manual_seed(1)
    other = create_model(cfg).eval()
    for variant in ("fp32", "int8"):
        with pytest.raises(ExportError, match=f"{variant}: ONNX Runtime and PyTorch disagree"):
            check_parity(other, tiny / "model", [variant], images, texts)
    nudged = copy.deepcopy(model)
    noise = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for w in nudged.parameters():
            if w.numel() > 1:
                w += 0.1 * w.std() * torch.randn(w.shape, generator=noise)
    with pytest.raises(ExportError, match="fp32: ONNX Runtime and PyTorch disagree"):
        check_parity(nudged, tiny / "model", ["fp32"], images, texts)


def test_export_records_how_far_each_variant_moves_the_similarity_of_two_texts(tiny, caplog):
    """Each text vector near PyTorch's is not enough: the similarity of two texts is what a
    decision sees. The export records how far each graph moves it (per tower) and warns past a
    variant's tolerance: against a text tower nudged by 2% of its weights' spread the fp16 graph
    passes its min cosine gate (0.995) but not this one."""
    from clippings.export.convert import TEXT_PAIR_TOLERANCE, TOLERANCE, check_parity

    model, _, _ = load_checkpoint(tiny / "run" / "best.pt")
    records = load_dataset(tiny / "val").records[:32]
    images, texts = [load_image(r.image) for r in records], [r.text for r in records]
    parity = Manifest.load(tiny / "model").parity
    assert parity["fp32"]["text_pair_drift"] <= TEXT_PAIR_TOLERANCE["fp32"]
    assert parity["fp32"]["image_pair_drift"] <= TEXT_PAIR_TOLERANCE["fp32"]
    assert parity["int8"]["image_pair_drift"] > parity["fp16"]["image_pair_drift"] > 0.0
    nudged = copy.deepcopy(model)
    noise = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, w in nudged.named_parameters():
            if name.startswith("text.") and w.numel() > 1:
                w += 0.02 * w.std() * torch.randn(w.shape, generator=noise)
    caplog.clear()
    with caplog.at_level("WARNING", logger="clippings.export.convert"):
        moved = check_parity(nudged, tiny / "model", ["fp16"], images, texts)["fp16"]
    assert moved["min_cosine"] > TOLERANCE["fp16"] and moved["text_pair_drift"] > TEXT_PAIR_TOLERANCE["fp16"], moved
    assert "fp16: ONNX Runtime moves the similarity of two texts by up to" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="clippings.export.convert"):
        check_parity(model, tiny / "model", ["fp16"], images, texts)
    assert "moves the similarity" not in caplog.text


def test_export_writes_the_calibration_of_its_own_graph(tiny):
    """The manifest, written once at the end, carries what calibrate finds on the run's val
    data through the exported graph; a given threshold wins; no staging folder is left."""
    from clippings.export.calibrate import UNTUNED_THRESHOLDS, Decision, calibrate

    manifest = Manifest.load(tiny / "model")
    records = load_dataset(tiny / "val").records
    images, texts = [load_image(r.image) if r.image else None for r in records], [r.text for r in records]
    emb = OnnxEmbedder(tiny / "model", providers=["CPUExecutionProvider"])
    decision = calibrate(emb, records, images, texts, Decision(0.5, UNTUNED_THRESHOLDS))
    assert (manifest.image_weight, manifest.thresholds) == (decision.image_weight, decision.thresholds)
    # ... and the match probability fitted at that decision on the same clippings' candidate pairs.
    assert manifest.match_probability == decision.match_probability and decision.match_probability["pairs"] > 0
    forced = calibrate(emb, records, images, texts, Decision(0.5, UNTUNED_THRESHOLDS), link_threshold=0.42)
    assert forced.thresholds == {"link": 0.42, "dedup": decision.thresholds["dedup"]}
    assert not (tiny / ".model.partial").exists()


def test_exported_model_serves_the_training_preprocessing(tiny):
    from clippings.training.data import encode_records

    _, cfg, _ = load_checkpoint(tiny / "run" / "best.pt")
    emb = OnnxEmbedder(tiny / "model")
    assert emb.manifest.preprocess.to_dict() == cfg.preprocess.to_dict() and emb.preprocess == cfg.preprocess
    records = [r for r in load_dataset(tiny / "val").records if r.image is not None][:32]
    trained = encode_records(records, cfg.preprocess, make_tokenizer(cfg.preprocess, cfg.hf_path)).pixels.numpy()
    served, _ = prepare_images([load_image(r.image) for r in records], emb.preprocess)
    assert np.array_equal(served.astype(np.float16), trained)


def test_eval_json_link(tiny):
    out = clippings("eval", str(tiny / "val"), "--model", str(tiny / "model"), "--json")
    result = json.loads(out.stdout)
    assert result["task"] == "link" and result["n"] > 0
    assert set(result["metrics"]) == {"clippings", "embedding_only", "image_only", "text_only", "levenshtein", "jaccard"}
    assert all(0.0 <= m["top1"] <= 1.0 for m in result["metrics"].values())
    assert set(result["missing_modality"]) >= {"n", "threshold", "text_only", "image_only"}
    assert "threshold" in result["metrics"]["clippings"]


def test_eval_json_dedup(tiny):
    # A jp-firms model on news clippings scores badly, but the report must be complete.
    result = json.loads(clippings("eval", str(tiny / "dedup"), "--model", str(tiny / "model"), "--json").stdout)
    assert result["task"] == "dedup"
    for name in ("clippings", "image_only", "text_only", "levenshtein", "jaccard"):
        assert -1.0 <= result["metrics"][name]["ari"] <= 1.0 and "threshold" in result["metrics"][name]
    assert result["metrics"]["embedding_only"]["ari"] == result["metrics"]["clippings"]["ari"]


def test_cli_errors_are_clear(tiny, tmp_path):
    bad = clippings("eval", str(tmp_path), "--model", str(tiny / "model"), check=False)
    assert bad.returncode == 2 and "no records.jsonl" in bad.stderr
    bad = clippings("eval", str(tiny / "val"), "--model", "no-such-model", check=False)
    assert bad.returncode == 2 and "no model 'no-such-model'" in bad.stderr
    bad = clippings("train", "--data", str(tiny / "train"), "--out", str(tmp_path / "r"), "--resume", check=False)
    assert bad.returncode == 2 and "no " in bad.stderr and "last.pt" in bad.stderr
