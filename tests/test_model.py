"""The small bi-encoder: shapes, unit norms, padding invariance, and golden outputs."""

from pathlib import Path

import numpy as np
import pytest
import torch

from clippings.models.config import ModelConfig, preset
from clippings.models.factory import create_model, load_checkpoint, save_checkpoint
from clippings.runtime.preprocess import tokenize_text, tokenize_texts

GOLDEN = Path(__file__).parent / "golden"


def fixed_inputs(cfg: ModelConfig):
    g = torch.Generator().manual_seed(1234)
    pre = cfg.preprocess
    pixels = torch.rand(3, pre.channels, pre.image_height, pre.image_width, generator=g) * 2 - 1
    ids = torch.from_numpy(tokenize_texts(["株式会社山田製作所", "Toyo Spinning Co., Ltd.", ""], pre)[0])
    return pixels, ids


def seeded_model(name: str):
    torch.manual_seed(0)
    return create_model(preset(name)).eval()


@pytest.mark.parametrize("name", ["small-crops", "small-photos"])
def test_outputs_are_unit_vectors_of_equal_size(name):
    model = seeded_model(name)
    img, txt = model(*fixed_inputs(model.cfg))
    assert img.shape == txt.shape == (3, model.cfg.embed_dim)
    assert torch.allclose(img.norm(dim=1), torch.ones(3), atol=1e-5)


def test_text_padding_does_not_change_the_embedding():
    model = seeded_model("small-crops")
    pre = model.cfg.preprocess
    ids = torch.from_numpy(tokenize_text("山田製作所", pre))[None]
    longer = torch.cat([ids, torch.zeros(1, 8, dtype=torch.long)], dim=1)
    with torch.no_grad():
        a, b = model.encode_text(ids), model.encode_text(longer[:, : pre.text_max_len])
    assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("name", ["small-crops", "small-photos"])
def test_golden_outputs(name):
    """Fixed seed, fixed inputs, stored outputs: any change to the architecture or the
    preprocessing shows here. Regenerate with `python tests/golden/make_golden.py` when
    the change is deliberate."""
    model = seeded_model(name)
    with torch.no_grad():
        img, txt = model(*fixed_inputs(model.cfg))
    ref = np.load(GOLDEN / f"{name}.npz")
    assert np.allclose(img.numpy(), ref["image"], atol=1e-5)
    assert np.allclose(txt.numpy(), ref["text"], atol=1e-5)


def test_checkpoint_round_trip(tmp_path):
    model = seeded_model("small-crops")
    save_checkpoint(tmp_path / "c.pt", model, model.cfg, epoch=3)
    loaded, cfg, ckpt = load_checkpoint(tmp_path / "c.pt")
    assert cfg == model.cfg and ckpt["epoch"] == 3
    inputs = fixed_inputs(cfg)
    with torch.no_grad():
        assert torch.equal(model(*inputs)[0], loaded(*inputs)[0])


def test_loading_a_non_checkpoint_is_a_clear_error(tmp_path):
    from clippings.errors import ModelError

    with pytest.raises(ModelError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="not a clippings checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


@pytest.mark.parametrize("w", [0.0, 0.4, 0.5, 1.0])
def test_torch_pool_mirrors_the_served_pool(w):
    """Training pools with the torch mirror, serving with the runtime's NumPy pool: the same
    towers give the same vectors, with both modalities, one missing, and none."""
    from clippings.models.biencoder import pool as torch_pool
    from clippings.runtime.onnx_model import l2_normalize, pool

    rng = np.random.default_rng(3)
    img = l2_normalize(rng.standard_normal((4, 16))).astype(np.float32)  # (N, D)
    txt = l2_normalize(rng.standard_normal((4, 16))).astype(np.float32)
    ip = np.array([1, 0, 1, 0], np.float32)  # rows: both, text only, image only, neither
    tp = np.array([1, 1, 0, 0], np.float32)
    served = pool(img, txt, ip, tp, w)
    trained = torch_pool(torch.from_numpy(img), torch.from_numpy(txt), w, torch.from_numpy(ip), torch.from_numpy(tp))
    assert np.allclose(trained.numpy(), served, atol=1e-6)
    assert np.allclose(served[3], 0.0)  # nothing to pool: a zero vector, not NaN
    every = torch_pool(torch.from_numpy(img), torch.from_numpy(txt), w)  # training's exemplars: all present
    assert np.allclose(every.numpy(), pool(img, txt, np.ones(4), np.ones(4), w), atol=1e-6)


def assert_graph_computes_the_same(model, captions: list[str], path: Path) -> None:
    """The model exported to ONNX gives its PyTorch outputs on random photos and these captions."""
    import onnxruntime as ort

    pixels = torch.rand(len(captions), model.cfg.preprocess.channels, 64, 64)
    ids = torch.from_numpy(tokenize_texts(captions, model.cfg.preprocess)[0])
    with torch.no_grad():
        img, txt = model(pixels, ids)
    torch.onnx.export(model, (pixels, ids), path, input_names=["pixels", "text_ids"], opset_version=17, dynamo=False)
    o_img, o_txt = ort.InferenceSession(str(path)).run(None, {"pixels": pixels.numpy(), "text_ids": ids.numpy()})
    assert np.allclose(o_img, img.numpy(), atol=1e-5) and np.allclose(o_txt, txt.numpy(), atol=1e-5)


def test_hybrid_text_tower_reads_the_caption_in_order_and_as_a_bag(tmp_path):
    """hybrid-photos: its convolution sees exactly the characters the in-order tokenizer gives
    for the caption's first conv_len characters (the n-gram ids after them are masked), its
    bag every n-gram; so a change past the window moves the bag only, a swap inside it moves
    the convolution too. The exported graph computes the same."""
    import dataclasses

    model = seeded_model("hybrid-photos")
    pre, text = model.cfg.preprocess, model.text
    caption = "Flood waters rise in the valley. " + "Residents were moved to the school gym overnight. " * 4
    ids = torch.from_numpy(tokenize_texts([caption], pre)[0])
    head = ids[:, : text.conv_len]
    seen = torch.where(head < text.unigrams, head, torch.zeros_like(head))
    in_order = dataclasses.replace(pre, tokenizer="chars", text_max_len=text.conv_len)
    assert torch.equal(seen[0], torch.from_numpy(tokenize_text(caption, in_order)))

    def parts(t: str):
        x = torch.from_numpy(tokenize_texts([t], pre)[0])
        h = x[:, : text.conv_len]
        with torch.no_grad():
            return text.bag(x), text.conv(torch.where(h < text.unigrams, h, torch.zeros_like(h)))

    bag, conv = parts(caption)
    late_bag, late_conv = parts(caption[:-10] + "gymnasium.")  # past the window
    swap_bag, swap_conv = parts("Flood waters rise in the vallye. " + caption[33:])  # inside it
    assert torch.allclose(conv, late_conv) and not torch.allclose(bag, late_bag)
    assert not torch.allclose(conv, swap_conv)

    assert_graph_computes_the_same(model, [caption, "short"], tmp_path / "hybrid.onnx")


def test_lede_bag_keeps_a_caption_cut_from_the_end_near_its_full_text(tmp_path):
    """lede-photos (and lede-grid-trunk, what news ships) weighs each n-gram's row by exp(-its
    position in characters / 480): with the shipped news model's table in both (the decay adds
    no weight), a reprint cut after its lede stays nearer its full caption, and a sibling story
    that shares only the tail moves away, than under the same bag where every n-gram counts
    alike (hybrid-photos'). The exported graph computes the same."""
    from clippings.models.reader import load_exported_weights
    from clippings.runtime.onnx_model import resolve_model

    import dataclasses

    lede = seeded_model("lede-grid-trunk")  # the shipped news model's preset: its weights load
    flat = create_model(dataclasses.replace(lede.cfg, text=dataclasses.replace(lede.cfg.text, decay=0.0))).eval()
    for model in (lede, flat):
        load_exported_weights(model, resolve_model("news"))
    pre = lede.cfg.preprocess
    tail = ("The river crested at four feet above flood stage early Wednesday, the highest level since 1975. "
            "Several roads into town were under water. Heavy rain fell across the region for four straight days. "
            "About 300 homes were evacuated, the mayor said. Shelters opened at two schools and the county fairgrounds.")
    full = "GRAND JUNCTION, Colo. -- Gov. Heather Ingersoll tours a flooded neighborhood by boat on Wednesday. " + tail
    cut = full[: full.index("The river")]
    sibling = "GRAND JUNCTION, Colo. -- Volunteers fill sandbags outside the county fairgrounds on Tuesday. " + tail

    def bag_cos(model, a: str, b: str) -> float:
        x = torch.from_numpy(tokenize_texts([a, b], pre)[0])
        with torch.no_grad():
            v = torch.nn.functional.normalize(model.text.bag(x), dim=-1)
        return float(v[0] @ v[1])

    assert bag_cos(lede, full, cut) > bag_cos(flat, full, cut) + 0.01
    assert bag_cos(lede, full, sibling) < bag_cos(flat, full, sibling) - 0.005

    ids = torch.from_numpy(tokenize_texts(["ab cd"], pre)[0])
    pos = lede.text.bag.positions(ids)[0]
    # 5 characters, 4 pairs, 2 words (6 characters a word), then padding
    assert pos[:11].tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 0, 6] and not pos[11:].any()
    rows = lede.text.bag.table.weight[ids[0, :11]]
    with torch.no_grad():
        assert torch.allclose(lede.text.bag(ids)[0], (rows * torch.exp(-pos[:11] / 480.0)[:, None]).sum(0), atol=1e-6)

    assert_graph_computes_the_same(lede, [full, "short"], tmp_path / "lede.onnx")


@pytest.mark.timeout(120)
def test_lede_graph_converts_to_fp16(tmp_path):
    """The export's fp16 step keeps a cumulative sum or a cast of a weight in fp32 with casts
    around it, and its converter looped forever on those; the decay's positions use neither."""
    import onnxruntime as ort

    from clippings.export.convert import _fp16

    model = seeded_model("lede-photos")
    two = torch.from_numpy(tokenize_texts(["Flood waters rise in the valley. " * 8, "short"], model.cfg.preprocess)[0])
    pixels = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        _, txt = model(pixels, two)
    src, dst = tmp_path / "lede.onnx", tmp_path / "lede.fp16.onnx"
    torch.onnx.export(model, (pixels, two), src, input_names=["pixels", "text_ids"],
                      output_names=["image_embedding", "text_embedding"], opset_version=17, dynamo=False)
    _fp16(src, dst)
    _, o_txt = ort.InferenceSession(str(dst)).run(None, {"pixels": pixels.numpy(), "text_ids": two.numpy()})
    assert np.sum(o_txt * txt.numpy(), axis=1).min() > 0.999


def test_the_grid_photo_tower_sees_where_things_are_in_the_frame(tmp_path):
    """lede-grid-photos keeps the mean of each region of a 4 x 4 grid beside the global mean and
    max of the photo tower's last map: a photo whose quadrants are swapped (the same things
    elsewhere, as in a sibling story's photo of the same place) moves away from the original,
    where global pooling alone barely sees the change. The exported graph computes the same."""
    torch.manual_seed(1)
    photo = torch.rand(1, 3, 64, 64)
    swapped = torch.cat([photo[:, :, 32:], photo[:, :, :32]], dim=2)  # top and bottom halves swapped
    swapped = torch.cat([swapped[:, :, :, 32:], swapped[:, :, :, :32]], dim=3)  # and left and right

    def photo_cos(name: str) -> float:
        model = seeded_model(name)
        with torch.no_grad():
            v = model.encode_image(torch.cat([photo, swapped]))
        return float(v[0] @ v[1])

    pooled, grid = 1 - photo_cos("lede-photos"), 1 - photo_cos("lede-grid-photos")  # cosine distances
    assert pooled < 0.01 and grid > 5 * pooled, (pooled, grid)
    assert_graph_computes_the_same(seeded_model("lede-grid-photos"), ["Flood waters rise.", "short"],
                                   tmp_path / "grid.onnx")
