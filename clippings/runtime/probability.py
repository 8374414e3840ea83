"""A pair's match probability: a logistic curve over its cosine's margin to the pair's cut.

Fitted on labelled candidate pairs when a decision is calibrated (clippings.evaluation.
probability), stored in the manifest (`match_probability`), and read by the linker for its
link events and by `clippings eval` alike. It depends on the margin alone and rises with it,
so it ranks pairs as the cosine does and the decision stays what it was: a pair links when its
cosine reaches its cut, i.e. when its probability reaches the curve's value at margin 0. What
it adds is a number an operator can read the same way for every model and every pair of
modalities ("0.97", not "0.86 against a cut of 0.82, or 0.61 against 0.55 for a caption
alone").
"""

from __future__ import annotations

import numpy as np

from clippings.runtime.manifest import Manifest, MatchCurve
from clippings.runtime.modality import pair_cut


def match_probability(similarity, cut, curve: MatchCurve):
    """P(same entity) of pairs at cosine `similarity` whose cut is `cut` (scalars or arrays)."""
    margin = np.asarray(similarity, np.float64) - np.asarray(cut, np.float64)
    p = 1.0 / (1.0 + np.exp(-(curve["slope"] * margin + curve["intercept"])))
    return float(p) if p.ndim == 0 else p


def reference_cuts(manifest: Manifest) -> tuple[float, float | None, float | None]:
    """(cut, text_only, image_only) the manifest's curve measures margins from: its dedup cut and
    the cuts for clippings missing a modality, or its link cut alone."""
    curve, th = manifest.match_probability, manifest.thresholds
    if curve is None or curve["cut"] == "link":
        return th["link"], None, None
    return th["dedup"], th.get("text_only"), th.get("image_only")


def pair_probability(similarity: float, a: str, b: str, curve: MatchCurve,
                     cuts: tuple[float, float | None, float | None]) -> float:
    """The probability of a pair of clippings of patterns a and b (runtime/modality.py);
    0 for a pair that never links (a caption alone against a photo alone)."""
    cut = pair_cut(*cuts, a, b)
    return 0.0 if np.isinf(cut) else match_probability(similarity, cut, curve)
