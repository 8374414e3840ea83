"""Embedding with an exported model through ONNX Runtime.

The one code path from clipping to vector: `clippings eval`, the embedder service and the
benchmarks all go through `OnnxEmbedder`, so an offline score is a score of what is served.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from clippings.errors import ModelError
from clippings.runtime.manifest import MANIFEST_NAME, Manifest
from clippings.runtime.preprocess import make_tokenizer, prepare_image, stack_images
from clippings.runtime.text_evidence import with_text_evidence

# Through the package, not this file's folder: an editable install and a wheel lay folders out differently.
SHIPPED_MODELS_DIR = Path(str(files("clippings").joinpath("assets", "models")))


def shipped_models() -> list[str]:
    return sorted(p.name for p in SHIPPED_MODELS_DIR.iterdir() if (p / MANIFEST_NAME).is_file())


def cpu_budget() -> int:
    """CPUs this process may use: its CPU affinity, capped by a cgroup v2 CPU quota (a
    Kubernetes CPU limit), rounded up."""
    n = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return n
    if quota == "max":
        return n
    return max(1, min(n, -(-int(quota) // int(period))))


def resolve_model(name_or_path: str | os.PathLike) -> Path:
    """A shipped model's name ("jp-firms", "news") or the path of an exported model folder."""
    path = Path(name_or_path)
    if (path / MANIFEST_NAME).is_file():
        return path
    shipped = SHIPPED_MODELS_DIR / str(name_or_path)
    if (shipped / MANIFEST_NAME).is_file():
        return shipped
    raise ModelError(
        f"no model {str(name_or_path)!r}: give a shipped name ({', '.join(shipped_models()) or 'none'}) "
        "or the folder written by `clippings export`"
    )


def l2_normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def pool(
    image_emb: np.ndarray,  # (N, D), unit rows
    text_emb: np.ndarray,  # (N, D), unit rows
    image_present: np.ndarray,  # (N,) 0/1
    text_present: np.ndarray,  # (N,) 0/1
    image_weight: float,
    pooling: str = "sum",
) -> np.ndarray:
    """"sum": normalize(w * img + (1 - w) * txt), the paper's pooling; "concat": normalize of
    sqrt(w) * img beside sqrt(1 - w) * txt, (N, 2D). Either way a missing modality drops out
    instead of adding noise.

    Why concat: the sum's cosine of two clippings mixes in how one's photo lies to the other's
    caption, and divides by a norm that depends on how well each clipping's own two towers agree;
    side by side, two complete clippings' cosine is exactly w x photo cosine + (1 - w) x caption
    cosine (docs/model.md, "Pooling"). A clipping with one modality has a unit vector in its half
    alone, so against a complete one its cosine is sqrt(w) or sqrt(1 - w) x its tower's cosine:
    the manifest's cuts for missing modalities (runtime/modality.py) are tuned for that."""
    if pooling == "concat":
        wi = (np.sqrt(image_weight) * image_present)[:, None]
        wt = (np.sqrt(1.0 - image_weight) * text_present)[:, None]
        return l2_normalize(np.concatenate([wi * image_emb, wt * text_emb], axis=1)).astype(np.float32)
    if pooling != "sum":
        raise ModelError(f"unknown pooling {pooling!r} (sum or concat)")
    wi = (image_weight * image_present)[:, None]
    wt = ((1.0 - image_weight) * text_present)[:, None]
    return l2_normalize(wi * image_emb + wt * text_emb).astype(np.float32)


def served_vectors(pooled: np.ndarray, texts: Sequence[str], manifest: Manifest) -> np.ndarray:
    """Pooled vectors -> served ones: with the caption's character pairs when the manifest has
    text evidence (runtime/text_evidence.py), else unchanged."""
    evidence = manifest.text_evidence
    if evidence is None:
        return pooled
    return with_text_evidence(pooled, texts, evidence["weight"], evidence["dim"])


OUTPUTS = ("image_embedding", "text_embedding")


def default_providers() -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


class OnnxEmbedder:
    """One ONNX Runtime session over an exported model folder."""

    def __init__(
        self,
        model: str | os.PathLike,
        variant: str | None = None,  # None: the one the manifest serves (Manifest.variant)
        providers: Sequence[str] | None = None,
        intra_op_threads: int = 0,
        manifest: Manifest | None = None,  # not yet on disk: the export runs its graphs before writing it
        io_binding: bool | None = None,  # None: on CUDA (run_bound)
    ):
        import onnxruntime as ort

        self.model_dir = Path(model) if manifest is not None else resolve_model(model)
        self.manifest = manifest if manifest is not None else Manifest.load(self.model_dir)
        variant = variant or self.manifest.variant
        if variant not in self.manifest.files:
            raise ModelError(
                f"{self.model_dir}: no {variant!r} variant (has {', '.join(self.manifest.files)})"
            )
        self.variant = variant
        self.preprocess = self.manifest.preprocess
        self.tokenizer = make_tokenizer(self.preprocess, self.model_dir)
        opts = ort.SessionOptions()
        # ONNX Runtime's 0 means every core of the machine, not the pod's share of it.
        opts.intra_op_num_threads = intra_op_threads or cpu_budget()
        # Spinning threads burn a core each between batches, which a stream mostly is:
        # idle threads sleep instead (docs/performance.md, "Optimisations").
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        asked = list(providers or default_providers())
        self.session = ort.InferenceSession(
            str(self.model_dir / self.manifest.files[variant]), sess_options=opts, providers=asked)
        # ONNX Runtime only warns when it cannot start a provider asked for (not in this build,
        # or its CUDA libraries missing) and runs on the CPU instead: a GPU node would serve at
        # a fraction of its throughput while looking healthy.
        running = self.session.get_providers()[0]
        if running not in asked:
            raise ModelError(
                f"onnxruntime could not start {' or '.join(asked)} (this onnxruntime has "
                f"{', '.join(ort.get_available_providers())}) and would run on {running}: install the GPU "
                f"build (pip install 'clippings[gpu]') where a GPU and its CUDA libraries are, or ask for "
                f"CPUExecutionProvider too")
        self.io_binding = running == "CUDAExecutionProvider" if io_binding is None else io_binding

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def dim(self) -> int:
        return self.manifest.embedding_dim

    @property
    def image_weight(self) -> float:
        return self.manifest.image_weight

    def served(
        self, image_emb: np.ndarray, text_emb: np.ndarray, image_present: np.ndarray, text_present: np.ndarray,
        texts: Sequence[str], image_weight: float | None = None,
    ) -> np.ndarray:
        """Tower outputs -> the vectors the embedder publishes: pooled at the manifest's image
        weight (or image_weight), with the caption's character pairs when the manifest has text
        evidence."""
        w = self.image_weight if image_weight is None else image_weight
        pooled = pool(image_emb, text_emb, image_present, text_present, w, self.manifest.pooling)
        return served_vectors(pooled, texts, self.manifest)

    def run(self, pixels: np.ndarray, text_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Preprocessed arrays -> (image_emb, text_emb), each (N, D) with unit rows."""
        if self.io_binding:
            return self.run_bound(pixels, text_ids)
        img, txt = self.session.run(list(OUTPUTS), {"pixels": pixels, "text_ids": text_ids})
        return img, txt

    def run_bound(self, pixels: np.ndarray, text_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """run() through an I/O binding, as ONNX Runtime advises for CUDA: the host inputs are
        bound as they are, the outputs allocated on the session's device and copied back in one
        step after the run. The same vectors as run(); whether it is faster on a GPU is for
        bench/gpu.sh to say."""
        io = self.session.io_binding()
        io.bind_cpu_input("pixels", np.ascontiguousarray(pixels))
        io.bind_cpu_input("text_ids", np.ascontiguousarray(text_ids))
        for name in OUTPUTS:
            io.bind_output(name)  # allocated on the session's device
        self.session.run_with_iobinding(io)
        img, txt = io.copy_outputs_to_cpu()
        return img, txt

    def prepare(
        self, images: Sequence[Image.Image | None], texts: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Clippings -> pixels, image_present, text_ids, text_present: one batch for run()."""
        return self.assemble([None if img is None else prepare_image(img, self.preprocess) for img in images], texts)

    def assemble(
        self, prepared: Sequence[np.ndarray | None], texts: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """prepare() for images already through prepare_image (the embedder service decodes and
        preprocesses them in a pool): the one batch assembly that eval, export and serving share."""
        pixels, image_present = stack_images(prepared, self.preprocess)  # (N, C, H, W), (N,)
        text_ids, text_present = self.tokenizer(texts)  # (N, L), (N,)
        return pixels, image_present, text_ids, text_present

    def embed_towers(
        self, images: Sequence[Image.Image | None], texts: Sequence[str], batch_size: int = 64
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """-> image_emb, text_emb, image_present, text_present for any number of clippings."""
        outs = []
        for s in range(0, len(texts), batch_size):
            pixels, ip, ids, tp = self.prepare(images[s : s + batch_size], texts[s : s + batch_size])
            img, txt = self.run(pixels, ids)
            outs.append((img, txt, ip, tp))
        if not outs:
            d = self.dim
            return np.zeros((0, d), np.float32), np.zeros((0, d), np.float32), np.zeros(0), np.zeros(0)
        return tuple(np.concatenate(parts) for parts in zip(*outs))  # type: ignore[return-value]

    def embed(
        self,
        images: Sequence[Image.Image | None],
        texts: Sequence[str],
        image_weight: float | None = None,
        batch_size: int = 64,
    ) -> np.ndarray:
        """Clippings -> served (N, served_dim) float32 unit vectors (see served)."""
        return self.served(*self.embed_towers(images, texts, batch_size), texts, image_weight)
