"""What `clippings train` is given, checked before any epoch runs: the training records, the
validation set, the preset the data calls for, and the device."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Sequence

from PIL import Image

from clippings.data.dataset import Record, load_dataset
from clippings.errors import ClippingsError

log = logging.getLogger(__name__)

HELD_OUT_SPLITS = ("corpus", "query", "val", "test")


def training_records(folders: Sequence[Path], val: Path | None, allow_held_out: bool = False) -> list[Record]:
    """The records of every --data folder; refuses held-out splits, which would leak the very
    records a model is scored on into its training."""
    records: list[Record] = []
    for folder in folders:
        ds = load_dataset(folder)
        held = Counter(r.split for r in ds.records if r.split in HELD_OUT_SPLITS)
        if held and not allow_held_out:
            counts = ", ".join(f"{n} {split}" for split, n in sorted(held.items()))
            raise ClippingsError(
                f"{folder} holds held-out records ({counts}); training reads split=train records only. "
                "Make a training set (`clippings synth ... --task train`), or pass --train-on-held-out "
                "if training on them is really meant")
        if held:
            log.warning("training on held-out records of %s (%s): scores on them are no longer held-out",
                        folder, dict(held))
        _check_same_ids_same_clippings(records, ds.records, folder)
        records += ds.records
    if val is not None:
        val_root = Path(val).resolve()
        if any(Path(f).resolve() == val_root for f in folders):
            raise ClippingsError(f"--val {val} is also in --data: the best checkpoint would be chosen on training records")
    return records


def _check_same_ids_same_clippings(earlier: Sequence[Record], added: Sequence[Record], folder: Path,
                                   sample: int = 64) -> None:
    """Two folders may hold the same clippings (one set's crops with simulated OCR text, and
    again with a real engine's: one entity either way); they may not give one record id to two
    different images. That is two generated sets made with the same seed and other options,
    whose entity ids name other stories: merged, each "entity" would hold two stories' photos
    (a photo tower trained on that learns nothing)."""
    by_id = {r.id: r for r in earlier}
    shared = [(by_id[r.id], r) for r in added if r.id in by_id][:sample]
    for a, b in shared:
        if (a.image is None) != (b.image is None) or (
                a.image is not None and a.image.read_bytes() != b.image.read_bytes()):
            raise ClippingsError(
                f"{folder} gives record id {b.id} (entity {b.entity}) to another image than "
                f"{a.origin or 'an earlier folder'}: "
                "two sets generated with the same --seed name other clippings with the same ids, and their "
                "entities would be merged; generate each with its own --seed")


def check_val_disjoint(train: Sequence[Record], val: Sequence[Record], val_path: Path) -> None:
    shared = {r.image for r in train if r.image} & {r.image for r in val if r.image}
    if shared:
        raise ClippingsError(f"--val {val_path} shares {len(shared)} image file(s) with --data, "
                             f"e.g. {sorted(shared)[0]}: it is also in --data, not held out")


def infer_preset(records: Sequence[Record], sample: int = 64) -> str:
    """small-crops for text crops (wide or tall strips), lede-grid-trunk (what news ships) for
    photos (near square).
    Reads only image headers, of an even sample of the records."""
    with_image = [r for r in records if r.image is not None]
    if not with_image:
        return "small-crops"  # text only: the crop preset has the shorter text window
    step = max(1, len(with_image) // sample)
    elongated = 0
    seen = with_image[::step][:sample]
    for r in seen:
        try:
            with Image.open(r.image) as im:
                w, h = im.size
        except Exception:  # noqa: BLE001 (a bad file is reported, with its line, when it is decoded)
            continue
        elongated += max(w, h) >= 2.5 * min(w, h)
    return "small-crops" if elongated * 2 >= len(seen) else "lede-grid-trunk"


def resolve_device(name: str) -> str:
    """"auto" -> cuda when PyTorch sees a GPU, else cpu; an unusable device is a clear error."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return name
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ClippingsError(f"--device {name}: this PyTorch sees no CUDA GPU "
                                 f"(torch {torch.__version__}; install a CUDA build on a GPU machine)")
        suffix = name.split(":", 1)[1] if ":" in name else "0"
        if not suffix.isdigit():
            raise ClippingsError(f"--device {name}: expected auto, cpu, cuda or cuda:N")
        index = int(suffix)
        if index >= torch.cuda.device_count():
            raise ClippingsError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
        return name
    raise ClippingsError(f"--device {name}: expected auto, cpu, cuda or cuda:N")
