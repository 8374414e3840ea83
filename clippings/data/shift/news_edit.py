"""How one paper prints a wire caption: the reprint's own cut, order, wording and furniture.

Every reprint of a story starts from the wire caption (news_text.Story) and goes through a
copy desk. Every desk restyles the dateline ("(AP) —", with the date, "--") or drops it,
restyles or drops the photo credit and sets it at the end or on its own line above, and
may add a kicker (the story's or a generic one) or, without a dateline, a lead-in set in
capitals. 40% of desks run the sentences as sent; the others, each step more likely the
higher the desk's edit intensity, cut sentences from the bottom (papers cut to fit),
shorten sentences (an appositive or a trailing clause dropped), move a sentence, and
rephrase words ("firefighters" -> "fire crews", "on Tuesday" -> "Tuesday", small numbers
spelled out).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from clippings.data.shift import news_words as w
from clippings.data.shift.news_text import Story

DASHES = ("—", "—", "—", "--", "-")
VERBATIM_SHARE = 0.4


@dataclass(frozen=True)
class Printed:
    kicker: str  # "" when none
    body: str  # dateline + sentences
    credit: str  # "" when none
    credit_above: bool  # the credit on its own line above the caption, else at its end
    ops: tuple[str, ...]  # what the desk did

    @property
    def text(self) -> str:
        """The caption as a reader reads it: kicker, (credit above,) body, (credit)."""
        parts = [self.kicker] + ([self.credit] if self.credit_above else []) + [self.body]
        parts += [] if self.credit_above else [self.credit]
        return " ".join(p for p in parts if p)


def _dateline(story: Story, rng: np.random.Generator, ops: list[str]) -> str:
    r = rng.random()
    dash = DASHES[int(rng.integers(len(DASHES)))]
    if r < 0.12:
        ops.append("no_dateline")
        return ""
    if r < 0.55 and story.agency in ("AP", "Reuters", "AFP"):
        tag = {"AP": "(AP)", "Reuters": "(Reuters)", "AFP": "(AFP)"}[story.agency]
        return f"{story.dateline} {tag} {dash}"
    if r < 0.75:
        ops.append("dated_dateline")
        return f"{story.dateline}, {story.date} {dash}"
    return f"{story.dateline} {dash}"


_CLAUSE = re.compile(r",? (who|which|where|after|as|whose|according to|since|including) [^.\"]*(?=\.)")
_AGE = re.compile(r", \d{2},")


def _shorten(sentence: str, rng: np.random.Generator) -> str:
    short = _AGE.sub("", sentence) if rng.random() < 0.5 else sentence
    m = _CLAUSE.search(short)
    if m and m.start() > 25:
        short = short[: m.start()] + short[m.end():]
    return short


def _rephrase(text: str, rng: np.random.Generator) -> str:
    pairs = [p for p in w.REPHRASE if re.search(rf"\b{re.escape(p[0])}\b", text, re.IGNORECASE)]
    for i in rng.permutation(len(pairs))[: int(rng.integers(1, 4))]:
        a, b = pairs[int(i)]
        text = re.sub(rf"\b{re.escape(a)}\b", b, text, count=1)
        text = re.sub(rf"\b{re.escape(a.capitalize())}\b", b.capitalize(), text, count=1)
    if rng.random() < 0.6:
        text = re.sub(r"\bon (Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b", r"\1", text)
    if rng.random() < 0.5:
        text = re.sub(r"\b([2-9])\b(?![.,]\d)", lambda m: w.NUMBER_WORDS[int(m.group(1))], text)
    return text


def _sentences(story: Story, rng: np.random.Generator, intensity: float, ops: list[str]) -> list[str]:
    sents = list(story.sentences)
    if len(sents) > 1 and rng.random() < 0.5 * intensity:
        keep = int(rng.integers(max(1, len(sents) - 3), len(sents)))
        sents = sents[:keep]
        ops.append(f"cut_to_{keep}")
    if len(sents) > 2 and rng.random() < 0.3 * intensity:
        i, j = sorted(int(x) for x in rng.choice(np.arange(1, len(sents)), 2, replace=False))
        sents[i], sents[j] = sents[j], sents[i]
        ops.append("reordered")
    if rng.random() < 0.5 * intensity:
        for i in rng.permutation(len(sents))[: int(rng.integers(1, 3))]:
            sents[int(i)] = _shorten(sents[int(i)], rng)
        ops.append("shortened")
    if rng.random() < 0.55 * intensity:
        sents = [_rephrase(s, rng) for s in sents]
        ops.append("rephrased")
    return sents


def _credit(story: Story, rng: np.random.Generator, ops: list[str]) -> str:
    if rng.random() < 0.22:
        ops.append("no_credit")
        return ""
    styles = w.AGENCY_CREDITS[story.agency]
    style = styles[0] if rng.random() < 0.5 else styles[int(rng.integers(len(styles)))]
    return style.format(p=story.photographer, paper=story.paper, org=story.org.removeprefix("the "))


def _lead_in_caps(body: str, rng: np.random.Generator) -> str:
    words = body.split(" ")
    n = min(len(words), int(rng.integers(2, 5)))
    return " ".join([x.upper() for x in words[:n]] + words[n:])


def reprint(story: Story, rng: np.random.Generator) -> Printed:
    """One paper's caption of the story's photo."""
    ops: list[str] = []
    # Wire copy mostly runs as sent: 40% of desks change only the furniture (dateline, credit, kicker).
    intensity = 0.0 if rng.random() < VERBATIM_SHARE else float(rng.uniform(0.2, 1.0))
    dateline = _dateline(story, rng, ops)
    sents = _sentences(story, rng, intensity, ops)
    body = " ".join(sents)
    if not dateline and rng.random() < 0.25:
        body = _lead_in_caps(body, rng)
        ops.append("caps_lead_in")
    body = f"{dateline} {body}" if dateline else body
    kicker = ""
    if rng.random() < 0.3:
        kicker = story.kicker if rng.random() < 0.7 else w.GENERIC_KICKERS[int(rng.integers(len(w.GENERIC_KICKERS)))]
        ops.append("kicker")
    credit = _credit(story, rng, ops)
    above = bool(credit) and rng.random() < 0.25
    return Printed(kicker, body, credit, above, tuple(ops))


__all__ = ["Printed", "reprint"]
