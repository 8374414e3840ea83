"""Snapshots of a linker partition: the FAISS indexes and entity state, with the offset they cover.

Layout: SNAPSHOT_DIR/TOPIC/PARTITION/
    CURRENT                      names the snapshot to load
    snap-<next offset>-<nonce>/  state.json + one block-NNNNN.faiss per block

A snapshot is written in a temporary folder, renamed into place, and only then named in
CURRENT (itself replaced by rename), so a crash at any point leaves the previous snapshot
loadable. Any snapshot is a valid starting point: it is the state after a prefix of the
partition, and the rest is replayed from the topic with the decisions Redis recorded.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from pathlib import Path

from clippings.services.errors import SnapshotError
from clippings.services.linker.index import BlockIndex
from clippings.services.ops.logfmt import kv
from clippings.services.linker.partition import PartitionState

log = logging.getLogger(__name__)
FORMAT = 1


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SnapshotStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def partition_dir(self, topic: str, partition: int) -> Path:
        return self.root / topic / str(partition)

    def save(self, state: PartitionState) -> Path:
        pdir = self.partition_dir(state.topic, state.partition)
        name = f"snap-{state.next_offset:020d}-{uuid.uuid4().hex[:8]}"
        tmp = pdir / f".{name}.tmp"
        try:
            tmp.mkdir(parents=True)
            blocks = []
            every = [(b, False, x) for b, x in sorted(state.blocks.items())]
            every += [(b, True, x) for b, x in sorted(state.partial_blocks.items())]
            for i, (block, partial, index) in enumerate(every):
                file = f"block-{i:05d}.faiss"
                index.save(tmp / file)
                blocks.append({"name": block, "file": file, "ids": index.ids, "link_recall": index.link_recall}
                              | ({"partial": True} if partial else {}))
            doc = {
                "format": FORMAT,
                "topic": state.topic,
                "partition": state.partition,
                "next_offset": state.next_offset,
                "model_version": state.model_version,
                "dim": state.dim,
                "index_spec": state.index_spec,
                "blocks": blocks,
                "clip_entity": state.clip_entity,
                "partial": state.partial,
                "entities": {e: [state.seq[e], root] for e, root in state.parent.items()},
                "apart": {e: sorted(far) for e, far in state.entities.apart.items()},
                "corrections_applied": state.corrections_applied,
            }
            (tmp / "state.json").write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
            for f in tmp.iterdir():
                _fsync(f)
            final = pdir / name
            os.rename(tmp, final)
            current_tmp = pdir / ".CURRENT.tmp"
            current_tmp.write_text(name, encoding="utf-8")
            _fsync(current_tmp)
            os.replace(current_tmp, pdir / "CURRENT")
            _fsync(pdir)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise SnapshotError(f"cannot write snapshot of {state.topic}/{state.partition} in {pdir}: {exc}") from exc
        for old in pdir.iterdir():
            if old.is_dir() and old.name != name and (old.name.startswith("snap-") or old.name.endswith(".tmp")):
                shutil.rmtree(old, ignore_errors=True)
        state.changed_since_snapshot = 0
        return final

    def load(self, topic: str, partition: int, model_version: str, dim: int, index_spec: str) -> PartitionState | None:
        """The partition's latest snapshot, or None when there is none usable (replay from the start)."""
        pdir = self.partition_dir(topic, partition)
        try:
            name = (pdir / "CURRENT").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        sdir = pdir / name
        try:
            doc = json.loads((sdir / "state.json").read_text(encoding="utf-8"))
            if doc["format"] != FORMAT:
                raise SnapshotError(f"format {doc['format']} (this linker reads {FORMAT})")
            found = (doc["model_version"], doc["dim"], doc["index_spec"])
            if found != (model_version, dim, index_spec):
                log.warning(kv("snapshot_ignored", path=sdir, reason="other model or index",
                               snapshot=found, wanted=(model_version, dim, index_spec)))
                return None
            state = PartitionState(topic, partition, dim, index_spec, model_version, next_offset=doc["next_offset"])
            for b in doc["blocks"]:
                indexes = state.partial_blocks if b.get("partial") else state.blocks
                indexes[b["name"]] = BlockIndex.load(sdir / b["file"], dim, index_spec, b["ids"],
                                                     link_recall=b.get("link_recall"))
            state.clip_entity = doc["clip_entity"]
            state.partial = doc.get("partial", {})
            for entity, (seq, root) in doc["entities"].items():
                state.parent[entity] = root
                state.seq[entity] = seq
            for entity, root in state.parent.items():
                state.absorbed.setdefault(root, [])
                if entity != root:
                    state.absorbed[root].append(entity)
            state.entities.apart = {e: set(far) for e, far in doc.get("apart", {}).items()}
            state.corrections_applied = doc.get("corrections_applied", 0)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise SnapshotError(f"unreadable snapshot {sdir}: {exc}") from exc
        return state
