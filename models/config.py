"""Model architecture as data: one dataclass per tower, one named preset per use."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from clippings.errors import ModelError
from clippings.runtime.preprocess import PreprocessConfig


@dataclass(frozen=True)
class VisionConfig:
    widths: tuple[int, ...] = (24, 48, 96, 192)  # channels per stage; each stage halves H and W
    dropout: float = 0.1


@dataclass(frozen=True)
class TextConfig:
    char_dim: int = 64  # hashed-character embedding width
    width: int = 192  # conv channels
    layers: int = 2  # residual conv blocks over characters
    kernel: int = 3  # characters seen per conv step: n-gram-like features robust to OCR noise
    dropout: float = 0.1


@dataclass(frozen=True)
class ModelConfig:
    name: str
    family: str = "small"  # "small": our CNN + char encoder; "hf-clip": a local CLIPModel folder
    embed_dim: int = 128
    image_weight: float = 0.5  # w in normalize(w * img + (1 - w) * txt); the paper trains at 0.5
    vision: VisionConfig = field(default_factory=VisionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    hf_path: str | None = None  # family "hf-clip": the local Hugging Face folder

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        d = dict(d)
        v = d.pop("vision", {})
        vision = VisionConfig(**{**v, "widths": tuple(v["widths"])}) if v else VisionConfig()
        text = TextConfig(**d.pop("text", {}))
        pre = PreprocessConfig.from_dict(d.pop("preprocess", {}))
        return cls(vision=vision, text=text, preprocess=pre, **d)


# Presets. Text crops are wide and grayscale; photos are square and in colour.
PRESETS: dict[str, ModelConfig] = {
    "small-crops": ModelConfig(
        name="small-crops",
        preprocess=PreprocessConfig(image_height=32, image_width=192, channels=1, reflow_tall=True,
                                    pad_value=255, text_max_len=40),
    ),
    "small-photos": ModelConfig(
        name="small-photos",
        preprocess=PreprocessConfig(image_height=64, image_width=64, channels=3, reflow_tall=False,
                                    pad_value=128, text_max_len=96),
    ),
}


def preset(name: str) -> ModelConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ModelError(f"unknown model preset {name!r} (known: {', '.join(PRESETS)})") from None
