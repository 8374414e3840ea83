"""The two towers of the small model: a residual CNN for crops and a character CNN for text.

Both end in the same embedding size and are exported to ONNX as they are written here, so
they use only ops that export cleanly (no data-dependent shapes).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from clippings.models.config import TextConfig, VisionConfig


class ResidualStage(nn.Module):
    """Halve the resolution, then (except at full-size stages) one residual 3x3 block."""

    def __init__(self, c_in: int, c_out: int, residual: bool = True):
        super().__init__()
        self.down = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
        )
        self.block = nn.Sequential(
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
        ) if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(x)
        return x if self.block is None else F.relu(x + self.block(x))


class VisionEncoder(nn.Module):
    def __init__(self, cfg: VisionConfig, in_channels: int, embed_dim: int):
        super().__init__()
        widths = (in_channels,) + tuple(cfg.widths)
        # The first stage only downsamples: a residual block at full resolution costs as much
        # as all later stages together and buys little on printed text.
        self.stages = nn.Sequential(
            *[ResidualStage(a, b, residual=i > 0) for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]))]
        )
        # Mean and max pooling together: max keeps small strokes that a mean washes out; with a
        # grid, the mean of each region too (VisionConfig.grid says why).
        self.grid = cfg.grid
        pooled = (2 + cfg.grid * cfg.grid) * widths[-1]
        self.proj = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(pooled, embed_dim))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.stages(pixels)  # (B, C, h, w)
        parts = [x.mean(dim=(2, 3)), x.amax(dim=(2, 3))]  # (B, C) each
        if self.grid:
            parts.append(F.adaptive_avg_pool2d(x, self.grid).flatten(1))  # (B, C * grid * grid)
        return self.proj(torch.cat(parts, dim=1))  # (B, D)


class TextEncoder(nn.Module):
    """Hashed characters -> residual 1-D convolutions -> masked mean and max pooling."""

    def __init__(self, cfg: TextConfig, buckets: int, max_len: int, embed_dim: int):
        super().__init__()
        self.chars = nn.Embedding(buckets, cfg.char_dim, padding_idx=0)
        self.pos = nn.Parameter(torch.zeros(max_len, cfg.char_dim))
        self.inp = nn.Conv1d(cfg.char_dim, cfg.width, 1)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(cfg.width, cfg.width, cfg.kernel, padding=cfg.kernel // 2),
                nn.GELU(),
                nn.Dropout(cfg.dropout),
                nn.Conv1d(cfg.width, cfg.width, 1),
            )
            for _ in range(cfg.layers)
        )
        self.norm = nn.LayerNorm(cfg.width)
        self.proj = nn.Linear(2 * cfg.width, embed_dim)

    def forward(self, text_ids: torch.Tensor) -> torch.Tensor:
        mask = (text_ids != 0).unsqueeze(1).to(self.pos.dtype)  # (B, 1, L)
        x = self.chars(text_ids) + self.pos[: text_ids.shape[1]]  # (B, L, E)
        x = self.inp(x.transpose(1, 2))  # (B, W, L)
        for block in self.blocks:
            x = x + block(x) * mask  # padding never leaks into real characters
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)  # (B, W, L)
        has_text = mask.amax(dim=2)  # (B, 1): empty text pools to zeros, never NaN or -1e4
        mean = (x * mask).sum(dim=2) / mask.sum(dim=2).clamp(min=1.0)
        mx = (x * mask + (mask - 1.0) * 1e4).amax(dim=2) * has_text
        return self.proj(torch.cat([mean, mx], dim=1))  # (B, D)


# A word and the space after it, in characters: where a word's n-gram sits along a caption.
WORD_CHARS = 6.0


class NgramBagEncoder(nn.Module):
    """Hashed n-grams (tokenizer "ngrams": characters, pairs of characters, words) -> one
    learned row each, summed: a linear map of the n-gram bag. Unlike the convolution it sees a
    whole long caption, can express plain n-gram overlap (what Jaccard measures) from its
    first step, and learns to give boilerplate (datelines, credits) no weight.

    With `decay` > 0 each n-gram's row is weighted by exp(-position / decay), its position in
    characters along the caption: papers cut a caption from the end to fit, so a reprint keeps
    the lede and loses the tail, and a bag that weighs every n-gram alike puts a caption cut to
    a third at cosine 0.58 of its full text. `segments` = (first pair id, first word id) of the
    tokenizer's id ranges; `max_len` its ids a caption."""

    def __init__(self, rows: int, embed_dim: int, segments: tuple[int, int] | None = None, decay: float = 0.0,
                 max_len: int = 0):
        super().__init__()
        if decay and (segments is None or not max_len):
            raise ValueError("a position decay needs the tokenizer's segments and length")
        self.table = nn.Embedding(rows, embed_dim, padding_idx=0)
        self.segments = segments
        self.decay = decay
        if decay:  # not a weight: left out of checkpoints and of the exported graph's names
            self.register_buffer("index", torch.arange(max_len, dtype=torch.float32), persistent=False)
        # A random projection to begin with: cosines of bags are kept before any training.
        nn.init.normal_(self.table.weight, 0.0, embed_dim ** -0.5)
        with torch.no_grad():
            self.table.weight[0].zero_()

    def positions(self, text_ids: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> each id's position along its caption in characters: the characters
        and the pairs count from the caption's start in order, the words WORD_CHARS each.

        The "ngrams" tokenizer lays a caption out as its characters, then its pairs, then its
        words, from index 0 without gaps, so a position is the index less where its segment
        starts. (Neither a cumulative sum nor a cast: the fp16 export's converter keeps both in
        fp32 by inserting casts around them, and loops on that.)"""
        first_pair, first_word = self.segments
        index = self.index[: text_ids.shape[1]]  # (L,) float32, as trained and exported
        chars = (text_ids > 0) & (text_ids < first_pair)
        pairs = (text_ids >= first_pair) & (text_ids < first_word)
        words = text_ids >= first_word
        zero = torch.zeros_like(index)
        pairs_start = torch.where(chars, index + 1, zero).amax(dim=1, keepdim=True)  # (B, 1)
        words_start = torch.where(chars | pairs, index + 1, zero).amax(dim=1, keepdim=True)
        return (torch.where(chars, index, zero) + torch.where(pairs, index - pairs_start, zero)
                + torch.where(words, (index - words_start) * WORD_CHARS, zero))

    def forward(self, text_ids: torch.Tensor) -> torch.Tensor:
        rows = self.table(text_ids)  # (B, L, D); padding rows are zeros
        if self.decay:
            rows = rows * torch.exp(-self.positions(text_ids) / self.decay).unsqueeze(-1)
        return rows.sum(dim=1)  # (B, D)


class HybridTextEncoder(nn.Module):
    """The n-gram bag and the character convolution side by side, each output normalised and
    summed: the bag sees a whole long caption (what Jaccard sees), the convolution reads the
    first `conv_len` characters in order (what the bag cannot: order, a short caption's exact
    wording). Both read one id sequence, the "ngrams" tokenizer's: its first ids are the
    caption's characters in order, as hashed unigrams (ids below `unigrams`); the pairs and
    words after them are masked out of the convolution's window."""

    def __init__(self, cfg: TextConfig, rows: int, unigrams: int, embed_dim: int,
                 segments: tuple[int, int] | None = None, max_len: int = 0):
        super().__init__()
        self.unigrams = unigrams
        self.conv_len = cfg.conv_len
        self.bag = NgramBagEncoder(rows, embed_dim, segments, cfg.decay, max_len)
        self.conv = TextEncoder(cfg, unigrams, cfg.conv_len, embed_dim)

    def forward(self, text_ids: torch.Tensor) -> torch.Tensor:
        head = text_ids[:, : self.conv_len]
        chars = torch.where(head < self.unigrams, head, torch.zeros_like(head))
        return F.normalize(self.bag(text_ids), dim=-1) + F.normalize(self.conv(chars), dim=-1)
