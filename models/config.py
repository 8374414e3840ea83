"""Model architecture as data: one dataclass per tower, one named preset per use."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from clippings.errors import ModelError
from clippings.runtime.preprocess import PreprocessConfig


@dataclass(frozen=True)
class VisionConfig:
    widths: tuple[int, ...] = (24, 48, 96, 192)  # channels per stage; each stage halves H and W
    dropout: float = 0.1
    # Cells per side of a grid of mean-pooled regions kept beside the global mean and max (0:
    # none). Global pooling keeps what a photo shows, not where: a sibling story's photo of the
    # same place shows the same things elsewhere in the frame, a reprint shows them in place.
    grid: int = 0
    # A pretrained trunk beside the tower (models/photo_trunk.py), or None. Its head's unit
    # vector is added to the tower's at `trunk_weight` and the sum normalised, so the photo's
    # vector keeps its size; the tower's grey input is upsampled to `trunk_size` pixels a side
    # for it, and read up to block `trunk_block`.
    trunk: str | None = None
    trunk_size: int = 64
    trunk_block: int = 10
    trunk_weight: float = 0.6


@dataclass(frozen=True)
class TextConfig:
    kind: str = "conv"  # "conv": hashed characters in order through 1-D convolutions;
    # "bag": a learned row per hashed n-gram, summed (needs the "ngrams" tokenizer);
    # "hybrid": both, the convolution over the first conv_len characters (encoders.HybridTextEncoder)
    char_dim: int = 64  # hashed-character embedding width
    width: int = 192  # conv channels
    layers: int = 2  # residual conv blocks over characters
    kernel: int = 3  # characters seen per conv step: n-gram-like features robust to OCR noise
    dropout: float = 0.1
    conv_len: int = 96  # "hybrid": characters the convolution reads
    decay: float = 0.0  # "bag", "hybrid": an n-gram's weight is exp(-its position in characters / decay),
    # so a reprint cut from the end stays near its full caption (encoders.NgramBagEncoder); 0: all alike


@dataclass(frozen=True)
class ModelConfig:
    name: str
    family: str = "small"  # "small": our CNN + char encoder; "reader": a pretrained line reader +
    # a character table (models/reader.py); "hf-clip": a local CLIPModel folder
    embed_dim: int = 128
    image_weight: float = 0.5  # w in normalize(w * img + (1 - w) * txt); the paper trains at 0.5
    vision: VisionConfig = field(default_factory=VisionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    hf_path: str | None = None  # family "hf-clip": the local Hugging Face folder
    trunk: str | None = None  # family "reader": the pretrained recogniser (clippings.models.trunk.TRUNKS)

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
# Photos with a caption read as a bag of hashed characters, character pairs and words over its
# first 1,024 n-grams (about 450 characters), folded to one case.
NGRAM_PHOTOS = PreprocessConfig(image_height=64, image_width=64, channels=3, reflow_tall=False, pad_value=128,
                                text_max_len=1024, text_buckets=4096, text_bigram_buckets=16384,
                                text_word_buckets=16384, tokenizer="ngrams", casefold=True)
PRESETS: dict[str, ModelConfig] = {
    # PP-OCRv6 reads 48-pixel-high RGB lines scaled to [-1, 1]; 320 wide is its default
    # width, enough for the 4-20 characters of a firm name at that height.
    "reader-crops": ModelConfig(
        name="reader-crops", family="reader", trunk="ppocrv6-small", embed_dim=128,
        preprocess=PreprocessConfig(image_height=48, image_width=320, channels=3, reflow_tall=False,
                                    rotate_tall=True, align_left=True, pad_value=255, text_max_len=80,
                                    text_buckets=32768, text_bigram_buckets=32768, tokenizer="ngrams"),
    ),
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
    # The same with a window of 384 characters: a paragraph-long caption, read in order.
    "long-photos": ModelConfig(
        name="long-photos",
        preprocess=PreprocessConfig(image_height=64, image_width=64, channels=3, reflow_tall=False,
                                    pad_value=128, text_max_len=384),
    ),
    # The same photo tower with a bag of hashed characters, character pairs and words over the
    # first 1,024 n-grams of a caption (about 450 characters) instead of a window of 96.
    "bag-photos": ModelConfig(
        name="bag-photos", text=TextConfig(kind="bag"),
        preprocess=NGRAM_PHOTOS,
    ),
    # Both text towers side by side (encoders.HybridTextEncoder): order and wording of a short
    # caption, the whole of a long one.
    "hybrid-photos": ModelConfig(
        name="hybrid-photos", text=TextConfig(kind="hybrid", conv_len=96),
        preprocess=NGRAM_PHOTOS,
    ),
    # The hybrid with its n-gram bag weighted towards the caption's start (decay 480 characters:
    # the lede counts most, the tail of a long caption about a third): what news ships since
    # 2026-11-30 (a later session; docs/model.md, "The lede counts most").
    "lede-photos": ModelConfig(
        name="lede-photos", text=TextConfig(kind="hybrid", conv_len=96, decay=480.0),
        preprocess=NGRAM_PHOTOS,
    ),
    # The same with the photo's 4 x 4 grid of regions beside its global pooling: where things
    # are in the frame, which tells a reprint from a sibling story's photo of the same place.
    "lede-grid-photos": ModelConfig(
        name="lede-grid-photos", vision=VisionConfig(grid=4),
        text=TextConfig(kind="hybrid", conv_len=96, decay=480.0), preprocess=NGRAM_PHOTOS,
    ),
    # The same reading its photo in grey: what news ships since 2026-12-01 (night). A paper
    # prints one photo in colour and another in grey, and an archive scans either way; the
    # generator prints every photo on yellowed paper, so a colour tower learned a tint that no
    # reprint shares (docs/model.md, "The photo in grey").
    "lede-grid-grey": ModelConfig(
        name="lede-grid-grey", vision=VisionConfig(grid=4),
        text=TextConfig(kind="hybrid", conv_len=96, decay=480.0),
        preprocess=replace(NGRAM_PHOTOS, channels=1),
    ),
    # The same with EfficientNet-Lite0's ImageNet features of the photo beside the tower, through
    # a linear head trained after the rest (docs/model.md, "A pretrained photo trunk"): the trunk
    # learned from photographs, not from the generator's drawings.
    "lede-grid-trunk": ModelConfig(
        name="lede-grid-trunk", vision=VisionConfig(grid=4, trunk="efficientnet-lite0"),
        text=TextConfig(kind="hybrid", conv_len=96, decay=480.0),
        preprocess=replace(NGRAM_PHOTOS, channels=1),
    ),
}


def preset(name: str) -> ModelConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ModelError(f"unknown model preset {name!r} (known: {', '.join(PRESETS)})") from None
