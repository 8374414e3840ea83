"""Long news captions: a story's caption grows to a paragraph, as real photo captions do.

The short caption (captions.wire_caption) is one description between a dateline and a
credit. Real captions run to several sentences: the description, then what the desk added
(how many, who said what, what comes next) and a pointer to the story. A story's added
sentences are drawn once; its reprints keep, drop or reorder them, and another photo of the
same event carries most of the same sentences: whole sentences shared across different
clippings, which text alone cannot tell apart. The pointers ("See story on Page 3.") are
shared by unrelated stories too.
"""

from __future__ import annotations

import re

import numpy as np

from clippings.data.synth.captions import Facts, _fill

# Sentences a desk adds after the description; filled with the story's facts.
BODY = (
    "{who} said the damage would be repaired before winter.",
    "It was the largest crowd seen in {city} since {year2}.",
    "Police kept traffic moving on the main streets for {k} hours.",
    "{He} told reporters that {org} would ask the state for ${amount}.",
    "Members of {org} served coffee and sandwiches to the workers.",
    "Officials said a full report would be made to {org} next week.",
    "The Weather Bureau forecast fair and colder weather for the week end.",
    "Similar scenes were reported in several towns near {city}.",
    "{k} persons were treated at a hospital and released.",
    "{who} was accompanied by {his} wife and two sons.",
    "A committee of {k} citizens of {city} made the arrangements.",
    "The program was broadcast over a local radio station.",
    "Last year the same event drew {n} persons.",
    "Work on the {thing} began in {year2}.",
    "Insurance adjusters placed the loss at ${amount}.",
    "Schools in {city} were closed for the day.",
    "{who} thanked the volunteers of {org}.",
    "Another meeting is planned for next month.",
)
POINTERS = ("See story on Page {page}.", "Story on Page {page}.", "Other pictures on Page {page}.",
            "Related story on Page {page}.")


def draw_body(rng: np.random.Generator, f: Facts) -> tuple[str, ...]:
    """1 to 3 added sentences and, half the time, a pointer to the story."""
    n = int(rng.integers(1, 4))
    picks = rng.choice(len(BODY), size=n, replace=False)
    body = [_fill(BODY[i], f, "today", int(rng.integers(2))) for i in picks]
    if rng.random() < 0.5:
        body.append(POINTERS[int(rng.integers(len(POINTERS)))].format(page=int(rng.integers(2, 40))))
    return tuple(body)


def sibling_body(rng: np.random.Generator, f: Facts, body: tuple[str, ...]) -> tuple[str, ...]:
    """Another photo of the same event: the same added sentences, now and then one redrawn."""
    if body and rng.random() < 0.3:
        other = draw_body(rng, f)
        return body[:-1] + other[:1]
    return body


def with_body(caption: str, body: tuple[str, ...]) -> str:
    """The added sentences go before the credit, as agencies print them."""
    if not body:
        return caption
    text = " ".join(body)
    if caption.endswith(")") and " (" in caption:
        cut = caption.rfind(" (")
        return f"{caption[:cut]} {text}{caption[cut:]}"
    return f"{caption} {text}"


def reprint_body(rng: np.random.Generator, body: tuple[str, ...], variant: str) -> tuple[str, ...]:
    """What a reprint keeps of the added sentences: all of them for the wire copy; an edited
    copy drops one now and then; a rewrite keeps some, in another order."""
    if not body:
        return body
    keep = list(body)
    if variant == "wire":  # the wire copy as sent, or its added sentences in another order
        return tuple(keep[i] for i in rng.permutation(len(keep))) if rng.random() < 0.2 else body
    if variant == "edit" and len(keep) > 1 and rng.random() < 0.5:
        keep.pop(int(rng.integers(len(keep))))
    if variant == "rewrite":
        keep = [keep[i] for i in rng.permutation(len(keep))][: int(rng.integers(0, len(keep) + 1))]
    return tuple(keep)


_DATELINE = re.compile(r"^([A-Z][A-Z .'-]+), ([A-Z][A-Za-z.]+), ([A-Z][a-z]+\.? \d+) -- ")
_CREDIT = re.compile(r" \(([^()]+)\)$")


def restyle(rng: np.random.Generator, caption: str, kicker: str) -> str:
    """A paper's house style on a long caption: the dateline and the credit set another way
    or dropped, now and then a kicker above, the added sentences as they came."""
    out = caption
    m = _DATELINE.match(out)
    if m and rng.random() < 0.35:
        city, state = m.group(1), m.group(2)
        styles = (f"{city} -- ", f"{city} (AP) -- ", "", f"{city.title()}, {state} -- ")
        out = styles[int(rng.integers(len(styles)))] + out[m.end():]
    c = _CREDIT.search(out)
    if c and rng.random() < 0.35:
        styles = (f" -- {c.group(1)}", f" {c.group(1)} photo.", "", " (Staff photo)")
        out = out[: c.start()] + styles[int(rng.integers(len(styles)))]
    if kicker and rng.random() < 0.2:
        out = f"{kicker} {out}"
    return out
