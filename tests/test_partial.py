"""The missing-modality report of `clippings eval`: partial clippings against full ones."""

import numpy as np
import pytest

from clippings.evaluation.partial import missing_modality


def towers():
    # Two entities of two clippings each; photos and captions in separate directions.
    img = np.array([[1, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0]], np.float32)
    txt = np.array([[0, 0, 1, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1]], np.float32)
    return img, txt, np.ones(4, np.float32), np.ones(4, np.float32), ["a", "a", "b", "b"]


def test_a_partial_clipping_links_when_its_modality_carries_the_pooled_vector():
    r = missing_modality(*towers(), image_weight=0.8, threshold=0.7)
    # full = normalize(0.8 img + 0.2 txt): the photo alone is at 0.970 of it, the caption at 0.243.
    assert r["n"] == 4
    assert r["image_only"] == {"links": 1.0, "false_links": 0.0, "median_cosine_to_own": pytest.approx(0.9701, abs=1e-4)}
    assert r["text_only"]["links"] == 0.0 and r["text_only"]["median_cosine_to_own"] == pytest.approx(0.2425, abs=1e-4)
    assert r["median_cosine_to_itself"]["text_only"] == pytest.approx(0.2425, abs=1e-4)


def test_a_partial_clipping_is_never_scored_against_itself_and_needs_a_partner():
    img, txt, ip, tp, ent = towers()
    r = missing_modality(img, txt, ip, tp, ["a", "x", "b", "y"], image_weight=0.5, threshold=0.5)
    assert r["n"] == 0  # nobody has another member of its entity: nothing to link to
    r = missing_modality(img, txt, ip, tp, ent, image_weight=0.5, threshold=0.71)
    assert r["text_only"]["links"] == r["image_only"]["links"] == 0.0  # cos 0.707 < 0.71: the own copy is excluded
