"""The subjects of a news shift photo, and the frame: placed on a location (news_photos.py)
from the story's shot seed, then a window on the world is graded and returned."""

from __future__ import annotations

import numpy as np
from PIL import Image

from clippings.data.shift.news_scan import smooth_field
from clippings.data.shift.news_photos import LOCATION_DRAW, SS, VIEW_SHORT, WORLD, Canvas, PhotoSpec, jitter

SKIN = ((235, 200, 170), (200, 150, 110), (150, 100, 70), (95, 60, 40), (225, 180, 140))
CLOTHES = ((30, 35, 60), (150, 30, 35), (230, 230, 225), (60, 90, 60), (190, 150, 40), (40, 40, 40),
           (90, 110, 160), (200, 110, 40))


def person(cv: Canvas, rng: np.random.Generator, x: float, foot: float, h: float, arms_up: bool = False,
           shirt=None) -> None:
    shirt = shirt or jitter(rng, CLOTHES[int(rng.integers(len(CLOTHES)))], 20)
    skin = SKIN[int(rng.integers(len(SKIN)))]
    legs = jitter(rng, (50, 50, 60), 25)
    head = h * 0.13
    cv.rect(x - h * 0.09, foot - h * 0.48, x - h * 0.01, foot, legs)
    cv.rect(x + h * 0.01, foot - h * 0.48, x + h * 0.09, foot, legs)
    cv.poly([(x - h * 0.14, foot - h * 0.8), (x + h * 0.14, foot - h * 0.8), (x + h * 0.11, foot - h * 0.45),
             (x - h * 0.11, foot - h * 0.45)], shirt)
    arm_y = foot - h * (1.0 if arms_up else 0.5)
    cv.line([(x - h * 0.13, foot - h * 0.78), (x - h * 0.2, arm_y)], shirt, h * 0.06)
    cv.line([(x + h * 0.13, foot - h * 0.78), (x + h * 0.22, arm_y + h * rng.uniform(-0.1, 0.2))], shirt, h * 0.06)
    cv.ellipse(x, foot - h * 0.8 - head, head * 0.8, head, skin)
    if rng.random() < 0.4:  # hair or a cap
        cv.ellipse(x, foot - h * 0.8 - head * 1.6, head * 0.85, head * 0.5, jitter(rng, (40, 30, 25), 30))


def _depth(rng: np.random.Generator, ground: float) -> tuple[float, float]:
    """A foot position below the ground line and the height a person standing there has."""
    y = rng.uniform(ground + 5, WORLD[1] + 10)
    return y, 30 + 70 * (y - ground) / max(1.0, WORLD[1] - ground)


def _people(cv, rng, ground, n, **kw) -> None:
    for y, h in sorted((_depth(rng, ground) for _ in range(n)), key=lambda t: t[0]):
        person(cv, rng, rng.uniform(10, WORLD[0] - 10), y, h, **kw)


def _crowd(cv, rng, ground) -> None:
    for row in range(5):
        y = ground + 4 + row * (WORLD[1] - ground) / 6
        for x in np.arange(rng.uniform(0, 8), WORLD[0], rng.uniform(7, 11) + row * 2):
            r = 2.5 + row * 1.3
            cv.ellipse(x, y + 2 * r, 2.2 * r, 1.8 * r, jitter(rng, CLOTHES[int(rng.integers(len(CLOTHES)))], 30))
            cv.ellipse(x, y, r, 1.2 * r, SKIN[int(rng.integers(len(SKIN)))])


def _building(cv, rng, ground) -> None:
    x, w, h = rng.uniform(20, WORLD[0] - 140), rng.uniform(90, 140), rng.uniform(70, 120)
    cv.rect(x, ground - h, x + w, ground, jitter(rng, (140, 110, 90), 40))
    cv.rect(x + 6, ground - h + 8, x + w - 6, ground - h + 18, jitter(rng, (230, 225, 210), 20))
    for wy in np.arange(ground - h + 26, ground - 10, 16):
        for wx in np.arange(x + 8, x + w - 10, 15):
            cv.rect(wx, wy, wx + 7, wy + 9, (25, 25, 30) if rng.random() < 0.6 else (230, 140, 40))


def _smoke(cv, rng, ground) -> None:
    x, y = rng.uniform(40, WORLD[0] - 40), ground - rng.uniform(40, 90)
    for i in range(14):
        grey = int(rng.uniform(60, 150))
        cv.ellipse(x + i * rng.uniform(-2, 6), y - i * 9, 10 + i * 3, 8 + i * 2.5, (grey, grey, grey + 5))
    for _ in range(6):
        cv.ellipse(x + rng.uniform(-20, 20), y + rng.uniform(0, 20), rng.uniform(4, 12), rng.uniform(5, 14),
                   jitter(rng, (235, 130, 30), 20))


def _vehicle(cv, rng, ground, kind: str) -> None:
    y, h = _depth(rng, ground)
    s = h / 60
    x = rng.uniform(10, WORLD[0] - 80 * s)
    body = {"truck": jitter(rng, (180, 30, 30), 30), "car": jitter(rng, CLOTHES[int(rng.integers(len(CLOTHES)))], 30)}[kind]
    length, tall = (80 * s, 32 * s) if kind == "truck" else (52 * s, 16 * s)
    cv.rect(x, y - tall - 6 * s, x + length, y - 6 * s, body)
    cv.rect(x + length * 0.6, y - tall * 1.5, x + length * 0.95, y - tall, body)
    cv.rect(x + length * 0.65, y - tall * 1.4, x + length * 0.9, y - tall * 1.05, (160, 190, 210))
    if kind == "truck":
        cv.line([(x + 4 * s, y - tall - 10 * s), (x + length * 0.55, y - tall - 14 * s)], (210, 210, 200), 2 * s)
    for wx in (x + length * 0.18, x + length * 0.8):
        cv.ellipse(wx, y - 5 * s, 7 * s, 7 * s, (20, 20, 20))


def _house(cv, rng, ground) -> None:
    x, w, h = rng.uniform(0, WORLD[0] - 90), rng.uniform(60, 90), rng.uniform(35, 55)
    cv.rect(x, ground - h, x + w, ground + 6, jitter(rng, (210, 200, 180), 40))
    cv.poly([(x - 6, ground - h), (x + w / 2, ground - h - 30), (x + w + 6, ground - h)], jitter(rng, (80, 60, 55), 25))
    cv.rect(x + w * 0.4, ground - h * 0.6, x + w * 0.6, ground + 6, jitter(rng, (70, 50, 40), 20))


def _tree(cv, rng, ground) -> None:
    x, h = rng.uniform(0, WORLD[0]), rng.uniform(50, 110)
    cv.rect(x - 3, ground - h * 0.5, x + 3, ground + 4, (70, 50, 35))
    for _ in range(7):
        cv.ellipse(x + rng.uniform(-18, 18), ground - h * rng.uniform(0.55, 0.95), rng.uniform(12, 24),
                   rng.uniform(10, 20), jitter(rng, (50, 95, 40), 25))


def _debris(cv, rng, ground) -> None:
    for _ in range(40):
        x, y = rng.uniform(0, WORLD[0]), rng.uniform(ground, WORLD[1])
        a = rng.uniform(0, np.pi)
        length = rng.uniform(6, 30)
        cv.line([(x, y), (x + length * np.cos(a), y - length * np.sin(a) * 0.4)], jitter(rng, (120, 100, 80), 50),
                rng.uniform(1, 3.5))


def _flags(cv, rng, ground) -> None:
    for x in rng.uniform(10, WORLD[0] - 30, int(rng.integers(1, 4))):
        top = ground - rng.uniform(70, 120)
        cv.line([(x, ground), (x, top)], (200, 200, 200), 1.5)
        for i in range(5):
            cv.rect(x, top + i * 4, x + 30, top + i * 4 + 4, (180, 30, 40) if i % 2 == 0 else (240, 240, 240))


def _tents(cv, rng, ground) -> None:
    for x in np.sort(rng.uniform(0, WORLD[0] - 40, int(rng.integers(2, 6)))):
        w = rng.uniform(30, 50)
        col = jitter(rng, (235, 235, 230), 20) if rng.random() < 0.6 else jitter(rng, (200, 60, 50), 30)
        cv.poly([(x, ground + 6), (x + w / 2, ground - 35), (x + w, ground + 6)], col)


def _banner(cv, rng, ground) -> None:
    x, y = rng.uniform(20, WORLD[0] - 110), ground + rng.uniform(0, 20)
    cv.rect(x, y - 60, x + 90, y - 35, jitter(rng, (235, 230, 210), 20))
    for i in range(int(rng.integers(4, 9))):
        cv.rect(x + 6 + i * 10, y - 54, x + 12 + i * 10, y - 42, (30, 30, 35))


def _players(cv, rng, ground) -> None:
    kits = [jitter(rng, CLOTHES[int(i)], 15) for i in rng.permutation(len(CLOTHES))[:2]]
    for i in range(int(rng.integers(2, 6))):
        y, h = _depth(rng, ground)
        person(cv, rng, rng.uniform(15, WORLD[0] - 15), y, h * 1.2, arms_up=bool(rng.random() < 0.4), shirt=kits[i % 2])
    cv.ellipse(rng.uniform(30, WORLD[0] - 30), rng.uniform(ground + 5, WORLD[1] - 10), 3.5, 3.5, (240, 240, 235))


def _podium(cv, rng, ground) -> None:
    x = rng.uniform(80, WORLD[0] - 80)
    person(cv, rng, x, ground + 10, 95)
    cv.poly([(x - 25, ground - 40), (x + 25, ground - 40), (x + 20, ground + 12), (x - 20, ground + 12)],
            jitter(rng, (100, 70, 45), 20))
    cv.ellipse(x, ground - 22, 8, 8, jitter(rng, (200, 180, 90), 20))


def _ribbon(cv, rng, ground) -> None:
    y = ground + rng.uniform(10, 25)
    _people(cv, rng, ground, int(rng.integers(3, 6)))
    cv.line([(0, y - 45), (WORLD[0], y - 48)], (200, 20, 30), 2.5)


def _animal(cv, rng, ground) -> None:
    y, h = _depth(rng, ground)
    x, s = rng.uniform(30, WORLD[0] - 60), h / 50
    col = jitter(rng, (90, 70, 50), 40)
    cv.ellipse(x, y - 22 * s, 26 * s, 12 * s, col)
    cv.ellipse(x + 26 * s, y - 32 * s, 8 * s, 7 * s, col)
    for lx in (-16, -8, 10, 18):
        cv.rect(x + lx * s, y - 14 * s, x + (lx + 4) * s, y, col)


def face(cv: Canvas, sitter: int, rng: np.random.Generator) -> None:
    """A sitter's head and shoulders; the face comes from `sitter` alone, the jacket partly from the shot."""
    f = np.random.default_rng(sitter)
    skin, hair = SKIN[int(f.integers(len(SKIN)))], jitter(f, (60, 45, 35), 45)
    style, glasses, wide = int(f.integers(4)), bool(f.random() < 0.35), f.uniform(0.72, 0.9)
    jacket = jitter(f, CLOTHES[int(f.integers(len(CLOTHES)))], 15) if rng.random() < 0.6 else jitter(rng, (60, 60, 70), 40)
    cx, cy, r = WORLD[0] / 2 + rng.uniform(-6, 6), WORLD[1] * 0.42, WORLD[1] * 0.2
    cv.ellipse(cx, WORLD[1] * 1.05, r * 2.3, r * 1.6, jacket)
    cv.poly([(cx - r * 0.35, WORLD[1] * 0.62), (cx + r * 0.35, WORLD[1] * 0.62), (cx, WORLD[1] * 0.85)],
            jitter(f, (235, 235, 235), 10))
    cv.rect(cx - r * 0.28, cy + r * 0.7, cx + r * 0.28, WORLD[1] * 0.66, skin)
    if style == 1:
        cv.ellipse(cx, cy + r * 0.3, r * wide * 1.25, r * 1.2, hair)  # long hair behind
    cv.ellipse(cx, cy, r * wide, r, skin)
    if style in (0, 1, 3):
        cv.ellipse(cx + (r * 0.15 if style == 3 else 0), cy - r * 0.75, r * wide * 1.02, r * 0.45, hair)
    for ex in (-0.35, 0.35):
        cv.ellipse(cx + ex * r, cy - r * 0.05, r * 0.09, r * 0.06, (40, 30, 30))
        if glasses:
            cv.d.ellipse([(cx + (ex - 0.2) * r) * SS, (cy - 0.2 * r) * SS, (cx + (ex + 0.2) * r) * SS,
                          (cy + 0.1 * r) * SS], outline=(20, 20, 20), width=2 * SS)
    cv.line([(cx - r * 0.22, cy + r * 0.5), (cx + r * 0.22, cy + r * 0.5)], (120, 60, 60), r * 0.05)


SUBJECTS = {"person": lambda cv, rng, g: _people(cv, rng, g, int(rng.integers(1, 5))),
            "person2": lambda cv, rng, g: _people(cv, rng, g, 2), "crowd": _crowd, "building": _building,
            "smoke": _smoke, "truck": lambda cv, rng, g: _vehicle(cv, rng, g, "truck"),
            "car": lambda cv, rng, g: _vehicle(cv, rng, g, "car"), "house": _house, "tree": _tree, "debris": _debris,
            "flag": _flags, "tent": _tents, "banner": _banner, "player": _players, "ball": lambda *a: None,
            "podium": _podium, "ribbon": _ribbon, "animal": _animal}
_BACK = ("building", "smoke", "house", "tree", "tent", "flag")  # drawn before the rest


def _grade(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    arr = np.asarray(img, np.float32) / 255.0
    gains = np.array([1.0, 1.0, 1.0]) + rng.normal(0, 0.06, 3)
    h, w = arr.shape[:2]
    light = 0.88 + 0.24 * smooth_field(rng, h, w, cell=rng.uniform(25, 60))  # uneven light, texture
    arr = np.clip(arr * gains * light[..., None], 0, 1) ** rng.uniform(0.8, 1.25)
    yy, xx = np.mgrid[0:h, 0:w]
    fall = 1 - rng.uniform(0.1, 0.35) * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2) * 2
    arr = arr * fall[..., None] + rng.normal(0, 0.015, arr.shape)
    return Image.fromarray((np.clip(arr, 0, 1) * 255).astype(np.uint8), "RGB")


def _window(rng: np.random.Generator, ground: float, portrait: bool) -> tuple[float, float, float, float]:
    if portrait:
        h = WORLD[1] * rng.uniform(0.75, 0.95)
        w = h * rng.uniform(0.72, 0.85)
        x0 = WORLD[0] / 2 - w / 2 + rng.uniform(-8, 8)
        return x0, WORLD[1] - h, x0 + w, WORLD[1]
    w = WORLD[0] * rng.uniform(0.48, 0.78)
    h = min(WORLD[1] * 0.98, w / float(rng.choice([1.5, 1.33, 1.25, 1.0, 0.8], p=[0.35, 0.3, 0.15, 0.1, 0.1])))
    x0 = rng.uniform(0, WORLD[0] - w)
    y0 = float(np.clip(ground - h * rng.uniform(0.35, 0.7), 0, WORLD[1] - h))
    return x0, y0, x0 + w, y0 + h


def draw_photo(spec: PhotoSpec) -> Image.Image:
    """The photo as the photographer's frame (RGB, VIEW_SHORT px on the short side)."""
    cv = Canvas()
    ground = LOCATION_DRAW[spec.location](cv, np.random.default_rng(spec.location_seed))
    rng = np.random.default_rng(spec.shot_seed)
    if spec.sitter is not None:
        face(cv, spec.sitter, rng)
    order = sorted(spec.subjects, key=lambda s: s not in _BACK)
    for name in order:
        if name in SUBJECTS:
            SUBJECTS[name](cv, rng, ground)
    x0, y0, x1, y1 = _window(rng, ground, spec.sitter is not None)
    frame = cv.img.crop(tuple(round(v * SS) for v in (x0, y0, x1, y1)))
    f = VIEW_SHORT / min(frame.size)
    frame = frame.resize((max(1, round(frame.width * f)), max(1, round(frame.height * f))), Image.Resampling.LANCZOS)
    return _grade(frame, rng)


__all__ = ["SUBJECTS", "draw_photo", "face", "person"]
