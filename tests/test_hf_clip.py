"""The pretrained-CLIP path, on a tiny randomly initialised CLIPModel built here (never downloaded)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import CLIPConfig, CLIPModel

from clippings.data.synth.generate import generate
from clippings.runtime.onnx_model import OnnxEmbedder
from clippings.models.factory import load_checkpoint
from clippings.runtime.preprocess import load_image


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("hfclip")
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    corpus = ["the mayor opens a new bridge", "fire in the old mill", "a parade on main street"]
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "<|startoftext|>", "<|endoftext|>"]))
    bos, eos = tok.token_to_id("<|startoftext|>"), tok.token_to_id("<|endoftext|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>", special_tokens=[("<|startoftext|>", bos), ("<|endoftext|>", eos)])
    tok.save(str(root / "tokenizer.json"))
    cfg = CLIPConfig(
        text_config={"vocab_size": tok.get_vocab_size(), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 16, "eos_token_id": eos, "bos_token_id": bos,
                     "pad_token_id": 0},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(root)
    return root


def test_train_and_export_a_local_clip(tiny_clip_dir, tmp_path):
    data = generate("news", tmp_path / "train", task="train", entities=12, instances=2, seed=5, progress=False)
    held_out = generate("news", tmp_path / "val", task="dedup", entities=8, seed=6, progress=False)
    run, out = tmp_path / "run", tmp_path / "model"
    for args in (["train", "--hf-clip", str(tiny_clip_dir), "--data", str(data), "--out", str(run),
                  "--stage1-epochs", "1", "--stage2-epochs", "1", "--classes-per-batch", "4", "--batch-size", "8"],
                 ["export", str(run / "last.pt"), "--out", str(out), "--data", str(held_out)]):
        proc = subprocess.run([sys.executable, "-m", "clippings.cli", *args], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["family"] == "hf-clip" and manifest["embedding_dim"] == 16
    assert manifest["parity"]["fp32"]["min_cosine"] > 0.999
    assert (out / "tokenizer.json").is_file()

    # The served path (OnnxEmbedder + HF tokenizer) agrees with the PyTorch model.
    model, _, _ = load_checkpoint(run / "last.pt")
    records = [json.loads(x) for x in (data / "records.jsonl").read_text().splitlines()][:8]
    emb = OnnxEmbedder(out)
    pixels, _, ids, tp = emb.prepare([load_image(data / r["image"]) for r in records], [r["text"] for r in records])
    ort_img, ort_txt = emb.run(pixels, ids)
    with torch.no_grad():
        pt_img, pt_txt = model(torch.from_numpy(pixels), torch.from_numpy(ids))
    assert np.sum(ort_img * pt_img.numpy(), axis=1).min() > 0.999
    assert np.sum(ort_txt * pt_txt.numpy(), axis=1)[tp > 0].min() > 0.999


def test_a_folder_without_tokenizer_is_a_clear_error(tmp_path):
    from clippings.errors import ModelError
    from clippings.models.hf_clip import hf_clip_config

    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="tokenizer.json"):
        hf_clip_config(tmp_path)
