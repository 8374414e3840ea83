"""The linker's in-memory state of one partition of clippings.embedded.

Derived state: the block indexes, which entity each clipping joined, and the union-find of
entities (Entities, also what `clippings tail` groups link events with). It is rebuilt from a
snapshot plus a replay of the topic, and equals what Redis records for the partition (see
decide.py for how replays keep them equal).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from clippings.services.linker.growth import GrowthPolicy
from clippings.services.linker.index import BlockIndex


def entity_id_for(clipping_id: str) -> str:
    """An entity is named after the clipping that founded it: stable and the same on any replay."""
    return f"e-{clipping_id}"


@dataclass
class Entities:
    """The union-find of entities, kept flat: every entity maps straight to its root (a merge
    re-points the absorbed ones), so a lookup is one dict read and a merge lists what moved,
    which is what Redis records."""

    parent: dict[str, str] = field(default_factory=dict)  # entity -> root entity (roots map to themselves)
    seq: dict[str, int] = field(default_factory=dict)  # entity -> offset of its founding record: lower is older
    absorbed: dict[str, list[str]] = field(default_factory=dict)  # root -> entities merged into it
    # Cannot-links a reviewer's reject made: root -> roots it may never merge with (both ways).
    apart: dict[str, set[str]] = field(default_factory=dict)

    def __contains__(self, entity: str) -> bool:
        return entity in self.parent

    def add(self, entity: str, seq: int = 0) -> None:
        self.parent[entity] = entity
        self.seq[entity] = seq
        self.absorbed[entity] = []

    def root(self, entity: str) -> str:
        return self.parent[entity]

    def merge(self, into: str, other: str) -> list[str]:
        """Root `other` joins root `into`; -> every entity re-pointed (other and what it had absorbed)."""
        moved = [other] + self.absorbed.pop(other)
        for entity in moved:
            self.parent[entity] = into
        self.absorbed[into].extend(moved)
        for far in self.apart.pop(other, set()):  # other's cannot-links become into's
            self.apart[far].discard(other)
            if far != into:  # a reviewer's merge of two apart entities lifts their cannot-link
                self.apart[far].add(into)
                self.apart.setdefault(into, set()).add(far)
            elif not self.apart[far]:
                del self.apart[far]
        return moved

    def separate(self, a: str, b: str) -> None:
        """Roots a and b may never be merged by a decision (a reviewer said they differ)."""
        self.apart.setdefault(a, set()).add(b)
        self.apart.setdefault(b, set()).add(a)

    def compatible(self, roots: list[str]) -> list[str]:
        """The roots a decision may join, most similar first: each one apart from none before it."""
        if not self.apart:
            return roots
        chosen: list[str] = []
        for r in roots:
            if not any(c in self.apart.get(r, ()) for c in chosen):
                chosen.append(r)
        return chosen

    def find(self, entity: str) -> str:
        """The root of an entity, added as its own root when unknown (a reader of link events)."""
        if entity not in self.parent:
            self.add(entity)
        return self.parent[entity]

    def union(self, a: str, b: str) -> str:
        """Join the entities of a and b (added when unknown) into a's root -> that root."""
        into, other = self.find(a), self.find(b)
        if other != into:
            self.merge(into, other)
        return into

    def oldest(self, roots: set[str]) -> str:
        return min(roots, key=lambda e: (self.seq[e], e))

    def __len__(self) -> int:
        """Root entities."""
        return len(self.absorbed)


@dataclass
class PartitionState:
    topic: str
    partition: int
    dim: int
    index_spec: str
    model_version: str
    next_offset: int = 0  # every record below it is reflected here
    blocks: dict[str, BlockIndex] = field(default_factory=dict)
    # Under a model with cuts for clippings missing a modality, those clippings are indexed
    # apart, per block: a complete clipping searches them down to the lower cut, and the large
    # index of complete ones only down to its own (decide.py).
    partial_blocks: dict[str, BlockIndex] = field(default_factory=dict)
    clip_entity: dict[str, str] = field(default_factory=dict)  # clipping -> entity it joined (not re-pointed)
    partial: dict[str, str] = field(default_factory=dict)  # clipping of partial_blocks -> what it has (TEXT_ONLY, IMAGE_ONLY)
    entities: Entities = field(default_factory=Entities)
    changed_since_snapshot: int = 0
    corrections_applied: int = 0  # how many of the partition's recorded corrections (Redis' log) are in here
    # Recorded corrections not in here yet, (applied_at, correction) in log order: each is applied
    # before the first record at or past its applied_at, where it was applied live (correct.py).
    pending: list = field(default_factory=list)
    gpu_min_vectors: int = 0  # blocks move to the GPU at this size (0: never; index.py)
    growth: GrowthPolicy | None = None  # when blocks move from exact to approximate search (growth.py)

    @property
    def parent(self) -> dict[str, str]:
        return self.entities.parent

    @property
    def seq(self) -> dict[str, int]:
        return self.entities.seq

    @property
    def absorbed(self) -> dict[str, list[str]]:
        return self.entities.absorbed

    def block(self, name: str, partial: bool = False) -> BlockIndex:
        indexes = self.partial_blocks if partial else self.blocks
        index = indexes.get(name)
        if index is None:
            index = indexes[name] = BlockIndex(self.dim, self.index_spec, gpu_min_vectors=self.gpu_min_vectors,
                                               growth=self.growth)
        return index

    def indexes(self) -> list[tuple[str, BlockIndex]]:
        """Every index, named for metrics and logs: the block, or "<block> (partial)"."""
        return list(self.blocks.items()) + [(f"{b} (partial)", index) for b, index in self.partial_blocks.items()]

    def root(self, entity: str) -> str:
        return self.entities.root(entity)

    def entity_of(self, clipping_id: str) -> str:
        return self.entities.root(self.clip_entity[clipping_id])

    def knows(self, clipping_id: str) -> bool:
        return clipping_id in self.clip_entity

    def new_entity(self, entity: str, seq: int) -> None:
        self.entities.add(entity, seq)

    def merge(self, into: str, other: str) -> list[str]:
        return self.entities.merge(into, other)

    def oldest(self, roots: set[str]) -> str:
        return self.entities.oldest(roots)

    def assign(self, clipping_id: str, entity: str) -> None:
        self.clip_entity[clipping_id] = entity

    def add_vectors(self, block: str, vectors: np.ndarray, ids: list[str], partial: bool = False) -> None:
        self.block(block, partial).add(vectors, ids)

    def entity_count(self) -> int:
        return len(self.entities)
