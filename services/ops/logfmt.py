"""key=value log lines: every event-level line names the clipping id, topic, partition, offset.

Values come from records (ids, error details), so an attacker writes part of the log: every
character that could end the line, move the cursor or reorder the text (C0/C1 controls, ANSI
escapes, U+2028/2029, bidi marks, lone surrogates) is escaped, so one record is one line.
"""

from __future__ import annotations

_SHORT = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(c: str) -> str:
    if c in _SHORT:
        return _SHORT[c]
    if c == " " or c.isprintable():  # isprintable: False for Cc, Cf, Cs, Co, Cn, Zl, Zp, Zs but ' '
        return c
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _quote(value: object) -> str:
    text = str(value)
    if text and text.isprintable() and not any(c in text for c in ' ="\\'):
        return text
    return '"' + "".join(_escape_char(c) for c in text) + '"'


def kv(msg: str, **fields: object) -> str:
    """kv("dlq", id="c-1", partition=0) -> 'event=dlq id=c-1 partition=0' (None fields dropped)."""
    parts = [f"event={_quote(msg)}"]
    parts += [f"{k}={_quote(v)}" for k, v in fields.items() if v is not None]
    return " ".join(parts)
