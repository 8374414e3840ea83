"""A dedup decision tuned for the size of the sets it will serve: single linkage chains more in
a larger set, so a cut tuned on small splits is too low for a larger one (docs/model.md,
"Calibrating for a set's size")."""

from collections import Counter

import numpy as np
from sklearn.metrics import adjusted_rand_score

from clippings.evaluation.linking import labels_of, single_linkage
from clippings.evaluation.scoring import TowerSet, sets_of_size, tune_serving_sets


def caption_set(entities: int, seed: int, dims: int = 24) -> TowerSet:
    """Caption-only clippings in pairs: each pair's two captions scatter around their story's
    random direction, so the nearest other story comes closer the more stories a set holds."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((entities, dims))
    txt = np.repeat(centres, 2, axis=0) + 0.45 * rng.standard_normal((2 * entities, dims))
    txt = (txt / np.linalg.norm(txt, axis=1, keepdims=True)).astype(np.float32)
    n = len(txt)
    return TowerSet(np.zeros_like(txt), txt, np.zeros(n, np.float32), np.ones(n, np.float32), ["val"] * n,
                    [f"s{k // 2}" for k in range(n)])


def test_drawn_sets_hold_whole_stories_and_reach_the_size():
    s = caption_set(50, 0)
    s = TowerSet(s.image_emb, s.text_emb, s.image_present, s.text_present, s.splits,
                 list(s.entities[:-1]) + [None])  # one clipping without a label: drawn alone
    drawn = sets_of_size([s], 31, draws=3)
    assert len(drawn) == 3
    whole = Counter(s.entities)
    for d in drawn:
        assert 31 <= len(d.entities) <= 32  # stories of two: one past the size at most
        for entity, n in Counter(d.entities).items():
            assert entity is None or n == whole[entity]
        # rows keep their vectors and labels together
        rows = [next(i for i in range(len(s.entities)) if np.array_equal(s.text_emb[i], v)) for v in d.text_emb]
        assert [s.entities[i] for i in rows] == list(d.entities)
    assert len({tuple(d.entities) for d in drawn}) == 3  # three different draws
    again = sets_of_size([s], 31, draws=3)
    assert [list(d.entities) for d in again] == [list(d.entities) for d in drawn]  # seeded
    assert sets_of_size([s], 100) == [s]  # a set no larger than the size stays whole


def test_the_cut_tuned_for_larger_sets_is_higher_and_holds_on_them():
    """Tuned on sets of 60 clippings the cut merges stories in a fresh set of 600; tuned on
    sets of 600 drawn from the same calibration data it is higher and scores better there."""
    calibration, fresh = caption_set(1200, 1), caption_set(300, 2)
    small = tune_serving_sets(sets_of_size([calibration], 60))["dedup"]
    large = tune_serving_sets(sets_of_size([calibration], 600))["dedup"]
    assert large > small

    def ari(cut: float) -> float:
        return adjusted_rand_score(labels_of(fresh.entities), single_linkage(fresh.pooled(0.0), cut))

    assert ari(large) > ari(small)


def test_a_set_drawn_many_times_counts_once():
    """A large set drawn eight times and a small set kept whole weigh the same in the cut:
    the mean over the two sources, each source's draws averaged first, not over nine sets."""
    from clippings.evaluation.linking import DEDUP_GRID, dedup_curve, plateau
    from clippings.evaluation.scoring import SERVING_WINDOW

    large, small = caption_set(400, 3, dims=24), caption_set(30, 4, dims=12)
    drawn = sets_of_size([large, small], 200)
    assert len(drawn) == 9 and {d.source for d in drawn[:8]} == {0} and drawn[8] is small

    def curve(s: TowerSet) -> np.ndarray:
        return plateau(DEDUP_GRID, dedup_curve(s.pooled(0.0), s.entities), SERVING_WINDOW)

    per_source = (np.mean([curve(d) for d in drawn[:8]], axis=0) + curve(small)) / 2
    per_set = np.mean([curve(d) for d in drawn], axis=0)
    chosen = tune_serving_sets(drawn)["dedup"]
    assert chosen == DEDUP_GRID[int(np.argmax(per_source))]
    assert chosen != DEDUP_GRID[int(np.argmax(per_set))]  # counted per set, the large one would outvote
