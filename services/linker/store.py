"""Redis: the record of every linking decision, entity membership and merge.

Keys (PREFIX = redis_prefix):
  PREFIX:decision          hash  clipping id -> its link event (JSON): the idempotency record
  PREFIX:assigned          hash  clipping id -> entity it joined when decided
  PREFIX:canonical         hash  entity -> the entity it is part of now (itself unless merged)
  PREFIX:entities          hash  entity -> {"block", "founder", "partition", "offset", "created_ms"}
  PREFIX:members:ENTITY    set   clipping ids of a canonical entity
  PREFIX:merges            hash  absorbed entity -> {"into", "by", "at_ms"}
  PREFIX:watermark         hash  partition -> next offset of clippings.embedded recorded (never lowered)
  PREFIX:state_lost        hash  partition -> JSON: when and how the linker found Redis had lost state
  PREFIX:correction        hash  correction id -> {"status": applied|refused, "partition", "event", "detail"}:
                                 the idempotency record of reviewers' corrections
  PREFIX:corrections:P     list  the corrections applied to partition P, in order, with applied_at (correct.py)

A clipping's entity now: canonical[assigned[id]]. Every write of a batch goes in one
MULTI/EXEC; every command is idempotent, so a batch retried after a lost reply changes nothing.
The watermark is how a linker notices that Redis lost data (statecheck.py).

The store takes the decisions themselves (decide.py) and records each as its link event, the
bytes of `link_bytes`, which the linker also emits: a replay re-emits them byte for byte.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Callable, Iterable, TypeVar
from urllib.parse import urlsplit

import redis

from clippings.services.config import LinkerSettings
from clippings.services.linker.correct import Applied
from clippings.services.linker.decide import Decision, Outcome
from clippings.services.errors import StateStoreUnavailable
from clippings.services.ops.deadline import Deadline
from clippings.services.ops.logfmt import kv
from clippings.services.schemas import Correction, KafkaPosition, LinkEvent, Neighbour

log = logging.getLogger(__name__)
T = TypeVar("T")
_TRANSIENT = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)

# Raise each partition's watermark to ARGV's offset, never lower it (a replay from an older
# snapshot, or a partition's previous owner finishing a batch, writes lower offsets; 0 only
# reads); return what each held before, as the lost-state check needs it ('0': nothing).
_RAISE_WATERMARKS = """
local before = {}
for i = 1, #ARGV, 2 do
  local current = redis.call('HGET', KEYS[1], ARGV[i]) or '0'
  before[#before + 1] = current
  if tonumber(current) < tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return before
"""


def link_event(d: Decision) -> LinkEvent:
    return LinkEvent(
        id=d.id, block=d.block, entity_id=d.entity_id, is_duplicate=d.is_duplicate,
        matched_id=d.matched_id, similarity=d.similarity, probability=d.probability,
        neighbours=[Neighbour(id=n.id, similarity=n.similarity, entity_id=n.entity_id, probability=n.probability)
                    for n in d.neighbours],
        merged_entities=list(d.merged_entities), model_version=d.model_version, threshold=d.threshold,
        origin=d.origin, raw_ts_ms=d.raw_ts_ms, embedded_ts_ms=d.embedded_ts_ms, linked_ts_ms=d.linked_ts_ms,
        correction=d.correction,
    )


def link_bytes(o: Outcome) -> bytes:
    """The link event of an outcome, as emitted: a recorded one verbatim, else its decision serialised."""
    return o.recorded if o.recorded is not None else link_event(o.decision).to_bytes()


def redis_client(url: str, socket_timeout_s: float = 5.0, username: str | None = None,
                 password: str | None = None, ssl_ca_certs: str | None = None,
                 ssl_certfile: str | None = None, ssl_keyfile: str | None = None) -> redis.Redis:
    kwargs: dict = {"socket_timeout": socket_timeout_s, "socket_connect_timeout": socket_timeout_s}
    if username:
        kwargs["username"] = username
    if password:
        kwargs["password"] = password
    if urlsplit(url).scheme == "rediss":
        kwargs |= {k: v for k, v in (("ssl_ca_certs", ssl_ca_certs), ("ssl_certfile", ssl_certfile),
                                     ("ssl_keyfile", ssl_keyfile)) if v}
    return redis.Redis.from_url(url, **kwargs)


class RedisState:
    def __init__(self, client: redis.Redis, prefix: str, timeout_s: float = 120.0,
                 on_reachable: Callable[[bool], None] = lambda ok: None):
        self.client = client
        self.prefix = prefix
        self.timeout_s = timeout_s
        self._on_reachable = on_reachable

    @classmethod
    def from_settings(cls, s: LinkerSettings, on_reachable: Callable[[bool], None] = lambda ok: None) -> "RedisState":
        client = redis_client(
            s.redis_url.get_secret_value(), s.redis_socket_timeout_s, s.redis_username,
            s.redis_password.get_secret_value() if s.redis_password else None,
            s.redis_ssl_ca_certs, s.redis_ssl_certfile, s.redis_ssl_keyfile,
        )
        return cls(client, s.redis_prefix, s.redis_timeout_s, on_reachable)

    def key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    def members_key(self, entity: str) -> str:
        return f"{self.prefix}:members:{entity}"

    def _retry(self, op: str, fn: Callable[[], T]) -> T:
        """Ride out a Redis restart: retry with backoff, give up (and crash) after timeout_s."""
        deadline, delay = None, 0.1
        while True:
            try:
                result = fn()
            except _TRANSIENT as exc:
                self._on_reachable(False)
                deadline = deadline or Deadline(self.timeout_s)  # counted from the first failure
                if deadline.expired():
                    ck = self.client.connection_pool.connection_kwargs
                    where = ck.get("path") or f"{ck.get('host')}:{ck.get('port')}"
                    raise StateStoreUnavailable(f"Redis at {where} unreachable for {self.timeout_s:.0f}s ({op}): {exc}") from exc
                log.warning(kv("redis_unavailable", op=op, retry_in_s=delay, detail=str(exc)))
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
            else:
                self._on_reachable(True)
                return result

    def ping(self) -> bool:
        return bool(self._retry("ping", self.client.ping))

    def decisions(self, ids: list[str]) -> dict[str, bytes]:
        """The recorded link events of those clippings that have one."""
        if not ids:
            return {}
        values = self._retry("read", lambda: self.client.hmget(self.key("decision"), ids))
        return {cid: v for cid, v in zip(ids, values) if v is not None}

    def record(self, outcomes: Iterable[Outcome], watermarks: dict[int, int]) -> dict[int, int]:
        """Write the batch's new decisions, in decision order, and raise the partitions' watermarks
        (0: leave as it is), as one transaction -> each watermark as Redis held it just before."""
        fresh = [o for o in outcomes if o.fresh is not None]
        parts = sorted(watermarks)
        now_ms = int(time.time() * 1000)

        def transaction() -> list:
            # Built anew for every try: a pipeline forgets its commands once executed, even when
            # that failed, and a retry would run an empty transaction.
            pipe = self.client.pipeline(transaction=True)
            if fresh:
                self._queue_decisions(pipe, fresh, now_ms)
            if parts:
                self._queue_watermarks(pipe, {p: watermarks[p] for p in parts})
            return pipe.execute()

        replies = self._retry("write", transaction)
        return dict(zip(parts, map(int, replies[-1]))) if parts else {}

    def _queue_watermarks(self, pipe, watermarks: dict[int, int]) -> None:
        args = [x for p, offset in watermarks.items() for x in (p, offset)]
        pipe.eval(_RAISE_WATERMARKS, 1, self.key("watermark"), *args)

    def _queue_decisions(self, pipe, fresh: list[Outcome], now_ms: int) -> None:
        """The write-once fields of the whole batch as one HSET per hash (a batch of 64 new
        clippings: 4 commands instead of 256); memberships and merges follow in decision order,
        since a merge moves the members that earlier decisions of the batch added."""
        pipe.hset(self.key("decision"), mapping={o.fresh.id: link_event(o.fresh).to_bytes() for o in fresh})
        pipe.hset(self.key("assigned"), mapping={o.fresh.id: o.fresh.entity_id for o in fresh})
        created = [o for o in fresh if o.created]
        if created:
            pipe.hset(self.key("entities"), mapping={o.created: json.dumps(
                {"block": o.fresh.block, "founder": o.fresh.id, "partition": o.item.position.partition,
                 "offset": o.item.position.offset, "created_ms": now_ms}) for o in created})
            pipe.hset(self.key("canonical"), mapping={o.created: o.created for o in created})
        for o in fresh:
            link = o.fresh
            pipe.sadd(self.members_key(link.entity_id), link.id)
            for absorbed, moved in o.merged:
                self._queue_merge(pipe, link.entity_id, absorbed, moved, link.id, now_ms)

    # Reviewers' corrections (correct.py, corrections.py).
    def correction(self, correction_id: str) -> dict | None:
        """What became of a correction already consumed, or None."""
        value = self._retry("read", lambda: self.client.hget(self.key("correction"), correction_id))
        return json.loads(value) if value is not None else None

    def correction_log(self, partition: int, start: int) -> list[dict]:
        """The corrections applied to a partition, from the start-th on, in the order applied."""
        values = self._retry("read", lambda: self.client.lrange(self.key(f"corrections:{partition}"), start, -1))
        return [json.loads(v) for v in values]

    def record_correction(self, a: Applied, partition: int, applied_at: int, origin: KafkaPosition, event: bytes | None) -> None:
        """One transaction: the idempotency record, the partition's log entry, the membership change."""
        c, now_ms = a.correction, int(time.time() * 1000)
        entry = {"id": c.id, "applied_at": applied_at, "correction": c.model_dump(mode="json"),
                 "origin": origin.model_dump(mode="json")}

        def transaction() -> list:
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(self.key("correction"), c.id, json.dumps(
                {"status": "applied", "partition": partition, "event": event.decode() if event else None}))
            pipe.rpush(self.key(f"corrections:{partition}"), json.dumps(entry))
            if a.decision is not None and c.action == "reject":
                self._queue_move(pipe, a, now_ms)
            for absorbed, moved in a.merged:
                self._queue_merge(pipe, a.decision.entity_id, absorbed, moved, c.clipping_id, now_ms)
            return pipe.execute()

        self._retry("write", transaction)

    def record_refused(self, c: Correction, partition: int, detail: str) -> None:
        self._retry("write", lambda: self.client.hset(self.key("correction"), c.id, json.dumps(
            {"status": "refused", "partition": partition, "event": None, "detail": detail})))

    def _queue_move(self, pipe, a: Applied, now_ms: int) -> None:
        d = a.decision
        if a.created:
            pipe.hset(self.key("entities"), a.created, json.dumps(
                {"block": d.block, "founder": d.id, "partition": d.origin.partition, "offset": d.origin.offset,
                 "created_ms": now_ms, "correction": a.correction.id}))
            pipe.hset(self.key("canonical"), a.created, a.created)
        pipe.hset(self.key("assigned"), d.id, d.entity_id)
        pipe.srem(self.members_key(a.left), d.id)
        pipe.sadd(self.members_key(d.entity_id), d.id)

    def _queue_merge(self, pipe, into: str, absorbed: str, moved: list[str], by: str, now_ms: int) -> None:
        pipe.hset(self.key("canonical"), mapping={e: into for e in moved})
        pipe.sunionstore(self.members_key(into), [self.members_key(into), self.members_key(absorbed)])
        pipe.delete(self.members_key(absorbed))
        pipe.hset(self.key("merges"), absorbed, json.dumps({"into": into, "by": by, "at_ms": now_ms}))

    # The lost-state check (statecheck.py).
    def watermarks(self, partitions: list[int]) -> dict[int, int]:
        """partition -> the next offset Redis holds as recorded (0: none)."""
        if not partitions:
            return {}
        values = self._retry("read", lambda: self.client.hmget(self.key("watermark"), [str(p) for p in partitions]))
        return {p: int(v) if v is not None else 0 for p, v in zip(partitions, values)}

    def lost_marks(self, partitions: list[int]) -> dict[int, dict]:
        """The unresolved findings of lost state among these partitions."""
        if not partitions:
            return {}
        values = self._retry("read", lambda: self.client.hmget(self.key("state_lost"), [str(p) for p in partitions]))
        return {p: json.loads(v) for p, v in zip(partitions, values) if v is not None}

    def mark_lost(self, partition: int, finding: dict, watermark: int) -> None:
        """Record a finding (an operator removes it once resolved) and bring the watermark up to
        what the linker knows was recorded, so the same loss is reported once."""

        def transaction() -> list:
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(self.key("state_lost"), str(partition), json.dumps(finding, sort_keys=True))
            self._queue_watermarks(pipe, {partition: watermark})
            return pipe.execute()

        self._retry("write", transaction)

    def appendonly(self) -> tuple[str | None, str]:
        """Redis' appendonly setting -> ("yes" | "no", "") or (None, why it could not be read)."""
        try:
            reply = self._retry("config", lambda: self.client.config_get("appendonly"))
        except redis.ResponseError as exc:  # managed Redis often refuses CONFIG
            return None, str(exc)
        found = {(k.decode() if isinstance(k, bytes) else k): v for k, v in reply.items()} if isinstance(reply, dict) else {}
        value = found.get("appendonly")
        if value is None:
            return None, f"no appendonly in the reply {reply!r}"
        return (value.decode() if isinstance(value, bytes) else str(value)), ""

    # Read-side queries: tests, the demo summary, operators.
    def current_entities(self, ids: list[str]) -> dict[str, str]:
        """clipping id -> the canonical entity it belongs to now (absent: not decided)."""
        if not ids:
            return {}
        assigned = self._retry("read", lambda: self.client.hmget(self.key("assigned"), ids))
        known = [(cid, e.decode()) for cid, e in zip(ids, assigned) if e is not None]
        roots = self._retry("read", lambda: self.client.hmget(self.key("canonical"), [e for _, e in known])) if known else []
        return {cid: (r.decode() if r is not None else e) for (cid, e), r in zip(known, roots)}

    def members(self, entity: str) -> set[str]:
        return {m.decode() for m in self._retry("read", lambda: self.client.smembers(self.members_key(entity)))}

    def entity_count(self) -> int:
        """Canonical entities: minted minus merged away."""
        return self._retry("read", lambda: self.client.hlen(self.key("entities")) - self.client.hlen(self.key("merges")))

    def decision_count(self) -> int:
        return self._retry("read", lambda: self.client.hlen(self.key("decision")))

    def delete_all(self) -> int:
        """Remove every key under the prefix (tests and the demo clean up after themselves)."""
        keys = list(self.client.scan_iter(match=f"{self.prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            self.client.delete(*keys[start : start + 1000])
        return len(keys)
