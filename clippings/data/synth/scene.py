"""Procedural "photos": an RGB scene drawn from a seed, one per news story.

Kinds follow the stories (street, crowd, landscape, harbour, sports, interior, air,
portrait). Every kind draws its layout, palette and objects from the seed, so two stories
rarely look alike, except portraits: head-and-shoulders shots on a plain ground are
alike on purpose, as they are in real newspapers, and there the caption has to decide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SCENE_KINDS = ("street", "crowd", "landscape", "harbour", "sports", "interior", "air", "portrait")
BASE_SHORT_SIDE = 160  # drawn at this size; the print pipeline crops and scales it down


@dataclass(frozen=True)
class SceneSpec:
    kind: str
    seed: int
    aspect: float  # width / height
    # 0: the scene as its seed draws it. Else another photo taken at the same place: the same
    # ground, buildings and layout, other props and passers-by, another framing and light.
    shot: int = 0


def another_shot(rng: np.random.Generator, spec: SceneSpec) -> SceneSpec:
    """A photo of the same place as `spec`, for a story about the same event."""
    return SceneSpec(spec.kind, spec.seed, spec.aspect, shot=int(rng.integers(1, 2**31)))


def random_scene(rng: np.random.Generator, kind: str) -> SceneSpec:
    aspect = 0.78 if kind == "portrait" else float(rng.choice([1.33, 1.5, 1.25, 1.0, 0.8], p=[0.4, 0.2, 0.2, 0.1, 0.1]))
    return SceneSpec(kind, int(rng.integers(2**31)), aspect)


def draw_scene(spec: SceneSpec) -> Image.Image:
    rng = np.random.default_rng(spec.seed)
    if spec.aspect >= 1:
        w, h = int(BASE_SHORT_SIDE * spec.aspect), BASE_SHORT_SIDE
    else:
        w, h = BASE_SHORT_SIDE, int(BASE_SHORT_SIDE / spec.aspect)
    img = Image.new("RGB", (w, h))
    draw = ImageDraw.Draw(img)
    _DRAW[spec.kind](draw, rng, w, h)
    if spec.shot:  # the place is the seed's; what stands in it and the framing are the shot's
        rng = np.random.default_rng([spec.seed, spec.shot])
        for _ in range(int(rng.integers(2, 7))):
            _person(draw, rng.integers(0, w), int(rng.uniform(0.55, 1.0) * h), rng.integers(18, 50),
                    _color(rng, 10, 160), rng)
    if spec.kind != "portrait":
        for _ in range(int(rng.integers(1, 5))):
            _PROPS[int(rng.integers(len(_PROPS)))](draw, rng, w, h)
    if spec.shot:
        img = _reframe(img, rng)
    img = img.filter(ImageFilter.GaussianBlur(0.6))  # lens softness: no hard vector edges
    return _texture(img, rng)


def _reframe(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Another photographer's framing: a window of 65-90% of the view, anywhere, at full size."""
    w, h = img.size
    f = rng.uniform(0.65, 0.9)
    cw, ch = int(w * f), int(h * f)
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return img.crop((x0, y0, x0 + cw, y0 + ch)).resize((w, h), Image.Resampling.BICUBIC)


def _color(rng: np.random.Generator, lo: int = 0, hi: int = 255) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(lo, hi + 1, size=3))


def _shade(c: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return tuple(int(max(0, min(255, v * f))) for v in c)


def _gradient(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], top, bottom) -> None:
    x0, y0, x1, y1 = box
    span = max(1, y1 - y0)
    for y in range(y0, y1):
        t = (y - y0) / span
        draw.line((x0, y, x1, y), fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom)))


def _sky(draw, rng, w, horizon) -> None:
    top = (int(rng.integers(60, 160)), int(rng.integers(90, 190)), int(rng.integers(150, 250)))
    _gradient(draw, (0, 0, w, horizon), top, _shade(top, rng.uniform(1.1, 1.5)))
    for _ in range(int(rng.integers(0, 5))):  # clouds
        cx, cy = rng.integers(0, w), rng.integers(0, max(1, horizon * 2 // 3))
        rx, ry = rng.integers(10, 40), rng.integers(4, 12)
        g = int(rng.integers(200, 250))
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=(g, g, g))
    if rng.random() < 0.25:
        r = int(rng.integers(6, 16))
        cx, cy = rng.integers(r, w - r), rng.integers(r, max(r + 1, horizon // 2))
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(250, 240, 200))


def _person(draw, x: float, foot: float, height: float, color, rng) -> None:
    """A standing figure: head, body, legs."""
    head = height * 0.14
    body_w = height * rng.uniform(0.22, 0.32)
    draw.ellipse((x - head / 2, foot - height, x + head / 2, foot - height + head), fill=_shade(color, 1.3))
    top = foot - height + head * 0.95
    draw.rounded_rectangle((x - body_w / 2, top, x + body_w / 2, foot - height * 0.42), radius=max(1, body_w / 4),
                           fill=color)
    leg = body_w * 0.35
    dark = _shade(color, 0.6)
    draw.rectangle((x - body_w / 2 + 1, foot - height * 0.44, x - body_w / 2 + 1 + leg, foot), fill=dark)
    draw.rectangle((x + body_w / 2 - 1 - leg, foot - height * 0.44, x + body_w / 2 - 1, foot), fill=dark)
    if rng.random() < 0.3:  # a hat
        draw.rectangle((x - head * 0.7, foot - height - head * 0.1, x + head * 0.7, foot - height + head * 0.2),
                       fill=_shade(color, 0.4))


def _car(draw, x, y, length, color) -> None:
    h = length * 0.35
    draw.rounded_rectangle((x, y - h, x + length, y - h * 0.25), radius=max(1, h / 4), fill=color)
    draw.rounded_rectangle((x + length * 0.2, y - h * 1.6, x + length * 0.75, y - h * 0.9), radius=max(1, h / 5),
                           fill=_shade(color, 0.85))
    r = h * 0.35
    for wx in (x + length * 0.22, x + length * 0.78):
        draw.ellipse((wx - r, y - r * 1.6, wx + r, y + r * 0.4), fill=(25, 25, 25))


def _building(draw, x0, x1, top, ground, rng) -> None:
    c = _color(rng, 70, 210)
    draw.rectangle((x0, top, x1, ground), fill=c)
    rows, cols = int(rng.integers(2, 9)), int(rng.integers(1, 6))
    win = _shade(c, rng.uniform(0.3, 0.6))
    bw, bh = (x1 - x0) / (cols + 1), (ground - top) / (rows + 1)
    for r in range(rows):
        for k in range(cols):
            wx, wy = x0 + bw * (k + 0.6), top + bh * (r + 0.6)
            draw.rectangle((wx, wy, wx + bw * 0.5, wy + bh * 0.5), fill=win)
    if rng.random() < 0.4:  # a pitched roof
        draw.polygon([(x0 - 2, top), ((x0 + x1) / 2, top - (x1 - x0) * 0.3), (x1 + 2, top)], fill=_shade(c, 0.6))


def _street(draw, rng, w, h) -> None:
    horizon = int(h * rng.uniform(0.3, 0.55))
    _sky(draw, rng, w, horizon)
    ground = int(h * rng.uniform(0.6, 0.8))
    x = int(rng.integers(-20, 0))
    while x < w:
        bw = int(rng.integers(18, 60))
        _building(draw, x, x + bw, int(rng.integers(5, horizon + 10)), ground, rng)
        x += bw + int(rng.integers(0, 6))
    road = _color(rng, 60, 120)
    draw.polygon([(0, ground), (w, ground), (w, h), (0, h)], fill=road)
    for k in range(int(rng.integers(0, 5))):
        lx = int(rng.integers(0, w))
        draw.rectangle((lx, ground + (h - ground) // 2, lx + 10, ground + (h - ground) // 2 + 2), fill=(220, 220, 200))
    for _ in range(int(rng.integers(0, 5))):
        _car(draw, rng.integers(-10, w), int(rng.integers(ground + 8, h)), rng.integers(25, 55), _color(rng, 20, 200))
    for _ in range(int(rng.integers(0, 9))):
        _person(draw, rng.integers(0, w), int(rng.integers(ground, h)), rng.integers(18, 45), _color(rng, 10, 120), rng)


def _crowd(draw, rng, w, h) -> None:
    if rng.random() < 0.5:
        horizon = int(h * rng.uniform(0.2, 0.5))
        _sky(draw, rng, w, horizon)
        _building(draw, int(rng.integers(-10, w // 2)), int(rng.integers(w // 2, w + 10)), 10, horizon + 20, rng)
    else:
        horizon = int(h * rng.uniform(0.3, 0.6))
        _gradient(draw, (0, 0, w, horizon + 30), _color(rng, 80, 220), _color(rng, 60, 200))
    if rng.random() < 0.6:  # bunting or banners
        for _ in range(int(rng.integers(1, 5))):
            x0 = int(rng.integers(0, w))
            y0 = int(rng.integers(0, horizon + 10))
            draw.rectangle((x0, y0, x0 + rng.integers(15, 60), y0 + rng.integers(5, 15)), fill=_color(rng, 40, 255))
    draw.rectangle((0, horizon + 20, w, h), fill=_color(rng, 60, 160))
    if rng.random() < 0.5:  # a podium with a speaker
        px = int(rng.integers(w // 4, 3 * w // 4))
        _person(draw, px, horizon + 40, 50, _color(rng, 10, 80), rng)
        draw.rectangle((px - 14, horizon + 18, px + 14, horizon + 45), fill=_color(rng, 90, 180))
    n = int(rng.integers(10, 45))
    for i in range(n):  # back rows first
        foot = horizon + 30 + (h - horizon - 20) * (i / n) + rng.uniform(0, 10)
        _person(draw, rng.uniform(-10, w + 10), foot, 25 + 40 * i / n + rng.uniform(-5, 5), _color(rng, 10, 140), rng)


def _landscape(draw, rng, w, h) -> None:
    horizon = int(h * rng.uniform(0.3, 0.6))
    _sky(draw, rng, w, horizon)
    for layer in range(int(rng.integers(1, 4))):  # mountain ranges, far to near
        base = horizon + layer * 4
        pts = [(0, base)]
        for x in np.linspace(0, w, int(rng.integers(3, 9))):
            pts.append((float(x), base - float(rng.uniform(5, horizon * 0.8 / (layer + 1)))))
        pts.append((w, base))
        draw.polygon(pts, fill=_color(rng, 60 - 15 * layer, 150 - 20 * layer))
    ground = _color(rng, 60, 170)
    _gradient(draw, (0, horizon, w, h), ground, _shade(ground, rng.uniform(0.5, 0.9)))
    if rng.random() < 0.5:  # fields
        for k in range(int(rng.integers(2, 8))):
            y = horizon + (h - horizon) * k / 8
            draw.line((0, y, w, y + rng.uniform(-10, 10)), fill=_shade(ground, 0.75), width=2)
    if rng.random() < 0.5:  # a river or a flooded plain
        y0 = int(rng.uniform(horizon, h - 10))
        draw.polygon([(0, y0), (w, y0 + rng.uniform(-20, 20)), (w, y0 + rng.uniform(10, 40)), (0, y0 + 25)],
                     fill=_color(rng, 100, 200))
    for _ in range(int(rng.integers(0, 14))):  # trees
        x, y = rng.uniform(0, w), rng.uniform(horizon, h)
        s = 6 + 20 * (y - horizon) / max(1, h - horizon)
        draw.rectangle((x - s * 0.1, y - s, x + s * 0.1, y), fill=(60, 40, 20))
        draw.ellipse((x - s * 0.5, y - s * 1.6, x + s * 0.5, y - s * 0.6), fill=_color(rng, 20, 110))
    if rng.random() < 0.4:  # a house, a barn, a train
        x = rng.uniform(0, w - 40)
        y = rng.uniform(horizon + 10, h)
        _building(draw, x, x + rng.uniform(20, 50), y - rng.uniform(15, 35), y, rng)
    for _ in range(int(rng.integers(0, 6))):  # debris, rocks
        x, y = rng.uniform(0, w), rng.uniform(horizon, h)
        s = rng.uniform(3, 12)
        draw.polygon([(x, y), (x + s, y - s * rng.uniform(0.3, 1)), (x + s * 1.5, y)], fill=_color(rng, 30, 140))


def _harbour(draw, rng, w, h) -> None:
    horizon = int(h * rng.uniform(0.35, 0.55))
    _sky(draw, rng, w, horizon)
    sea = _color(rng, 50, 150)
    _gradient(draw, (0, horizon, w, h), sea, _shade(sea, 0.6))
    for _ in range(int(rng.integers(5, 20))):  # waves
        y = rng.uniform(horizon, h)
        x = rng.uniform(0, w)
        draw.line((x, y, x + rng.uniform(5, 25), y), fill=_shade(sea, 1.3), width=1)
    for _ in range(int(rng.integers(1, 3))):  # ships
        length = rng.uniform(w * 0.3, w * 0.8)
        x0 = rng.uniform(-length * 0.2, w - length * 0.8)
        waterline = rng.uniform(horizon + 10, h - 10)
        hull = _color(rng, 20, 120)
        draw.polygon([(x0, waterline - 18), (x0 + length, waterline - 22), (x0 + length * 0.92, waterline),
                      (x0 + length * 0.06, waterline)], fill=hull)
        sx = x0 + length * rng.uniform(0.3, 0.5)
        draw.rectangle((sx, waterline - 35, sx + length * 0.25, waterline - 18), fill=_color(rng, 150, 240))
        for k in range(int(rng.integers(1, 4))):  # funnels and smoke
            fx = sx + k * 12 + 5
            draw.rectangle((fx, waterline - 50, fx + 7, waterline - 35), fill=_color(rng, 20, 200))
            draw.ellipse((fx - 10, waterline - 70, fx + 20, waterline - 52), fill=(120, 120, 120))
    if rng.random() < 0.6:  # a crane on the pier
        cx = rng.uniform(0, w)
        draw.line((cx, h, cx, horizon - 30), fill=(40, 40, 40), width=3)
        draw.line((cx, horizon - 30, cx + rng.uniform(-50, 50), horizon - 25), fill=(40, 40, 40), width=2)


def _sports(draw, rng, w, h) -> None:
    stands = int(h * rng.uniform(0.15, 0.35))
    for y in range(0, stands, 3):  # spectators as dotted rows
        c = _color(rng, 40, 200)
        draw.line((0, y, w, y), fill=c, width=2)
    field = (int(rng.integers(40, 90)), int(rng.integers(90, 160)), int(rng.integers(30, 90)))
    draw.rectangle((0, stands, w, h), fill=field)
    for k in range(int(rng.integers(2, 7))):
        x = k * w / 5 + rng.uniform(-5, 5)
        draw.line((x, stands, x + rng.uniform(-30, 30), h), fill=(235, 235, 225), width=2)
    kit_a, kit_b = _color(rng, 0, 255), _color(rng, 0, 255)
    for i in range(int(rng.integers(6, 22))):
        y = rng.uniform(stands + 20, h)
        _person(draw, rng.uniform(0, w), y, 18 + 30 * (y - stands) / max(1, h - stands),
                kit_a if i % 2 else kit_b, rng)
    if rng.random() < 0.7:
        bx, by = rng.uniform(0, w), rng.uniform(stands, h)
        draw.ellipse((bx - 4, by - 3, bx + 4, by + 3), fill=(110, 60, 30))


def _interior(draw, rng, w, h) -> None:
    wall = _color(rng, 100, 230)
    floor_y = int(h * rng.uniform(0.55, 0.8))
    draw.rectangle((0, 0, w, floor_y), fill=wall)
    draw.rectangle((0, floor_y, w, h), fill=_color(rng, 50, 140))
    for _ in range(int(rng.integers(0, 4))):  # windows, pictures
        x, y = rng.uniform(0, w - 30), rng.uniform(5, floor_y / 2)
        draw.rectangle((x, y, x + rng.uniform(15, 40), y + rng.uniform(15, 35)), fill=_color(rng, 150, 255),
                       outline=_shade(wall, 0.5), width=2)
    if rng.random() < 0.6:  # a long table with people seated behind it
        ty = floor_y - rng.uniform(0, 15)
        for _ in range(int(rng.integers(2, 8))):
            _person(draw, rng.uniform(0, w), ty + 10, rng.uniform(40, 60), _color(rng, 10, 100), rng)
        draw.rectangle((0, ty - 8, w, ty + 6), fill=_color(rng, 60, 140))
    else:  # machinery
        for _ in range(int(rng.integers(2, 6))):
            x = rng.uniform(0, w - 30)
            draw.rectangle((x, floor_y - rng.uniform(20, 60), x + rng.uniform(20, 50), floor_y), fill=_color(rng, 30, 140))
            r = rng.uniform(5, 15)
            draw.ellipse((x + 5, floor_y - 2 * r - 10, x + 5 + 2 * r, floor_y - 10), fill=_color(rng, 20, 90))


def _air(draw, rng, w, h) -> None:
    horizon = int(h * rng.uniform(0.6, 0.85))
    _sky(draw, rng, w, horizon)
    draw.rectangle((0, horizon, w, h), fill=_color(rng, 60, 150))
    for _ in range(int(rng.integers(1, 6))):  # planes
        x, y, s = rng.uniform(0, w), rng.uniform(5, horizon - 10), rng.uniform(10, 35)
        c = _color(rng, 20, 120)
        draw.polygon([(x, y), (x + s, y - s * 0.08), (x + s, y + s * 0.08)], fill=c)
        draw.polygon([(x + s * 0.4, y), (x + s * 0.6, y - s * 0.5), (x + s * 0.7, y + s * 0.5)], fill=c)
    for _ in range(int(rng.integers(0, 15))):
        _person(draw, rng.uniform(0, w), rng.uniform(horizon + 5, h), rng.uniform(10, 25), _color(rng, 10, 120), rng)


def _portrait(draw, rng, w, h) -> None:
    # Low diversity on purpose: a plain ground and one head and shoulders.
    g = int(rng.integers(100, 170))
    _gradient(draw, (0, 0, w, h), (g, g, g - 5), (g - 30, g - 30, g - 35))
    cx = w / 2 + rng.uniform(-6, 6)
    head_w, head_h = w * rng.uniform(0.30, 0.36), h * rng.uniform(0.30, 0.35)
    top = h * rng.uniform(0.14, 0.2)
    suit = int(rng.integers(25, 70))
    draw.ellipse((cx - w * 0.46, top + head_h * 0.95, cx + w * 0.46, h * 1.5), fill=(suit, suit, suit + 5))
    draw.polygon([(cx - w * 0.08, top + head_h * 0.95), (cx + w * 0.08, top + head_h * 0.95), (cx, h * 0.82)],
                 fill=(235, 235, 235))  # collar
    tie = int(rng.integers(20, 120))
    draw.polygon([(cx - 4, top + head_h), (cx + 4, top + head_h), (cx, h * 0.8)], fill=(tie, tie, tie))
    skin = int(rng.integers(190, 235))
    draw.ellipse((cx - head_w / 2, top, cx + head_w / 2, top + head_h), fill=(skin, skin - 10, skin - 25))
    hair = int(rng.integers(15, 90))
    draw.chord((cx - head_w / 2, top - 4, cx + head_w / 2, top + head_h * 0.6), 180, 360, fill=(hair, hair, hair))


def _tower(draw, rng, w, h) -> None:
    x, base = rng.uniform(0, w), rng.uniform(h * 0.4, h)
    tall, wide = rng.uniform(h * 0.3, h * 0.8), rng.uniform(5, 16)
    c = _color(rng, 20, 220)
    draw.rectangle((x, base - tall, x + wide, base), fill=c)
    if rng.random() < 0.5:  # a spire
        draw.polygon([(x - 2, base - tall), (x + wide / 2, base - tall - wide * 2), (x + wide + 2, base - tall)],
                     fill=_shade(c, 0.6))
    else:  # a water tank
        draw.ellipse((x - wide, base - tall - wide * 1.2, x + 2 * wide, base - tall + 2), fill=_shade(c, 0.8))


def _sign(draw, rng, w, h) -> None:
    """A billboard or shop sign: a panel with bars of lettering."""
    x, y = rng.uniform(-10, w - 20), rng.uniform(0, h * 0.7)
    pw, ph = rng.uniform(20, 60), rng.uniform(8, 25)
    c = _color(rng, 0, 255)
    draw.rectangle((x, y, x + pw, y + ph), fill=c, outline=_shade(c, 0.4))
    ink = (20, 20, 20) if sum(c) > 380 else (235, 235, 235)
    for row in range(int(rng.integers(1, 3))):
        yy = y + ph * (0.25 + 0.4 * row)
        xx = x + 3
        while xx < x + pw - 6:
            word = rng.uniform(3, 12)
            draw.rectangle((xx, yy, min(x + pw - 3, xx + word), yy + max(1.5, ph * 0.15)), fill=ink)
            xx += word + 3


def _poles(draw, rng, w, h) -> None:
    """Telegraph poles and their wires."""
    xs = sorted(rng.uniform(0, w, int(rng.integers(2, 5))))
    top = rng.uniform(0, h * 0.4)
    for x in xs:
        draw.line((x, top, x, h), fill=(40, 35, 30), width=2)
        draw.line((x - 6, top + 4, x + 6, top + 4), fill=(40, 35, 30), width=2)
    for a, b in zip(xs, xs[1:]):
        draw.line((a, top + 4, b, top + 4 + rng.uniform(-3, 6)), fill=(50, 50, 50), width=1)


def _blob(draw, rng, w, h) -> None:
    """Something big and dark in the foreground: a car, a crowd's shoulder, smoke."""
    x, y = rng.uniform(0, w), rng.uniform(h * 0.3, h)
    rx, ry = rng.uniform(8, 35), rng.uniform(6, 25)
    draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=_color(rng, 0, 255))


def _fence(draw, rng, w, h) -> None:
    y = rng.uniform(h * 0.5, h * 0.95)
    c = _color(rng, 60, 240)
    step = rng.uniform(4, 10)
    draw.line((0, y - 8, w, y - 8 + rng.uniform(-5, 5)), fill=c, width=2)
    for x in np.arange(0, w, step):
        draw.line((x, y - 12, x, y), fill=c, width=1)


_PROPS = (_tower, _sign, _poles, _blob, _fence)

_DRAW = {
    "street": _street, "crowd": _crowd, "landscape": _landscape, "harbour": _harbour, "sports": _sports,
    "interior": _interior, "air": _air, "portrait": _portrait,
}


def _texture(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Low-frequency light and shade over the whole scene."""
    w, h = img.size
    grid = rng.normal(1.0, 0.08, (4, 4)).astype(np.float32)
    light = np.asarray(Image.fromarray(grid, "F").resize((w, h), Image.Resampling.BICUBIC), np.float32)
    arr = np.asarray(img, np.float32) * light[..., None]
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
