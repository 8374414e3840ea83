"""Firm names from a real lexicon: mecab-ipadic's organisation names (Debian `mecab-ipadic`).

`Noun.org.csv` lists about 16,600 organisation names (universities, hospitals, unions,
broadcasters, firms...). We keep the firm-like ones (a business word at the end: 工業,
製作所, 商事, 銀行...), and drop every name the training generator's grammar could also
produce (head words + an industry word from clippings/data/synth/names.py), so no shift
entity is a name the model could have been trained on.

Hard negatives come from the lexicon too: pairs of real names one or two characters apart
(東亜道路工業 / 東亜建設工業) or sharing a head and a business word (日本ギア工業 / 日本建工業).

How one document prints a firm (`surface`) follows real directories and registers: the legal
form spelled out, as （株）, (株) or ㈱, before or after the name, or dropped; 有限会社 as
（有）/㈲; old character forms (會社, 鐵, 國...) and occasional abbreviations (工業→工,
銀行→銀, a dropped 日本 head). The tables here are written for this module; nothing is
taken from the generator.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clippings.errors import ConfigError

IPADIC_DIRS = (Path("/usr/share/mecab/dic/ipadic"), Path("/var/lib/mecab/dic/ipadic"))
ORG_FILE = "Noun.org.csv"

# A name is firm-like when it ends in one of these business words.
FIRM_SUFFIXES = (
    "工業", "製作所", "商事", "銀行", "産業", "電機", "化学", "建設", "興業", "商店", "商会", "物産",
    "製薬", "薬品", "食品", "印刷", "証券", "運輸", "倉庫", "紡績", "製紙", "電鉄", "汽船", "海運",
    "石油", "鉱業", "製鋼", "精機", "通信", "開発", "不動産", "工務店", "酒造", "技研", "工機", "機械",
    "重工", "自動車", "電子", "電工", "硝子", "販売", "百貨店", "製菓", "水産", "乳業", "電気", "交通",
    "観光", "鉄道", "工営", "設計", "地所", "信用金庫", "生命", "火災", "海上", "損保", "信託", "製糖",
    "製粉", "紡織", "化成", "繊維", "鋼管", "電線", "造船", "重機", "貿易", "商社", "ガス", "製鉄",
    "窯業", "セメント", "ゴム", "製作", "工作所", "金属", "精工", "光学", "物流", "システム", "産機",
)
# ... unless it is one of these (schools, hospitals, public bodies, clubs).
NOT_FIRMS = re.compile(r"(大学|短大|学園|学校|高校|病院|協会|連合会|連盟|委員会|省|庁|研究所|組合|党|財団|公社|機構|センター)")

# Legal forms: (canonical, its spellings in print); the first spelling is the canonical one.
LEGAL = {
    "株式会社": ("株式会社", "（株）", "(株)", "㈱", "株式會社"),
    "有限会社": ("有限会社", "（有）", "(有)", "㈲", "有限會社"),
    "合資会社": ("合資会社", "（資）", "合資會社"),
}
# Share of entities per canonical legal form ("" = the directory prints none).
LEGAL_SHARE = (("株式会社", 0.68), ("有限会社", 0.12), ("合資会社", 0.04), ("", 0.16))

# Old (pre-1946) character forms, written for this module.
KYUJITAI = {
    "会": "會", "鉄": "鐵", "国": "國", "気": "氣", "発": "發", "薬": "藥",
    "売": "賣", "広": "廣", "沢": "澤", "浜": "濱", "栄": "榮", "実": "實", "営": "營",
    "総": "總", "証": "證", "芸": "藝", "写": "寫", "与": "與", "塩": "鹽", "亜": "亞", "関": "關",
    "斎": "齋", "竜": "龍", "万": "萬", "県": "縣", "帯": "帶", "継": "繼", "続": "續", "権": "權",
    "変": "變", "弁": "辨", "体": "體", "条": "條", "来": "來", "図": "圖", "団": "團", "伝": "傳",
    "当": "當", "属": "屬", "楽": "樂", "経": "經", "険": "險", "検": "檢",
    "蔵": "藏", "灯": "燈", "炉": "爐", "転": "轉", "軽": "輕", "駅": "驛", "験": "驗", "読": "讀",
}
# Abbreviations a directory or a newspaper table might use, applied to the end of the name.
ABBREVIATIONS = (
    ("工業", "工"), ("製作所", "製作"), ("銀行", "銀"), ("商事", "商"), ("電気", "電"),
    ("自動車", "自"), ("証券", "証"), ("建設", "建"), ("産業", "産"), ("信用金庫", "信金"),
    ("鉄道", "鉄"), ("不動産", "不"), ("化学", "化"), ("製薬", "薬"), ("百貨店", "百貨"),
)
HEAD_DROPS = ("日本", "大日本", "東京", "大阪")


@dataclass(frozen=True)
class Firm:
    core: str  # the lexicon's name, without a legal form
    legal: str  # canonical legal form, "" for none
    legal_first: bool
    group: int  # entities drawn as hard negatives of each other share a group (else unique)

    @property
    def text(self) -> str:
        return self.legal + self.core if self.legal_first else self.core + self.legal


def ipadic_org_path() -> Path:
    for d in IPADIC_DIRS:
        if (d / ORG_FILE).is_file():
            return d / ORG_FILE
    raise ConfigError(f"{ORG_FILE} not found under {', '.join(map(str, IPADIC_DIRS))}: apt-get install mecab-ipadic")


@functools.lru_cache(maxsize=1)
def lexicon_names() -> tuple[str, ...]:
    """Every organisation name of the lexicon (surface column), sorted and unique."""
    raw = ipadic_org_path().read_bytes().decode("euc_jp", errors="replace")
    names = {line.split(",", 1)[0] for line in raw.splitlines() if line.strip()}
    return tuple(sorted(n for n in names if n and "\ufffd" not in n))


@functools.lru_cache(maxsize=1)
def _generator_grammar() -> tuple[frozenset[str], tuple[str, ...]]:
    """The training generator's head and industry words: used only to EXCLUDE names."""
    from clippings.data.synth import names as gen

    heads = {w for w, _ in gen.PLACES + gen.FAMILIES + gen.BRANDS} | {w for w, _ in gen._HEAD_PREFIXES}
    industries = tuple(sorted({i[0] for i in gen.INDUSTRIES}, key=len, reverse=True))
    return frozenset(heads), industries


def _heads_only(s: str, heads: frozenset[str], depth: int = 0) -> bool:
    if not s:
        return depth > 0
    if depth >= 3:
        return False
    return any(s.startswith(h) and _heads_only(s[len(h):], heads, depth + 1) for h in heads if h)


def generator_could_make(core: str) -> bool:
    """True when `core` is head word(s) + an industry word of the training generator."""
    heads, industries = _generator_grammar()
    for ind in industries:
        if core.endswith(ind) and _heads_only(core[: -len(ind)], heads):
            return True
    return False


@functools.lru_cache(maxsize=1)
def firm_names() -> tuple[str, ...]:
    """The lexicon's firm-like names that the training generator cannot produce."""
    out = []
    for n in lexicon_names():
        if not (3 <= len(n) <= 12) or not n.endswith(FIRM_SUFFIXES) or NOT_FIRMS.search(n):
            continue
        if any(c.isascii() for c in n) or any(lf in n for lf in LEGAL):
            continue
        if generator_could_make(n):
            continue
        out.append(n)
    if len(out) < 100:
        raise ConfigError(f"only {len(out)} firm-like names in {ipadic_org_path()}")
    return tuple(out)


def _business_word(n: str) -> str:
    return max((s for s in FIRM_SUFFIXES if n.endswith(s)), key=len)


@functools.lru_cache(maxsize=1)
def neighbour_index() -> dict[str, tuple[str, ...]]:
    """Per name, the other firm names that are hard negatives for it: edit distance 1-2 at
    the same length, or the same first two characters and the same business word."""
    from rapidfuzz.distance import Levenshtein

    names = firm_names()
    by_key: dict[tuple[str, str], list[str]] = {}
    by_len: dict[int, list[str]] = {}
    for n in names:
        by_key.setdefault((n[:2], _business_word(n)), []).append(n)
        by_len.setdefault(len(n), []).append(n)
    out: dict[str, set[str]] = {n: set() for n in names}
    for group in by_key.values():
        for a in group:
            out[a].update(b for b in group if b != a)
    for group in by_len.values():
        for i, a in enumerate(group):
            for b in group[i + 1:]:
                if Levenshtein.distance(a, b, score_cutoff=2) <= min(2, len(a) // 3):
                    out[a].add(b)
                    out[b].add(a)
    return {n: tuple(sorted(v)) for n, v in out.items() if v}


def draw_firms(rng: np.random.Generator, n: int, negative_share: float = 0.4) -> list[Firm]:
    """`n` distinct firms; about `negative_share` of them come in groups of hard negatives."""
    names = firm_names()
    neighbours = neighbour_index()
    if n > len(names):
        raise ConfigError(f"asked for {n} entities; the lexicon has {len(names)} firm names")
    seeds = [names[i] for i in rng.permutation(len(names))]
    taken: set[str] = set()
    cores: list[tuple[str, int]] = []
    group = 0
    for name in seeds:
        if len(cores) >= n:
            break
        if name in taken:
            continue
        members = [name]
        if name in neighbours and rng.random() < negative_share:
            pool = [m for m in neighbours[name] if m not in taken]
            k = min(len(pool), 1 + int(rng.random() < 0.3), n - len(cores) - 1)
            if k > 0:
                members += [pool[i] for i in rng.choice(len(pool), size=k, replace=False)]
        for m in members:
            taken.add(m)
            cores.append((m, group))
        group += 1
    weights = np.array([w for _, w in LEGAL_SHARE])
    firms = []
    for core, g in cores[:n]:
        legal = LEGAL_SHARE[int(rng.choice(len(LEGAL_SHARE), p=weights / weights.sum()))][0]
        if core.endswith(("信用金庫", "生命", "相互銀行")):
            legal = ""  # not companies under the Commercial Code
        elif core.endswith("銀行") and legal:
            legal = "株式会社"
        firms.append(Firm(core, legal, bool(rng.random() < 0.45), g))
    return firms


def surface(firm: Firm, rng: np.random.Generator, strength: float) -> str:
    """One document's print of `firm`. `strength` in [0, 1]: 0 for a clean directory
    listing (the canonical form, mostly), 1 for a distant source."""
    core, legal, first = firm.core, firm.legal, firm.legal_first
    if rng.random() < 0.10 * strength:
        for long, short in ABBREVIATIONS:
            if core.endswith(long) and len(core) > len(long) + 1:
                core = core[: -len(long)] + short
                break
    if rng.random() < 0.06 * strength:
        for h in HEAD_DROPS:
            if core.startswith(h) and len(core) > len(h) + 2:
                core = core[len(h):]
                break
    if rng.random() < 0.2 * strength:
        core = "".join(KYUJITAI.get(c, c) for c in core)
    if legal:
        u = rng.random()
        if u < 0.25 * strength:
            legal = ""
        elif u < 0.75 * strength:
            legal = LEGAL[legal][int(rng.integers(1, len(LEGAL[legal])))]
        if rng.random() < 0.3 * strength:
            first = not first
    elif rng.random() < 0.3 * strength:  # the canonical listing has none, another source adds one
        legal, first = ("（株）" if rng.random() < 0.6 else "株式会社"), bool(rng.random() < 0.5)
    return legal + core if first else core + legal
