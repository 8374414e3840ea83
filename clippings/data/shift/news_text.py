"""Stories of the news shift set and their wire captions, by a grammar written for this module.

A story (one entity) belongs to an event. Most events have one story; about a third have
two or three: other photos of the same fire, flood or game, whose captions share the
dateline, often the kicker, and the event's background sentences, but not the lead (what
the photo shows). Officials recur across unrelated events (the same mayor at a fire and at a
ribbon cutting; the same senator's portrait in two stories), and a pool of boilerplate
sentences ("No injuries were reported.") is pasted into stories that have nothing to do
with each other. Those are the hard negatives: text that matches without being a duplicate.

A wire caption is 2-5 sentences, 150-600 characters: dateline, lead, details, a quote,
background, maybe boilerplate, and a photo credit (news_edit.py prints the reprints).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clippings.data.shift import news_words as w
from clippings.data.shift.news_topics import TOPIC_SHARE, TOPICS

FAMILY_SIZES = ((1, 0.7), (2, 0.2), (3, 0.1))  # stories per event
GENERIC_KICKER_SHARE = 0.3
BOILERPLATE_SHARE = 0.4
MIN_CHARS, MAX_CHARS = 150, 600


@dataclass(frozen=True)
class Person:
    id: int
    first: str
    last: str
    office: str  # "" for a private person
    female: bool
    face: int  # seed of the face a portrait of this person shows


@dataclass(frozen=True)
class Story:
    index: int
    event: int  # stories of one event share it
    topic: str
    dateline: str  # "GREENVILLE, S.C."
    date: str  # "March 3"
    kicker: str
    sentences: tuple[str, ...]  # as the wire sent them, lead first
    kinds: tuple[str, ...]  # lead | detail | quote | background | boilerplate, per sentence
    agency: str  # a key of news_words.AGENCY_CREDITS
    photographer: str
    paper: str
    org: str
    official: Person  # the official named in the story ({who})
    location: int  # seed of the photo's location: shared by the stories of one event
    shot: int  # seed of this story's own photo (viewpoint, subjects)


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def _weighted(rng: np.random.Generator, table) -> object:
    p = np.array([q for _, q in table], dtype=float)
    return table[int(rng.choice(len(table), p=p / p.sum()))][0]


def officials(rng: np.random.Generator, n: int) -> list[Person]:
    """Officials who recur across stories (each with one face for portraits)."""
    out = []
    for i in range(n):
        female = bool(rng.random() < 0.45)
        out.append(Person(i, _pick(rng, w.FIRST_NAMES), _pick(rng, w.SURNAMES), _pick(rng, w.OFFICES), female,
                          int(rng.integers(2**31))))
    return out


def _event_fields(rng: np.random.Generator, official: Person) -> dict:
    dateline, town = _pick(rng, w.TOWNS)
    month, day = int(rng.integers(12)), int(rng.integers(1, 29))
    teams = rng.permutation(len(w.TEAMS))[:2]
    return {
        "dateline": dateline, "town": town, "date": f"{w.MONTHS[month]} {day}", "day": _pick(rng, w.WEEKDAYS),
        "street": _pick(rng, w.STREETS), "venue": _pick(rng, w.VENUES), "river": _pick(rng, w.RIVERS),
        "firm": f"{_pick(rng, w.SURNAMES)} {_pick(rng, w.BUSINESSES)}", "team": w.TEAMS[teams[0]],
        "team2": w.TEAMS[teams[1]], "school": _pick(rng, w.SCHOOLS), "org": _pick(rng, w.ORGANISATIONS),
        "animal": _pick(rng, w.ANIMALS), "year": str(int(rng.integers(1952, 2016))),
        "n": f"{int(rng.choice([120, 300, 450, 800, 1500, 2500, 6000, 12000]) * rng.uniform(0.8, 1.3)):,}",
        "k": str(int(rng.integers(4, 13))),
        "who": f"{official.office} {official.first} {official.last}", "wlast": official.last,
        "pron": "she" if official.female else "he",
    }


def _fill(template: str, fields: dict) -> str:
    text = template.format_map(fields)
    return text[0].upper() + text[1:]


def _sentences(rng: np.random.Generator, topic: str, lead: int, fields: dict, background: list[str]) -> list[tuple[str, str]]:
    """(kind, sentence) in wire order, within MIN_CHARS..MAX_CHARS where the templates allow."""
    t = TOPICS[topic]
    out = [("lead", _fill(t.leads[lead], fields))]
    details = [int(i) for i in rng.permutation(len(t.details))]
    extra = [("detail", _fill(t.details[details[0]], fields))]
    if rng.random() < 0.6:
        extra.append(("quote", _fill(_pick(rng, t.quotes), fields)))
    if rng.random() < 0.4:
        extra.append(("detail", _fill(t.details[details[1]], fields)))
    extra += [("background", s) for s in background]
    if rng.random() < BOILERPLATE_SHARE:
        extra.append(("boilerplate", _pick(rng, w.BOILERPLATE)))
    for kind, s in extra:
        if sum(len(x) + 1 for _, x in out) + len(s) > MAX_CHARS - 60 or len(out) >= 5:
            break
        out.append((kind, s))
    for i in details[1:]:  # too short: one more detail
        if sum(len(x) + 1 for _, x in out) >= MIN_CHARS or len(out) >= 5:
            break
        s = _fill(t.details[i], fields)
        if ("detail", s) not in out:
            out.insert(1, ("detail", s))
    return _second_references(out, fields)


def _second_references(pairs: list[tuple[str, str]], fields: dict) -> list[tuple[str, str]]:
    """After the first mention, the official is called by surname alone, as papers do."""
    seen, out = False, []
    for kind, s in pairs:
        if seen:
            s = s.replace(fields["who"], fields["wlast"])
        seen = seen or fields["who"] in s
        out.append((kind, s))
    return out


def _story(rng: np.random.Generator, index: int, event: int, topic: str, lead: int, fields: dict,
           background: list[str], kicker: str, official: Person, location: int) -> Story:
    person = f"{_pick(rng, w.FIRST_NAMES)} {_pick(rng, w.SURNAMES)}"
    story_fields = dict(fields, person=person, plast=person.split()[-1], age=str(int(rng.integers(19, 88))))
    pairs = _sentences(rng, topic, lead, story_fields, background)
    agency = str(_weighted(rng, w.AGENCY_SHARE))
    return Story(index=index, event=event, topic=topic, dateline=fields["dateline"], date=fields["date"],
                 kicker=kicker, sentences=tuple(s for _, s in pairs), kinds=tuple(k for k, _ in pairs),
                 agency=agency, photographer=f"{_pick(rng, w.FIRST_NAMES)} {_pick(rng, w.SURNAMES)}",
                 paper=_pick(rng, w.PAPERS), org=fields["org"], official=official, location=location,
                 shot=int(rng.integers(2**31)))


def draw_stories(rng: np.random.Generator, n: int) -> list[Story]:
    """n stories, events in order; the stories of one event are consecutive."""
    pool = officials(rng, max(4, n // 10))
    stories: list[Story] = []
    event = 0
    while len(stories) < n:
        topic = str(_weighted(rng, TOPIC_SHARE))
        t = TOPICS[topic]
        official = _pick(rng, pool)
        fields = _event_fields(rng, official)
        size = min(int(_weighted(rng, FAMILY_SIZES)), n - len(stories), len(t.leads))
        n_back = int(rng.integers(1, 3)) if size > 1 else int(rng.integers(0, 2))
        background = [_fill(t.background[int(i)], fields) for i in rng.permutation(len(t.background))[:n_back]]
        kicker = _pick(rng, w.GENERIC_KICKERS) if rng.random() < GENERIC_KICKER_SHARE else _pick(rng, t.kickers)
        location = int(rng.integers(2**31))
        for lead in rng.permutation(len(t.leads))[:size]:
            stories.append(_story(rng, len(stories), event, topic, int(lead), fields, background, kicker,
                                  official, location))
        event += 1
    return stories


__all__ = ["Person", "Story", "draw_stories", "officials"]
