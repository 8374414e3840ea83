"""Which records a task asks for: entity by entity, the role and split of each instance.

The layout is the same for every kind of data: `train` gives every entity M instances;
`link` gives every entity one corpus record and one or more queries, plus about 10% of
queries from entities that are not in the corpus; `dedup` gives clusters of 1..M noisy
duplicates, many of them singletons, with whole entities in val or in test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UNLISTED_QUERY_SHARE = 0.10  # queries whose entity has no corpus record
SINGLETON_SHARE = 0.45  # dedup clusters of size 1


@dataclass(frozen=True)
class Slot:
    entity: int  # index of the entity within the data set
    role: str  # train | corpus | query | dup: how the instance is printed
    split: str  # the dataset split it is written to
    k: int  # instance number within the entity and role


def task_layout(task: str, entities: int, instances: int, rng: np.random.Generator) -> tuple[int, list[Slot]]:
    """-> (number of entities drawn, the slots in writing order)."""
    if task == "train":
        return entities, [Slot(e, "train", "train", k) for e in range(entities) for k in range(instances)]
    if task == "link":
        return _link(entities, instances, rng)
    if task == "dedup":
        return entities, _dedup(entities, instances, rng)
    raise ValueError(f"unknown task {task!r}")


def _link(entities: int, max_queries: int, rng: np.random.Generator) -> tuple[int, list[Slot]]:
    # Listed entities average (1 + max_queries) / 2 queries; unlisted ones get as many, so
    # the unlisted share of entities equals the unlisted share of queries.
    unlisted = int(round(entities * UNLISTED_QUERY_SHARE / (1 - UNLISTED_QUERY_SHARE)))
    total = entities + unlisted
    unlisted_ids = set(rng.choice(total, size=unlisted, replace=False).tolist()) if unlisted else set()
    slots: list[Slot] = []
    for e in range(total):
        if e not in unlisted_ids:
            slots.append(Slot(e, "corpus", "corpus", 0))
        n_queries = int(rng.integers(1, max_queries + 1))
        slots += [Slot(e, "query", "query", k) for k in range(n_queries)]
    return total, slots


def cluster_sizes(entities: int, max_size: int, rng: np.random.Generator) -> list[int]:
    """Many singletons, then sizes 2..max_size with weights falling as 1/size."""
    if max_size <= 1:
        return [1] * entities
    larger = np.arange(2, max_size + 1)
    weights = 1.0 / larger
    probs = np.concatenate([[SINGLETON_SHARE], (1 - SINGLETON_SHARE) * weights / weights.sum()])
    return (rng.choice(np.arange(1, max_size + 1), size=entities, p=probs)).tolist()


def _dedup(entities: int, max_size: int, rng: np.random.Generator) -> list[Slot]:
    sizes = cluster_sizes(entities, max_size, rng)
    order = rng.permutation(entities)
    split_of = {int(e): ("val" if i < entities // 2 else "test") for i, e in enumerate(order)}
    return [Slot(e, "dup", split_of[e], k) for e in range(entities) for k in range(sizes[e])]
