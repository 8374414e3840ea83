"""key=value log lines: every event-level line names the clipping id, topic, partition, offset."""

from __future__ import annotations


def _quote(value: object) -> str:
    text = str(value)
    if not text or any(c in text for c in ' ="\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def kv(msg: str, **fields: object) -> str:
    """kv("dlq", id="c-1", partition=0) -> 'event=dlq id=c-1 partition=0' (None fields dropped)."""
    parts = [f"event={_quote(msg)}"]
    parts += [f"{k}={_quote(v)}" for k, v in fields.items() if v is not None]
    return " ".join(parts)
