"""Procedural press photos for the news shift set, written independently of the training
generator's scenes (clippings/data/synth/scene.py).

A photo is a *location* (a town block, a flooded street, a playing field, courthouse
steps, a hall, a road, open country, a studio backdrop), drawn from its own seed into a
world wider than any one frame, then *subjects* placed from the story's shot seed (people,
a crowd, vehicles, a burning building and its smoke, a house, trees, debris, flags, tents,
a banner, players and a ball, a podium, a ribbon, an animal, or a sitter's head and
shoulders), then a *view*: a window on the world (another position and zoom per story),
colour grading and lens fall-off. Stories of one event share the location seed, so their
photos show the same place from another viewpoint with other subjects (hard negatives);
portraits of one official share the sitter's face, whatever story they run with.
Drawn at twice the resolution, then reduced (anti-aliasing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw


WORLD = (330, 210)  # world width, height in pixels (x1)
SS = 2  # supersampling
VIEW_SHORT = 180  # the frame's short side, before a paper prints it
LOCATIONS = ("town", "water", "field", "steps", "hall", "road", "nature", "studio")
Colour = tuple[int, int, int]


@dataclass(frozen=True)
class PhotoSpec:
    location: str
    location_seed: int  # shared by the stories of one event
    shot_seed: int  # this story's viewpoint, subjects and grading
    subjects: tuple[str, ...]
    sitter: int | None = None  # face seed of a portrait's sitter


class Canvas:
    """World coordinates in, supersampled drawing out."""

    def __init__(self) -> None:
        self.img = Image.new("RGB", (WORLD[0] * SS, WORLD[1] * SS), (128, 128, 128))
        self.d = ImageDraw.Draw(self.img)

    def rect(self, x0, y0, x1, y1, fill: Colour) -> None:
        self.d.rectangle([x0 * SS, y0 * SS, x1 * SS, y1 * SS], fill=fill)

    def ellipse(self, cx, cy, rx, ry, fill: Colour) -> None:
        self.d.ellipse([(cx - rx) * SS, (cy - ry) * SS, (cx + rx) * SS, (cy + ry) * SS], fill=fill)

    def poly(self, pts, fill: Colour) -> None:
        self.d.polygon([(x * SS, y * SS) for x, y in pts], fill=fill)

    def line(self, pts, fill: Colour, width: float) -> None:
        self.d.line([(x * SS, y * SS) for x, y in pts], fill=fill, width=max(1, round(width * SS)))


def jitter(rng: np.random.Generator, base: Colour, spread: int = 25) -> Colour:
    return tuple(int(np.clip(v + rng.integers(-spread, spread + 1), 0, 255)) for v in base)


def _vgrad(cv: Canvas, y0: float, y1: float, top: Colour, bottom: Colour) -> None:
    steps = max(2, int((y1 - y0) / 2))
    for i in range(steps):
        t = i / (steps - 1)
        col = tuple(int(a + (b - a) * t) for a, b in zip(top, bottom))
        cv.rect(0, y0 + (y1 - y0) * i / steps, WORLD[0], y0 + (y1 - y0) * (i + 1) / steps + 0.5, col)


def _ridge(rng: np.random.Generator, base: float, amp: float) -> list[tuple[float, float]]:
    xs = np.linspace(0, WORLD[0], 34)
    ys = base - amp * np.cumsum(rng.normal(0, 1, len(xs))) / 6 - amp * rng.random(len(xs)) * 0.3
    return [(0, WORLD[1])] + list(zip(xs.tolist(), ys.tolist())) + [(WORLD[0], WORLD[1])]


def _facades(cv: Canvas, rng: np.random.Generator, ground: float, tall: float) -> None:
    x = -rng.uniform(0, 30)
    palette = ((150, 80, 60), (190, 170, 140), (120, 120, 125), (210, 200, 180), (95, 70, 55))
    while x < WORLD[0]:
        w = rng.uniform(35, 95)
        top = ground - rng.uniform(0.45, 1.0) * tall
        col = jitter(rng, palette[int(rng.integers(len(palette)))])
        cv.rect(x, top, x + w, ground, col)
        win = jitter(rng, (45, 50, 60), 15)
        for wy in np.arange(top + 8, ground - 14, rng.uniform(13, 20)):
            for wx in np.arange(x + 5, x + w - 9, rng.uniform(10, 16)):
                cv.rect(wx, wy, wx + 6, wy + 8, win)
        x += w + rng.uniform(0, 6)


def _town(cv: Canvas, rng: np.random.Generator) -> float:
    ground = WORLD[1] * rng.uniform(0.68, 0.8)
    _vgrad(cv, 0, ground, jitter(rng, (150, 180, 215)), jitter(rng, (215, 220, 225)))
    _facades(cv, rng, ground, ground * rng.uniform(0.6, 0.95))
    cv.rect(0, ground, WORLD[0], WORLD[1], jitter(rng, (95, 95, 100), 15))
    cv.rect(0, ground, WORLD[0], ground + 4, jitter(rng, (170, 170, 165), 10))
    return ground


def _water(cv: Canvas, rng: np.random.Generator) -> float:
    shore = WORLD[1] * rng.uniform(0.4, 0.55)
    _vgrad(cv, 0, shore, jitter(rng, (120, 130, 150)), jitter(rng, (190, 195, 200)))
    cv.poly(_ridge(rng, shore, 25), jitter(rng, (70, 90, 60)))
    water = jitter(rng, (120, 105, 80), 20)
    cv.rect(0, shore + 8, WORLD[0], WORLD[1], water)
    for y in np.arange(shore + 10, WORLD[1], 3.0):
        x0 = rng.uniform(-40, WORLD[0])
        cv.line([(x0, y), (x0 + rng.uniform(20, 90), y)], jitter(rng, water, 35), 0.8)
    return shore + 10


def _field(cv: Canvas, rng: np.random.Generator) -> float:
    stands = WORLD[1] * rng.uniform(0.3, 0.45)
    _vgrad(cv, 0, stands * 0.5, jitter(rng, (110, 150, 200)), jitter(rng, (200, 210, 220)))
    cv.rect(0, stands * 0.5, WORLD[0], stands, jitter(rng, (80, 80, 90)))
    for _ in range(900):  # spectators: specks of every colour
        cv.rect(*(lambda x, y: (x, y, x + 1.6, y + 1.6))(rng.uniform(0, WORLD[0]), rng.uniform(stands * 0.5, stands)),
                jitter(rng, (140, 120, 110), 100))
    grass = jitter(rng, (70, 130, 60), 20)
    cv.rect(0, stands, WORLD[0], WORLD[1], grass)
    for i, x in enumerate(np.arange(-40, WORLD[0], 22)):
        if i % 2:
            cv.poly([(x, stands), (x + 22, stands), (x + 60, WORLD[1]), (x + 30, WORLD[1])], jitter(rng, grass, 8))
    cv.line([(0, stands + 30), (WORLD[0], stands + 24)], (235, 235, 230), 1.2)
    return stands


def _steps(cv: Canvas, rng: np.random.Generator) -> float:
    base = WORLD[1] * rng.uniform(0.62, 0.72)
    stone = jitter(rng, (200, 195, 180), 15)
    cv.rect(0, 0, WORLD[0], base, stone)
    cv.rect(0, 0, WORLD[0], base * 0.18, jitter(rng, stone, 10))
    for x in np.arange(rng.uniform(5, 25), WORLD[0], rng.uniform(28, 40)):
        cv.rect(x, base * 0.2, x + 9, base, jitter(rng, (230, 228, 220), 8))
        cv.rect(x + 9, base * 0.2, x + 12, base, jitter(rng, (150, 145, 135), 8))
    for i, y in enumerate(np.arange(base, WORLD[1], 7)):
        cv.rect(0, y, WORLD[0], y + 7, jitter(rng, (175, 170, 160) if i % 2 else (205, 200, 190), 6))
    return base + 20


def _hall(cv: Canvas, rng: np.random.Generator) -> float:
    floor = WORLD[1] * rng.uniform(0.7, 0.8)
    _vgrad(cv, 0, floor, jitter(rng, (90, 80, 75)), jitter(rng, (160, 150, 135)))
    curtain = jitter(rng, (120, 30, 40), 40)
    for x in np.arange(0, WORLD[0], 6):
        cv.rect(x, 0, x + 3, floor * 0.8, jitter(rng, curtain, 12))
    cv.rect(0, floor, WORLD[0], WORLD[1], jitter(rng, (110, 85, 60), 20))
    return floor


def _road(cv: Canvas, rng: np.random.Generator) -> float:
    horizon = WORLD[1] * rng.uniform(0.35, 0.5)
    _vgrad(cv, 0, horizon, jitter(rng, (160, 175, 195)), jitter(rng, (225, 225, 220)))
    cv.rect(0, horizon, WORLD[0], WORLD[1], jitter(rng, (120, 135, 90), 20))
    vx = rng.uniform(0.3, 0.7) * WORLD[0]
    cv.poly([(vx - 3, horizon), (vx + 3, horizon), (WORLD[0] * 1.1, WORLD[1]), (-WORLD[0] * 0.1, WORLD[1])],
            jitter(rng, (85, 85, 90), 12))
    for t in np.arange(0.05, 1, 0.12):
        y0, y1 = horizon + (WORLD[1] - horizon) * t, horizon + (WORLD[1] - horizon) * (t + 0.05)
        cv.line([(vx + (WORLD[0] * 0.5 - vx) * t * 0.2, y0), (vx + (WORLD[0] * 0.5 - vx) * (t + 0.05) * 0.2, y1)],
                (225, 210, 120), 0.6 + 2 * t)
    return horizon + 25


def _nature(cv: Canvas, rng: np.random.Generator) -> float:
    horizon = WORLD[1] * rng.uniform(0.35, 0.55)
    _vgrad(cv, 0, horizon, jitter(rng, (140, 170, 210)), jitter(rng, (220, 225, 230)))
    cv.poly(_ridge(rng, horizon, 40), jitter(rng, (105, 120, 130), 15))
    cv.poly(_ridge(rng, horizon + 15, 20), jitter(rng, (50, 80, 45), 15))
    cv.rect(0, horizon + 25, WORLD[0], WORLD[1], jitter(rng, (120, 140, 70), 25))
    return horizon + 25


def _studio(cv: Canvas, rng: np.random.Generator) -> float:
    _vgrad(cv, 0, WORLD[1], jitter(rng, (150, 150, 155), 50), jitter(rng, (90, 90, 95), 40))
    return WORLD[1]


LOCATION_DRAW = {"town": _town, "water": _water, "field": _field, "steps": _steps, "hall": _hall, "road": _road,
              "nature": _nature, "studio": _studio}
