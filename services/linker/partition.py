"""The linker's in-memory state of one partition of clippings.embedded.

Derived state: the block indexes, which entity each clipping joined, and the union-find of
entities. Every entity maps straight to its root (merges re-point the absorbed ones), so a
lookup is one dict read. It is rebuilt from a snapshot plus a replay of the topic, and equals
what Redis records for the partition (see decide.py for how replays keep them equal).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from clippings.services.linker.index import BlockIndex


def entity_id_for(clipping_id: str) -> str:
    """An entity is named after the clipping that founded it: stable and the same on any replay."""
    return f"e-{clipping_id}"


@dataclass
class PartitionState:
    topic: str
    partition: int
    dim: int
    index_spec: str
    model_version: str
    next_offset: int = 0  # every record below it is reflected here
    blocks: dict[str, BlockIndex] = field(default_factory=dict)
    clip_entity: dict[str, str] = field(default_factory=dict)  # clipping -> entity it joined (not re-pointed)
    parent: dict[str, str] = field(default_factory=dict)  # entity -> root entity (roots map to themselves)
    seq: dict[str, int] = field(default_factory=dict)  # entity -> offset of its founding record: lower is older
    absorbed: dict[str, list[str]] = field(default_factory=dict)  # root -> entities merged into it
    changed_since_snapshot: int = 0

    def block(self, name: str) -> BlockIndex:
        index = self.blocks.get(name)
        if index is None:
            index = self.blocks[name] = BlockIndex(self.dim, self.index_spec)
        return index

    def root(self, entity: str) -> str:
        return self.parent[entity]

    def entity_of(self, clipping_id: str) -> str:
        return self.parent[self.clip_entity[clipping_id]]

    def knows(self, clipping_id: str) -> bool:
        return clipping_id in self.clip_entity

    def new_entity(self, entity: str, seq: int) -> None:
        self.parent[entity] = entity
        self.seq[entity] = seq
        self.absorbed[entity] = []

    def merge(self, into: str, other: str) -> list[str]:
        """Root `other` joins root `into`; -> every entity re-pointed (other and what it had absorbed)."""
        moved = [other] + self.absorbed.pop(other)
        for entity in moved:
            self.parent[entity] = into
        self.absorbed[into].extend(moved)
        return moved

    def oldest(self, roots: set[str]) -> str:
        return min(roots, key=lambda e: (self.seq[e], e))

    def assign(self, clipping_id: str, entity: str) -> None:
        self.clip_entity[clipping_id] = entity

    def add_vectors(self, block: str, vectors: np.ndarray, ids: list[str]) -> None:
        self.block(block).add(vectors, ids)

    def entity_count(self) -> int:
        return len(self.absorbed)
