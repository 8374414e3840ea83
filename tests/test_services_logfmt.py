"""key=value log lines: one record is one line, whatever a clipping id holds."""

from __future__ import annotations

import logging

import pytest

from clippings.services.ops.logfmt import kv

HOSTILE = [
    "a\rb",  # carriage return: overwrites the line on a terminal
    "a\nevent=forged",  # a forged second record
    "\x1b[2J\x1b[31mred",  # ANSI escapes: clear the screen, colour
    "\x00\x07\x08\x0b\x0c\x7f",  # other C0 controls and DEL
    "\x85\x9b31m",  # C1: next line, CSI
    "a\u2028b\u2029c",  # Unicode line and paragraph separators
    "\u202eevil\u2066",  # bidi override and isolate: reorder what the reader sees
    "\ud800",  # a lone surrogate (from a str that came through surrogateescape)
]


@pytest.mark.parametrize("value", HOSTILE, ids=["cr", "lf", "ansi", "c0", "c1", "separators", "bidi", "surrogate"])
def test_hostile_values_stay_on_one_line_without_control_characters(value):
    line = kv("dead_letter", id=value, detail=value)
    assert line.splitlines() == [line]  # str.splitlines splits on every Unicode line break
    assert line.isprintable()  # no control, format or separator character left
    assert line.encode("utf-8")  # writable to any UTF-8 log (no lone surrogate)


def test_escapes_are_readable_and_distinct():
    assert kv("e", id="a\rb") == r'event=e id="a\rb"'
    assert kv("e", id="\x1b[31m") == r'event=e id="\x1b[31m"'
    assert kv("e", id="a\u2028b") == r'event=e id="a\u2028b"'
    assert kv("e", id="\x85") == r'event=e id="\x85"'
    assert kv("e", id="a\\x1b") == r'event=e id="a\\x1b"'  # a literal backslash is escaped, not ambiguous


def test_ordinary_values_are_unchanged():
    assert kv("dlq", id="c-1", partition=0, detail="two words") == 'event=dlq id=c-1 partition=0 detail="two words"'
    assert kv("e", id="火事 at the mill") == 'event=e id="火事 at the mill"'
    assert kv("e", id="火事") == "event=e id=火事"
    assert kv("e", id="", note=None) == 'event=e id=""'
    assert kv("e", id='say "hi"') == r'event=e id="say \"hi\""'


def test_one_record_per_line_through_logging(caplog):
    log = logging.getLogger("test_logfmt")
    with caplog.at_level(logging.INFO):
        for value in HOSTILE:
            log.info(kv("dead_letter", id=value))
    assert len(caplog.text.splitlines()) == len(HOSTILE)
