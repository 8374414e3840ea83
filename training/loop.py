"""Two-stage CLIPPINGS training.

Stage 1: image-text contrastive pre-training (symmetric InfoNCE) aligns the two towers.
Stage 2: supervised contrastive loss on the pooled embedding, over hard-negative batches
re-mined every epoch. `mode="self-supervised"` stops after stage 1 and needs no labels.
"""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from clippings.errors import ClippingsError
from clippings.evaluation.linking import labels_of
from clippings.models.biencoder import pool
from clippings.models.config import ModelConfig
from clippings.models.factory import create_model, load_checkpoint, save_checkpoint
from clippings.models.losses import clip_loss, supcon_loss
from clippings.training.augment import augment
from clippings.training.data import EncodedRecords
from clippings.training.mining import HardNegativeSampler
from clippings.training.plots import plot_history
from clippings.training.validate import embed_encoded, validate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    out_dir: str
    data: tuple[str, ...] = ()  # training dataset folders, recorded for export verification
    val_data: str | None = None
    val_split: str | None = None  # only this split of val_data validated (a labels dataset: "val")
    mode: str = "supervised"  # or "self-supervised": stage 1 only
    stage1_epochs: int = 4
    stage2_epochs: int = 8
    batch_size: int = 128  # stage 1
    classes_per_batch: int = 32  # stage 2: k neighbour classes ...
    instances: int = 4  # ... x m instances each
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 50
    temperature: float = 0.1  # SupCon
    unimodal_weight: float = 0.5  # SupCon on each tower too, so a clipping missing one modality still links
    augment: bool = True  # print/scan noise on every batch (training/augment.py)
    photo_augment: bool = False  # and another reprint's crop, tilt, colour and resolution (augment.reprint)
    # Stage 2: the share of clippings pooled from one modality only (half without the image,
    # half without the text), so that a caption without its photo, or a photo without its
    # caption, lands near the full clipping and links at the one served threshold.
    modality_dropout: float = 0.0
    seed: int = 0
    threads: int = 0  # torch intra-op threads; 0: all cores
    device: str = "cpu"  # the records stay in host memory; each batch moves to the device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def drop_modality(image_present: torch.Tensor, text_present: torch.Tensor,
                  rate: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Of the clippings that have both, a share `rate` loses one at random (never both)."""
    both = (image_present > 0) & (text_present > 0)
    u = torch.rand(image_present.shape, device=image_present.device)
    no_image = both & (u < rate / 2)
    no_text = both & (u >= rate / 2) & (u < rate)
    return image_present * ~no_image, text_present * ~no_text


def exported_model_dir(path: Path) -> Path | None:
    """An exported model folder or a shipped model's name -> its folder; None for a checkpoint."""
    from clippings.runtime.onnx_model import SHIPPED_MODELS_DIR

    for candidate in (Path(path), SHIPPED_MODELS_DIR / str(path)):
        if (candidate / "manifest.json").is_file():
            return candidate
    return None


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay except on what the model names in no_weight_decay() (timm's convention):
    decoupled decay would shrink every row of a character table that a batch did not use,
    and so the characters training never saw."""
    skip = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    named = list(model.named_parameters())
    return [{"params": [p for n, p in named if n not in skip], "weight_decay": weight_decay},
            {"params": [p for n, p in named if n in skip], "weight_decay": 0.0}]


class Trainer:
    def __init__(self, model_cfg: ModelConfig, cfg: TrainConfig, train: EncodedRecords, val: EncodedRecords | None,
                 val_splits: list[str] | None):
        self.cfg = cfg
        self.model_cfg = model_cfg
        self.train_set = train
        self.val_set = val
        self.val_splits = val_splits
        self.out = Path(cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        seed_everything(cfg.seed)
        self.device = torch.device(cfg.device)
        self.model = create_model(model_cfg, pretrained=True).to(self.device)
        self.opt = torch.optim.AdamW(_param_groups(self.model, cfg.weight_decay), lr=cfg.lr)
        self.stage_epochs = [("stage1", cfg.stage1_epochs)]
        if cfg.mode == "supervised":
            self.stage_epochs.append(("stage2", cfg.stage2_epochs))
        self.epoch = 0  # epochs done over both stages
        self.step = 0
        self.best = -math.inf
        self.history: list[dict] = []
        labels = labels_of(train.entities)
        self.labels = torch.as_tensor(labels).to(self.device)
        self.sampler = HardNegativeSampler(labels, cfg.classes_per_batch, cfg.instances, cfg.seed)

    def _write_history(self) -> None:
        (self.out / "history.json").write_text(json.dumps(self.history, indent=2))
        plot_history(self.history, self.out / "training-curves.png")

    # -- checkpoints -------------------------------------------------------------------
    def _state(self) -> dict:
        return {
            "optimizer": self.opt.state_dict(), "epoch": self.epoch, "step": self.step, "best": self.best,
            "history": self.history, "train_config": asdict(self.cfg),
            "rng": {"torch": torch.get_rng_state(), "numpy": self.sampler.rng.bit_generator.state,
                    "python": random.getstate()},
        }

    def resume(self, path: Path) -> None:
        model, cfg, ckpt = load_checkpoint(path)
        if cfg != self.model_cfg:
            raise ClippingsError(f"{path}: checkpoint model config differs from this run's; resume with the same preset")
        self.model.load_state_dict(model.state_dict())
        self.opt.load_state_dict(ckpt["optimizer"])
        self.epoch, self.step, self.best, self.history = ckpt["epoch"], ckpt["step"], ckpt["best"], ckpt["history"]
        torch.set_rng_state(ckpt["rng"]["torch"])
        self.sampler.rng.bit_generator.state = ckpt["rng"]["numpy"]
        random.setstate(ckpt["rng"]["python"])
        log.info("resumed path=%s epoch=%d step=%d best=%.4f", path, self.epoch, self.step, self.best)

    def init_from(self, path: Path) -> None:
        """From a checkpoint, or from an exported model whose graph holds every trained weight
        (the reader family: a shipped model's name, e.g. jp-firms, or its folder)."""
        exported = exported_model_dir(path)
        if exported is not None:
            from clippings.models.reader import load_exported_weights

            load_exported_weights(self.model, exported)
            log.info("initialised weights from exported model=%s", exported)
            return
        model, cfg, _ = load_checkpoint(path)
        self.model.load_state_dict(model.state_dict())
        log.info("initialised weights from path=%s", path)

    # -- schedule ------------------------------------------------------------------------
    def _total_steps(self) -> int:
        n = len(self.train_set)
        s1 = self.cfg.stage1_epochs * math.ceil(n / self.cfg.batch_size)
        s2 = (self.cfg.stage2_epochs if self.cfg.mode == "supervised" else 0) * math.ceil(
            n / (self.cfg.classes_per_batch * self.cfg.instances))
        return max(1, s1 + s2)

    def _set_lr(self) -> None:
        total = self._total_steps()
        if self.step < self.cfg.warmup_steps:
            scale = (self.step + 1) / self.cfg.warmup_steps
        else:
            scale = 0.5 * (1 + math.cos(math.pi * min(1.0, self.step / total)))
        for g in self.opt.param_groups:
            g["lr"] = self.cfg.lr * max(scale, 0.02)

    def _update(self, loss: torch.Tensor) -> None:
        self._set_lr()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.step += 1
        with torch.no_grad():
            self.model.logit_scale.clamp_(0, math.log(100))

    def _augment(self, pixels: torch.Tensor) -> torch.Tensor:
        return augment(pixels, photos=self.cfg.photo_augment) if self.cfg.augment else pixels

    def _on_device(self, tensors: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return tuple(t.to(self.device, non_blocking=True) for t in tensors)

    # -- stages --------------------------------------------------------------------------
    def _stage1_epoch(self, bar: tqdm) -> float:
        both = torch.nonzero((self.train_set.image_present > 0) & (self.train_set.text_present > 0)).flatten()
        order = both[torch.randperm(len(both))]
        losses = []
        for s in range(0, len(order) - 1, self.cfg.batch_size):
            idx = order[s : s + self.cfg.batch_size]
            if len(idx) < 2:
                continue
            pixels, ids, _, _ = self._on_device(self.train_set.batch(idx))
            img, txt = self.model(self._augment(pixels), ids)
            loss = clip_loss(img, txt, self.model.logit_scale.exp())
            self._update(loss)
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
            bar.update(len(idx))
        return float(np.mean(losses)) if losses else float("nan")

    def _stage2_epoch(self, bar: tqdm) -> float:
        ex = self.train_set.subset(self.sampler.exemplars().tolist())
        img, txt = embed_encoded(self.model, ex)
        exemplar_emb = pool(torch.from_numpy(img), torch.from_numpy(txt), self.model_cfg.image_weight,
                            ex.image_present, ex.text_present).numpy()
        self.model.train()
        losses = []
        w, t = self.model_cfg.image_weight, self.cfg.temperature
        for idx in self.sampler.batches(exemplar_emb):
            idx = torch.as_tensor(idx)
            pixels, ids, ip, tp = self._on_device(self.train_set.batch(idx))
            labels = self.labels[idx.to(self.device)]
            img, txt = self.model(self._augment(pixels), ids)
            pip, ptp = drop_modality(ip, tp, self.cfg.modality_dropout)
            loss = supcon_loss(pool(img, txt, w, pip, ptp), labels, t)
            if self.cfg.unimodal_weight > 0:
                hi, ht = ip > 0, tp > 0
                loss = loss + self.cfg.unimodal_weight * (
                    supcon_loss(img[hi], labels[hi], t) + supcon_loss(txt[ht], labels[ht], t))
            self._update(loss)
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
            bar.update(len(idx))
        return float(np.mean(losses)) if losses else float("nan")

    def run(self) -> dict:
        done = self.epoch
        plan = [(stage, e) for stage, n in self.stage_epochs for e in range(n)]
        for i, (stage, e) in enumerate(plan):
            if i < done:
                continue
            self.model.train()
            with tqdm(total=len(self.train_set), desc=f"{stage} epoch {e + 1}", unit="rec") as bar:
                loss = self._stage1_epoch(bar) if stage == "stage1" else self._stage2_epoch(bar)
            self.epoch = i + 1
            metrics = self._record(stage, loss)
            score = metrics.get("score", -loss)
            # Best is chosen within the final stage: a stage-1 model is not a linking model.
            if stage == plan[-1][0] and score > self.best:
                self.best = score
                save_checkpoint(self.out / "best.pt", self.model, self.model_cfg, **self._state(), val=metrics)
            save_checkpoint(self.out / "last.pt", self.model, self.model_cfg, **self._state(), val=metrics)
            if stage == "stage1" and (i + 1 == len(plan) or plan[i + 1][0] != "stage1"):
                # The end of stage 1 is the self-supervised model: kept for the ablation.
                save_checkpoint(self.out / "stage1.pt", self.model, self.model_cfg, **self._state(), val=metrics)
            self._write_history()
        if self._needs_photo_head():
            self._photo_head_stage()
        self._write_history()
        return {"best": self.best, "history": self.history}

    def _record(self, stage: str, loss: float) -> dict:
        """Validates the model as it is now; its figures join the history. -> the metrics."""
        metrics = validate(self.model, self.model_cfg, self.val_set, self.val_splits) if self.val_set else {}
        record = {"epoch": self.epoch, "stage": stage, "loss": loss, **metrics}
        self.history.append(record)
        # The photo head's stage is not an epoch: its record says which it is.
        log.info("%s_done %s", "epoch" if stage.startswith("stage") else "stage", " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
        return metrics

    def _needs_photo_head(self) -> bool:
        """A pretrained photo trunk whose head is not trained yet: not after a resume past the
        head's stage, nor when fine-tuning a model that was served with its head (--init)."""
        return (getattr(self.model, "photo_trunk", None) is not None and self.cfg.mode == "supervised"
                and not bool(self.model.head_trained))

    def _photo_head_stage(self) -> None:
        """After stage 2: the best epoch's weights, and the pretrained trunk's head trained on them
        (training/photo_head.py). The result is the model: best.pt and last.pt."""
        from clippings.training.photo_head import HeadConfig, train_photo_head

        if (self.out / "best.pt").is_file():
            self.model.load_state_dict(load_checkpoint(self.out / "best.pt")[0].state_dict())
        losses = train_photo_head(self.model, self.train_set, HeadConfig(seed=self.cfg.seed))
        loss = float(np.mean(losses[-50:]))
        metrics = self._record("photo-head", loss)
        self.best = metrics.get("score", -loss)
        for name in ("best.pt", "last.pt"):
            save_checkpoint(self.out / name, self.model, self.model_cfg, **self._state(), val=metrics)

