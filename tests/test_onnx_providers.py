"""The embedder's GPU path on whatever machine runs the tests: a provider list that allows the
CPU falls back to it with the same vectors; one that asks for CUDA alone runs on CUDA where a
usable GPU is, and refuses to start anywhere else instead of serving from the CPU; the I/O
binding used on CUDA gives the vectors of a plain run (on this machine, through the CPU)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest

from clippings.data.dataset import load_dataset
from clippings.errors import ModelError
from clippings.runtime.onnx_model import OnnxEmbedder
from clippings.runtime.preprocess import load_image

CPU = ["CPUExecutionProvider"]


def _cuda_usable() -> bool:
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False
    try:
        OnnxEmbedder("news", providers=["CUDAExecutionProvider"], intra_op_threads=1)
    except ModelError:  # the build has it, the machine cannot run it
        return False
    return True


@pytest.fixture(scope="module")
def batch(sample_feed):
    ds = load_dataset(sample_feed)
    records = ds.records[:12]
    images = [load_image(r.image) if r.image else None for r in records]
    texts = [r.text or "" for r in records]
    return images, texts


def test_cuda_then_cpu_serves_the_cpu_vectors_where_cuda_is_not(batch):
    on_cpu = OnnxEmbedder("news", providers=CPU, intra_op_threads=1)
    either = OnnxEmbedder("news", providers=["CUDAExecutionProvider", *CPU], intra_op_threads=1)
    cuda = _cuda_usable()
    assert either.session.get_providers()[0] == ("CUDAExecutionProvider" if cuda else "CPUExecutionProvider")
    assert either.io_binding is cuda and on_cpu.io_binding is False
    a, b = on_cpu.embed(*batch), either.embed(*batch)
    assert a.shape == b.shape == (len(batch[1]), a.shape[1])
    # fp32 arithmetic on another device differs in the last bits; on the CPU not at all.
    assert np.min(np.sum(a * b, axis=1)) > (0.999 if cuda else 1 - 1e-6)


def test_cuda_alone_refuses_to_start_without_a_usable_gpu():
    if _cuda_usable():
        model = OnnxEmbedder("news", providers=["CUDAExecutionProvider"], intra_op_threads=1)
        assert model.session.get_providers()[0] == "CUDAExecutionProvider" and model.io_binding
        return
    with pytest.raises(ModelError) as err:
        OnnxEmbedder("news", providers=["CUDAExecutionProvider"], intra_op_threads=1)
    message = str(err.value)
    assert "could not start CUDAExecutionProvider" in message and "clippings[gpu]" in message
    assert ", ".join(ort.get_available_providers()) in message


def test_the_io_binding_gives_the_vectors_of_a_plain_run(batch):
    plain = OnnxEmbedder("news", providers=CPU, intra_op_threads=1)
    bound = OnnxEmbedder("news", providers=CPU, intra_op_threads=1, io_binding=True)
    pixels, _, ids, _ = plain.prepare(*batch)
    for a, b in zip(plain.run(pixels, ids), bound.run(pixels, ids)):
        assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    # Sliced (non-contiguous) inputs, as a batch cut from a larger array is.
    wide = np.concatenate([ids, ids], axis=1)[:, ::2]
    np.testing.assert_array_equal(plain.run(pixels, np.ascontiguousarray(wide))[1], bound.run(pixels, wide)[1])


def test_an_embedder_asked_for_a_provider_it_cannot_start_exits_naming_it(tmp_path):
    """The GPU overlay asks for CUDA alone so that a node without a usable GPU fails loudly; a
    provider that no onnxruntime build has stands in for it on every machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPPINGS_")} | {
        "CLIPPINGS_ONNX_PROVIDERS": '["NoSuchExecutionProvider"]', "CLIPPINGS_METRICS_PORT": "0"}
    done = subprocess.run([sys.executable, "-m", "clippings.services", "embedder"], capture_output=True, text=True,
                          timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("clippings embedder: error: onnxruntime could not start NoSuchExecutionProvider"), last
