"""Scores over embeddings of a dataset's records: top-1 linking and ARI of noisy-duplicate
clusters. Shared by validation during training and by `clippings eval`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
from sklearn.metrics import adjusted_rand_score

from clippings.evaluation.linking import (
    DEDUP_GRID, best_cut, dedup_curve, labels_of, plateau, single_linkage, top1, top1_accuracy,
    tune_dedup_threshold, tune_link_threshold,
)
from clippings.runtime.text_evidence import DEFAULT_DIM as TEXT_DIM, with_text_evidence


def _query_outcomes(vectors: np.ndarray, splits: Sequence[str], entities: Sequence[str | None]) -> dict:
    """Each query's top-1 cosine among the corpus, whether that top-1 is its entity, whether
    its entity is in the corpus at all; and top-1 accuracy over the queries whose entity is."""
    splits_a = np.asarray(splits)
    c_idx, q_idx = np.flatnonzero(splits_a == "corpus"), np.flatnonzero(splits_a == "query")
    corpus_entities = [entities[i] for i in c_idx]
    query_entities = [entities[i] for i in q_idx]
    nn_idx, nn_sim = top1(vectors[q_idx], vectors[c_idx])
    predicted = [corpus_entities[j] for j in nn_idx]
    known = {e for e in corpus_entities if e is not None}
    acc, n = top1_accuracy(predicted, query_entities, known)
    return {"best": nn_sim, "correct": np.array([p == q for p, q in zip(predicted, query_entities)], bool),
            "in_corpus": np.array([q in known for q in query_entities], bool), "top1": acc, "n": n}


def link_scores(vectors: np.ndarray, splits: Sequence[str], entities: Sequence[str | None]) -> dict:
    """Top-1 of each query among the corpus, scored over queries whose entity is in the corpus;
    plus the tuned "no match" threshold over all queries."""
    q = _query_outcomes(vectors, splits, entities)
    threshold, decision_acc = tune_link_threshold(q["best"], q["correct"], q["in_corpus"])
    return {"top1": q["top1"], "n": q["n"], "threshold": threshold, "decision_accuracy": decision_acc}


def link_decision_accuracy(
    vectors: np.ndarray, splits: Sequence[str], entities: Sequence[str | None], threshold: float
) -> float:
    """Share of all queries decided right at a given "no match" cut: linked to their entity, or
    linked to nothing when their entity is not in the corpus."""
    q = _query_outcomes(vectors, splits, entities)
    linked = q["best"] >= threshold
    right = (linked & q["correct"]) | (~linked & ~q["in_corpus"])
    return float(np.mean(right)) if len(right) else 0.0


def dedup_scores(
    val_vectors: np.ndarray, val_entities: Sequence[str | None],
    test_vectors: np.ndarray, test_entities: Sequence[str | None],
) -> dict:
    """ARI on test at the cosine cut that maximises ARI on val."""
    threshold, val_ari = tune_dedup_threshold(val_vectors, val_entities)
    ari = adjusted_rand_score(labels_of(test_entities), single_linkage(test_vectors, threshold))
    return {"ari": float(ari), "threshold": threshold, "val_ari": val_ari, "n": len(test_entities)}


WEIGHT_GRID = np.round(np.arange(0.0, 1.01, 0.1), 2)
# A served dedup cut (and a dedup set's w) is chosen for the mean ARI of the cuts within 0.04
# of it on validation, not its own (linking.tune_dedup_threshold). Chosen after the news shift
# set showed the peak's cliff: docs/model.md, "Calibration".
SERVING_WINDOW = 0.04


def link_margin(vectors: np.ndarray, splits: Sequence[str], entities: Sequence[str | None]) -> float:
    """Mean, over queries whose entity is in the corpus (and not alone in it), of (best cosine
    to a corpus record of its own entity) - (best cosine to another entity's): in [-2, 2]."""
    splits_a = np.asarray(splits)
    c_idx, q_idx = np.flatnonzero(splits_a == "corpus"), np.flatnonzero(splits_a == "query")
    corpus_ent = np.asarray([entities[i] for i in c_idx], dtype=object)
    own = corpus_ent[None, :] == np.asarray([entities[i] for i in q_idx], dtype=object)[:, None]  # (Q, C)
    scored = own.any(axis=1) & ~own.all(axis=1) & np.array([entities[i] is not None for i in q_idx], bool)
    if not scored.any():
        return 0.0
    sims = vectors[q_idx[scored]] @ vectors[c_idx].T
    own = own[scored]
    return float(np.mean(np.where(own, sims, -np.inf).max(axis=1) - np.where(own, -np.inf, sims).max(axis=1)))


@dataclass(frozen=True)
class TowerSet:
    """One labelled set's tower outputs, for choosing a served decision: what tune_serving reads."""

    image_emb: np.ndarray  # (N, D), unit rows
    text_emb: np.ndarray  # (N, D), unit rows
    image_present: np.ndarray  # (N,) 0/1
    text_present: np.ndarray  # (N,) 0/1
    splits: Sequence[str]
    entities: Sequence[str | None]
    texts: Sequence[str] | None = None  # the captions, for text evidence (None: not tunable with it)
    pooling: str = "sum"  # how the towers are pooled (runtime/onnx_model.pool)
    source: int | None = None  # sets_of_size: which of the sets given it was drawn from

    @property
    def task(self) -> str:
        return "link" if {"corpus", "query"} <= set(self.splits) else "dedup"

    def subset(self, rows: Sequence[int]) -> "TowerSet":
        idx = np.asarray(rows, np.int64)
        return replace(self, image_emb=self.image_emb[idx], text_emb=self.text_emb[idx],
                       image_present=np.asarray(self.image_present)[idx],
                       text_present=np.asarray(self.text_present)[idx],
                       splits=[self.splits[i] for i in idx], entities=[self.entities[i] for i in idx],
                       texts=None if self.texts is None else [self.texts[i] for i in idx])

    def pooled(self, w: float) -> np.ndarray:
        from clippings.runtime.onnx_model import pool

        return pool(self.image_emb, self.text_emb, self.image_present, self.text_present, w, self.pooling)

    def served(self, w: float, text_weight: float = 0.0, text_dim: int = TEXT_DIM) -> np.ndarray:
        """The vectors a model pooled at w, with text evidence of weight text_weight, serves."""
        if not text_weight:
            return self.pooled(w)
        if self.texts is None:
            raise ValueError("text evidence needs the captions of the calibration set")
        return with_text_evidence(self.pooled(w), self.texts, text_weight, text_dim)


# Single linkage chains more the more clippings a set holds, so the best dedup cut rises with
# the set's size: on the news calibration sets about 0.01 for every 150 clippings (docs/model.md,
# "Calibrating for a set's size"). A dedup decision is therefore tuned on sets drawn to the size
# it is to serve; SET_SIZE is about the size of the independent news set.
SET_SIZE = 700
SIZE_DRAWS = 8


def sets_of_size(sets: Sequence[TowerSet], size: int, draws: int = SIZE_DRAWS, seed: int = 0) -> list[TowerSet]:
    """Each dedup set of more than `size` clippings as `draws` sets of whole entities, drawn at
    random until one holds at least `size` clippings; a set no larger than that, and a linking
    set (top-1 does not chain), as it is. Seeded: the same sets give the same draws."""
    rng = np.random.default_rng(seed)
    out: list[TowerSet] = []
    for k, s in enumerate(sets):
        if s.task == "link" or len(s.entities) <= size:
            out.append(s)
            continue
        rows_of: dict = {}
        for i, e in enumerate(s.entities):
            # An unlabelled clipping is an entity of its own: it is drawn, or not, alone.
            rows_of.setdefault(e if e is not None else ("unlabelled", i), []).append(i)
        groups = list(rows_of.values())
        for _ in range(draws):
            rows: list[int] = []
            for g in rng.permutation(len(groups)):
                rows += groups[g]
                if len(rows) >= size:
                    break
            out.append(replace(s.subset(sorted(rows)), source=k))
    return out


def by_source(sets: Sequence[TowerSet]) -> list[list[TowerSet]]:
    """The sets grouped by the set they stand for: the draws of one set together, any other
    set alone."""
    groups: dict = {}
    for i, s in enumerate(sets):
        groups.setdefault(("drawn", s.source) if s.source is not None else ("given", i), []).append(s)
    return list(groups.values())


def over_sources(score_of, sets: Sequence[TowerSet]) -> np.ndarray:
    """The mean over the sets' sources of the mean of score_of(set) (an array) over each
    source's draws: a set drawn SIZE_DRAWS times counts once, as a set too small to draw from.

    The mean, not the worst source: tried on the news calibration sets, the worst of four (the
    generator's and three samples of one feed) was the same feed sample at every w from 0.3 up,
    a sample whose best cut sits 0.02-0.03 above its siblings', and it set the cut alone
    (docs/model.md, "Calibrating for a set's size"). Several samples of the feed to be served,
    not one, are what keep the generator's set from setting the balance of photo and caption."""
    return np.mean([np.mean([score_of(s) for s in group], axis=0) for group in by_source(sets)], axis=0)


def tune_serving(
    image_emb: np.ndarray, text_emb: np.ndarray, image_present: np.ndarray, text_present: np.ndarray,
    splits: Sequence[str], entities: Sequence[str | None],
) -> dict:
    """The image weight w and the two thresholds a served model uses, chosen on one validation
    set (tune_serving_sets with a single set)."""
    return tune_serving_sets([TowerSet(image_emb, text_emb, image_present, text_present, splits, entities)])


def tune_serving_sets(sets: Sequence[TowerSet], text_weights: Sequence[float] = (0.0,),
                      text_dim: int = TEXT_DIM) -> dict:
    """w, the text evidence's weight (one of text_weights) and the two thresholds, chosen for
    the mean score over one or more validation sets of one task: (text weight, w) maximise
    mean top-1 (linking sets; among equal top-1, the mean margin of link_margin) or mean
    plateau ARI (dedup sets; over_sources: the draws of one set averaged first); remaining
    ties go to the earlier text weight, then to the w nearer 0.5.

    Several sets: one feed's labelled sample beside the generator's validation set, say. A
    decision tuned on one source fits that source's balance of photo and caption evidence,
    which another feed does not share (docs/model.md, "Calibrating to a feed")."""
    tasks = {s.task for s in sets}
    if len(tasks) != 1:
        raise ValueError("calibration sets must all be linking sets or all dedup sets")
    order = sorted(WEIGHT_GRID, key=lambda w: abs(w - 0.5))
    candidates = [(float(lam), float(w)) for lam in text_weights for w in order]
    if tasks == {"link"}:
        # Top-1 first; among equal top-1 (common: a few hundred queries, a coarse grid), the
        # choice that keeps each query's own entity furthest above its best other one.
        def objective(lam: float, w: float) -> float:
            scores = []
            for s in sets:
                v = s.served(w, lam, text_dim)
                scores.append(link_scores(v, s.splits, s.entities)["top1"] + 1e-6 * link_margin(v, s.splits, s.entities))
            return float(np.mean(scores))

        lam, w = _best(candidates, objective)
        link, top1_mean = _link_cut(sets, w, lam, text_dim)
        dedup_threshold, _ = _dedup_cut(sets, w, lam, text_dim)
        return {"image_weight": w, "text_weight": lam, "link": link, "dedup": dedup_threshold, "val_top1": top1_mean}
    lam, w = _best(candidates, lambda lam, w: _dedup_cut(sets, w, lam, text_dim)[1])
    threshold, plateau_score = _dedup_cut(sets, w, lam, text_dim)
    ari = over_sources(lambda s: np.asarray(adjusted_rand_score(labels_of(s.entities),
                                                                single_linkage(s.served(w, lam, text_dim), threshold))),
                       sets)
    # A dedup set has no corpus: the nearest-neighbour cut is the clustering cut.
    return {"image_weight": w, "text_weight": lam, "link": threshold, "dedup": threshold, "val_ari": float(ari),
            "val_plateau": plateau_score}


def _best(candidates: list[tuple[float, float]], score) -> tuple[float, float]:
    """The first (text weight, w) of the highest score."""
    best, best_score = candidates[0], -np.inf
    for lam, w in candidates:
        s = float(score(lam, w))
        if s > best_score:
            best, best_score = (lam, w), s
    return best


def _dedup_cut(sets: Sequence[TowerSet], w: float, lam: float = 0.0, text_dim: int = TEXT_DIM) -> tuple[float, float]:
    """The cut of the highest plateau ARI, averaged over the sets' sources, at image weight w
    -> (cut, that score)."""
    def plateau_of(s: TowerSet) -> np.ndarray:
        return plateau(DEDUP_GRID, dedup_curve(s.served(w, lam, text_dim), s.entities), SERVING_WINDOW)

    return best_cut(DEDUP_GRID, over_sources(plateau_of, sets))


def _link_cut(sets: Sequence[TowerSet], w: float, lam: float = 0.0, text_dim: int = TEXT_DIM) -> tuple[float, float]:
    """The "no match" cut over every set's queries together -> (cut, mean top-1)."""
    qs = [_query_outcomes(s.served(w, lam, text_dim), s.splits, s.entities) for s in sets]
    cut, _ = tune_link_threshold(*(np.concatenate([q[k] for q in qs]) for k in ("best", "correct", "in_corpus")))
    return cut, float(np.mean([q["top1"] for q in qs]))


# Of the complete clippings that have a duplicate, every PARTIAL_EVERY-th loses its photo (or
# its caption) when a cut for clippings missing a modality is tuned: enough to move the ARI,
# few enough that the clusters are still mostly complete clippings, as a feed's are.
PARTIAL_EVERY = 5


def with_partial(s: TowerSet, name: str, every: int = PARTIAL_EVERY) -> TowerSet:
    """s with every `every`-th complete clipping that has a duplicate reduced to its caption
    (name "text_only") or its photo ("image_only")."""
    ip, tp = np.asarray(s.image_present).copy(), np.asarray(s.text_present).copy()
    ent = list(s.entities)
    counts = Counter(ent)
    both = [i for i in range(len(ent)) if ip[i] > 0 and tp[i] > 0 and ent[i] is not None and counts[ent[i]] > 1]
    chosen = np.asarray(both[::every], np.int64)
    if name == "text_only":
        ip[chosen] = 0
    else:
        tp[chosen] = 0
    texts = None if s.texts is None else [t if tp[i] > 0 else "" for i, t in enumerate(s.texts)]
    return replace(s, image_present=ip, text_present=tp, texts=texts)


def middle_of_best_run(grid: np.ndarray, scores: np.ndarray) -> float:
    """The middle of the longest run of adjacent grid values that share the top score (of equal
    runs, the higher): where several cuts score the same (no sampled pair lies between them),
    the sample's edges are where the clippings it did not sample start to differ."""
    top = scores >= scores.max() - 1e-12
    runs, start = [], None
    for i, t in enumerate(np.append(top, False)):
        if t and start is None:
            start = i
        elif not t and start is not None:
            runs.append((i - start, start, i - 1))
            start = None
    _, lo, hi = max(runs)
    return float(grid[(lo + hi + 1) // 2])


def highest_within_one_se(grid: np.ndarray, scores: np.ndarray, se: np.ndarray) -> float:
    """The one-standard-error rule (Breiman et al. 1984): of the cuts from the best one up whose
    score stays within one standard error of the best, the highest, the most conservative
    choice the scores cannot tell from the best. Without a standard error (one set), the middle
    of the best run (middle_of_best_run)."""
    best = int(np.argmax(scores))
    if not se[best] > 0:
        return middle_of_best_run(grid, scores)
    top = best
    while top + 1 < len(grid) and scores[top + 1] >= scores[best] - se[best]:
        top += 1
    return float(grid[top])


def partial_cut(name: str, per_set: list[np.ndarray], scores: np.ndarray) -> float:
    """The cut for a clipping missing a modality, from each calibration set's ARI over
    DEDUP_GRID and their mean `scores`: for a photo alone ("image_only") the middle of the best
    run; for a caption alone ("text_only"), of the cuts within one standard error of the best
    (over the sets, draws of one set counted each), the highest (highest_within_one_se).

    The highest for a caption, because its two errors are not alike: a cut too high leaves a
    caption alone unlinked (one clipping), a cut too low lets it bridge two stories (two
    clusters), and a feed not calibrated on bridges more: the captions it prints alone are cut
    shorter and share more with sibling stories than the calibration's (a complete clipping's
    caption). Chosen at the best cut (0.59), the news model's caption-alone cut scored
    0.007-0.049 below 0.63 on four of six shift sets it was not calibrated on and the same on
    the other two, while calibration put 0.63 0.011 below its best, within one standard error
    (0.012, over 32 sets of 700 clippings). A photo printed alone is its reprint's photo; the
    same rule for it cost the one set with such clippings 0.015 ARI (news-test; docs/model.md,
    "A clipping missing one modality")."""
    se = np.zeros(len(DEDUP_GRID))
    if name == "text_only" and len(per_set) > 1:
        stacked = np.array(per_set)
        se = stacked.std(axis=0, ddof=1) / np.sqrt(len(stacked))
    return highest_within_one_se(DEDUP_GRID, scores, se)


def tune_partial_cuts(sets: Sequence[TowerSet], w: float, cut: float, text_weight: float = 0.0,
                      text_dim: int = TEXT_DIM) -> dict:
    """The cuts for a clipping missing its photo (`text_only`) or its caption (`image_only`)
    against a complete one (runtime/modality.py), chosen by what they do to the clustering: in
    each set every fifth complete clipping that has a duplicate is pooled again from its caption
    alone (or its photo alone; with_partial), and the cut maximises the mean ARI over the sets'
    sources (over_sources) of single linkage with every other pair held to `cut` (of equal
    cuts, the middle of the longest run); for a caption alone, the highest cut within one
    standard error of the best (partial_cut).

    Not by counting each partial clipping's nearest neighbour: single linkage joins a clipping
    to every clipping above its cut, so a cut low enough to reach a caption's reprint can also
    reach a sibling story's, and bridge two clusters that a count of nearest neighbours never
    sees (docs/model.md, "A clipping missing one modality"). -> {"text_only", "image_only",
    "val_<name>_ari" (at the chosen cut), "val_<name>_links", "val_<name>_false_links" (the
    share of every complete clipping, pooled again, whose nearest complete one is its own
    entity's / another's above the cut)}."""
    from clippings.evaluation.partial import partial_link_rates, partial_tops
    from clippings.runtime.modality import pattern_codes

    def serve_with(texts_weight: float):
        if not texts_weight:
            return None
        return lambda pooled, texts: with_text_evidence(pooled, texts, texts_weight, text_dim)

    tops = [partial_tops(s.image_emb, s.text_emb, s.image_present, s.text_present, s.entities, w,
                         texts=s.texts, serve=serve_with(text_weight), pooling=s.pooling) for s in sets]
    out: dict = {}
    for name in ("text_only", "image_only"):
        def aris(s: TowerSet) -> np.ndarray:
            r = with_partial(s, name)
            v, codes, truth = r.served(w, text_weight, text_dim), pattern_codes(r.image_present, r.text_present), \
                labels_of(r.entities)
            return np.array([adjusted_rand_score(truth, single_linkage(v, cut, codes, **{name: float(c)}))
                             for c in DEDUP_GRID])

        each = {id(s): aris(s) for s in sets}
        scores = over_sources(lambda s: each[id(s)], sets)
        best = partial_cut(name, list(each.values()), scores)
        out[name] = best
        out[f"val_{name}_ari"] = float(scores[int(np.argmin(np.abs(DEDUP_GRID - best)))])

        scored = [(s, t) for s, t in zip(sets, tops) if t["n"]]
        rates = {id(s): np.asarray(partial_link_rates(t, name, cut, **{name: best})) for s, t in scored}
        links, false_links = (tuple(over_sources(lambda s: rates[id(s)], [s for s, _ in scored])) if scored
                              else (0.0, 0.0))
        out[f"val_{name}_links"], out[f"val_{name}_false_links"] = float(links), float(false_links)
    return out
