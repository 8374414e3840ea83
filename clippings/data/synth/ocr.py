"""OCR-like noise: what a real OCR engine makes of a degraded printed name or caption.

Errors follow visual similarity (土/士, 力/カ, ソ/ン, rn/m, 0/O), split wide characters into
their parts (明 -> 日月) or merge neighbours (木寸 -> 村), drop and insert characters and add
stray spaces and punctuation. Vertical crops are noisier, as real OCR is on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Each string is a group of characters an OCR engine confuses with one another.
CONFUSABLE_GROUPS = (
    # kanji <-> katakana look-alikes
    "土士", "未末", "日曰", "力カ刀", "口ロ", "二ニ", "工エ", "八ハ", "夕タ", "卜ト", "ソン", "シツ", "一ー―", "人入",
    "千干チ", "三ミ", "才オ", "又ヌ", "夂ク", "匕ヒ", "厶ム", "丶ヽ", "丿ノ", "へヘ", "べベ", "ぺペ", "ワウ", "ラフ",
    "ユコ", "ヨョ", "ツッ", "ヤャ", "ュユ", "ルレ", "メ×", "セせ", "ゴコ", "ブプフ", "パバハ", "ピビヒ", "ポボホ",
    "ペベヘ", "ガカ", "ギキ", "ゲケ", "ザサ", "ダタ", "デテ", "ドト", "ズス", "ジシ", "ヅツ", "ゼセ", "ゾソ",
    # kanji look-alikes
    "大太犬丈", "己已巳", "王玉主", "田由甲申", "木本术", "天夫", "午牛", "失矢", "白自百", "目且旦", "貝見",
    "問間聞開関", "待持特", "綿錦", "績積", "織識職", "糸系", "紡紛", "鋼網綱銅", "鉄鈇", "業葉", "電雷",
    "機磯", "商啇", "社杜", "株珠", "式武弐", "限根眼", "資賀貨貸", "名各", "東束", "洋祥", "紙絋", "薬楽",
    "学字", "石右", "産彦", "興輿與", "協脇", "共其", "同向岡", "明朋", "昭照", "和知", "正止", "新親",
    "光先", "富冨", "中申", "井丼并", "村材林", "水氷永", "北比", "西酉両", "海悔", "島鳥烏", "原源",
    "沢択訳", "道導", "鉱拡", "炭灰", "油抽", "瓦互", "斯期欺", "気汽", "船般", "鋳鑄", "管菅官", "造遣違",
    "運連軍", "輸輪論", "倉蒼", "庫車", "易昜", "銀鉛", "行付", "信倍", "託記", "保係", "険検験", "証訂",
    "券巻", "地池他", "建健", "設没", "組粗祖", "酒洒", "菓果", "食良", "品晶", "皮波", "革華", "絹緒",
    "染梁", "店占", "映暎", "画面", "不下", "動勤働", "発登", "国固図", "際祭", "帝常", "平半", "陽湯場",
    "亜垂", "邦那", "治冶", "旭旦", "朝潮", "立豆", "住往佳", "友反支", "菱陵", "安案", "古吉", "河何",
    "浅残", "崎埼", "淵渕", "毛手", "糖塘", "粉扮", "肥把", "料科", "窒室", "素索", "曹曽", "達違",
    "硝哨", "子了", "陶掏", "精情晴清", "計針許", "写与", "真直", "印卯", "刷刺", "版坂板阪", "放於",
    "送逆", "通過", "事争", "会今合", "物牧", "紅江", "鋼綱", "麦表", "冷令", "乳孔", "宝玉", "栄営",
    "松枩", "野墅", "広庄", "府附", "都部", "京亰", "阪坂", "浜兵", "崎碕", "樹権", "本木", "森淼",
    "野予", "山出", "小少", "形彩", "米来", "里黒", "倉蔵", "鶴鵠", "舞無", "館舘", "團囲", "國圀",
    # Latin, digits and punctuation
    "0OoQD", "1lI|i!", "5S", "8B", "6b", "ce", "ao", "uv", "hb", "nh", "tf", "EF", "PR", "KX", "2Z", "CG(",
    ",.;", "'`\"", "-_~", "&8", "()[]",
)
# Multi-character OCR confusions (both directions).
SEQUENCE_CONFUSIONS = (("rn", "m"), ("cl", "d"), ("vv", "w"), ("ri", "n"), ("li", "h"), ("nn", "m"),
                       ("ii", "u"), ("fi", "ñ"), ("(株)", "㈱"), ("株式", "株弍"))
# Wide characters an OCR engine may read as their left and right parts (horizontal lines)...
SPLITS_LEFT_RIGHT = {
    "明": "日月", "好": "女子", "林": "木木", "村": "木寸", "仁": "イ二", "化": "イヒ", "材": "木才", "松": "木公",
    "細": "糸田", "紅": "糸工", "社": "ネ土", "和": "禾口", "知": "矢口", "計": "言十", "加": "力口", "功": "工力",
    "助": "且力", "野": "里予", "動": "重力", "行": "彳亍", "新": "亲斤", "鉄": "金失", "銀": "金艮", "鋼": "金岡",
    "紡": "糸方", "績": "糸責", "紙": "糸氏", "線": "糸泉", "油": "氵由", "洋": "氵羊", "海": "氵毎", "沢": "氵尺",
    "浜": "氵兵", "河": "氵可", "治": "氵台", "酒": "氵酉", "汽": "氵气", "帆": "巾凡", "旭": "九日", "時": "日寺",
    "昭": "日召", "機": "木幾", "械": "木戒", "物": "牛勿", "粉": "米分", "糖": "米唐", "精": "米青", "鉱": "金広",
    "倉": "今石", "館": "食官", "朝": "卓月", "都": "者阝", "部": "音阝", "郵": "垂阝", "阪": "阝反",
    "陶": "阝匋", "陽": "阝昜", "川": "ノ川", "北": "コヒ", "硝": "石肖", "砂": "石少", "炭": "山灰", "組": "糸且",
}
# ... or as their top and bottom parts (vertical lines).
SPLITS_TOP_BOTTOM = {
    "昌": "日日", "呂": "口口", "古": "十口", "音": "立日", "早": "日十", "吉": "士口", "字": "宀子", "星": "日生",
    "思": "田心", "男": "田力", "岩": "山石", "炭": "山灰", "界": "田介", "杏": "木口", "李": "木子", "森": "木林",
    "晶": "日昌", "岡": "冂山", "業": "業", "東": "木日", "葉": "艹世", "薬": "艹楽", "菱": "艹夌", "芝": "艹之",
    "宝": "宀玉", "富": "宀畐", "宮": "宀呂", "安": "宀女", "寿": "三寸", "二": "一一", "三": "二一", "章": "立早",
    "意": "音心", "製": "制衣", "繋": "毄糸", "紫": "此糸", "素": "主糸", "崎": "山奇", "島": "鳥山", "尚": "小冂",
    "党": "尚儿", "京": "亠小", "高": "亠口冋", "営": "ツ宮", "栄": "ツ木", "学": "ツ子", "常": "尚巾", "賞": "尚貝",
}
SPLITS_TOP_BOTTOM = {k: v for k, v in SPLITS_TOP_BOTTOM.items() if k != v}
_MERGE_LEFT_RIGHT = {v: k for k, v in SPLITS_LEFT_RIGHT.items() if len(v) == 2}
_MERGE_TOP_BOTTOM = {v: k for k, v in SPLITS_TOP_BOTTOM.items() if len(v) == 2}
_SPURIOUS_JA = "・、。｜|'一ー丶ノ.,:"
_SPURIOUS_LATIN = ".,'`:;-|_~"
_KATAKANA = "".join(chr(c) for c in range(0x30A1, 0x30F7))
_LATIN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

_CONFUSERS: dict[str, str] = {}
for _group in CONFUSABLE_GROUPS:
    for _ch in _group:
        _CONFUSERS[_ch] = _CONFUSERS.get(_ch, "") + _group.replace(_ch, "")
_KANJI_POOL = "".join(sorted({c for g in CONFUSABLE_GROUPS for c in g if "\u4e00" <= c <= "\u9fff"}))


@dataclass(frozen=True)
class OcrNoise:
    """Per-character error probabilities."""

    confuse: float  # a visually similar character, where the tables know one
    substitute: float  # an unrelated character (OCR output for a smudge)
    delete: float
    insert: float  # a spurious character or punctuation mark
    split: float  # a wide character read as its parts
    merge: float  # two neighbours read as one character
    space: float  # a stray space (or, in Latin text, a lost one)
    swap: float  # two neighbours in the wrong order

    @classmethod
    def at(cls, level: float, vertical: bool = False) -> "OcrNoise":
        """The noise at `level` in [0, 1] (0: clean, 1: a bad scan); vertical lines x1.4."""
        k = max(0.0, level) * (1.4 if vertical else 1.0)
        return cls(
            confuse=min(0.5, 0.20 * k), substitute=0.025 * k, delete=0.03 * k, insert=0.02 * k,
            split=min(0.5, 0.10 * k), merge=min(0.5, 0.10 * k), space=0.02 * k, swap=0.008 * k,
        )


def ocr_text(text: str, rng: np.random.Generator, level: float, vertical: bool = False) -> str:
    """`text` as an OCR engine at noise `level` would read it."""
    noise = OcrNoise.at(level, vertical)
    latin = sum(ch.isascii() for ch in text) > len(text) / 2
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        u = rng.random()
        merged = _try_merge(text, i, vertical, latin)
        if merged is not None and u < noise.merge:
            piece, step = merged
            out.append(piece)
            i += step
            continue
        u = rng.random()
        if u < noise.delete:
            pass
        elif u < noise.delete + noise.substitute:
            out.append(_random_char(rng, ch))
        elif u < noise.delete + noise.substitute + noise.confuse and _confusable(ch):
            out.append(_confuse(rng, ch))
        elif u < noise.delete + noise.substitute + noise.confuse + noise.split and _splittable(ch, vertical):
            out.append((SPLITS_TOP_BOTTOM if vertical else SPLITS_LEFT_RIGHT).get(ch) or SPLITS_LEFT_RIGHT[ch])
        else:
            out.append(ch)
        if rng.random() < noise.insert:
            out.append(_pick(rng, _SPURIOUS_LATIN if latin else _SPURIOUS_JA))
        if rng.random() < noise.space:
            if latin and out and out[-1] == " ":
                out.pop()  # words run together
            else:
                out.append(" ")
        if len(out) >= 2 and rng.random() < noise.swap:
            out[-1], out[-2] = out[-2], out[-1]
        i += 1
    result = "".join(out)
    if latin:
        result = _sequence_confusions(result, rng, noise.confuse * 0.5)
    return " ".join(result.split()) if rng.random() < 0.8 else result


def _pick(rng: np.random.Generator, seq: str) -> str:
    return seq[int(rng.integers(len(seq)))]


def _confusable(ch: str) -> bool:
    return ch in _CONFUSERS


def _confuse(rng: np.random.Generator, ch: str) -> str:
    return _pick(rng, _CONFUSERS[ch])


def _splittable(ch: str, vertical: bool) -> bool:
    return ch in SPLITS_LEFT_RIGHT or (vertical and ch in SPLITS_TOP_BOTTOM)


def _try_merge(text: str, i: int, vertical: bool, latin: bool) -> tuple[str, int] | None:
    pair = text[i:i + 2]
    if len(pair) < 2:
        return None
    if latin:
        for a, b in SEQUENCE_CONFUSIONS:
            if len(a) == 2 and pair == a:
                return b, 2
        return None
    table = _MERGE_TOP_BOTTOM if vertical else _MERGE_LEFT_RIGHT
    if pair in table:
        return table[pair], 2
    return None


def _random_char(rng: np.random.Generator, ch: str) -> str:
    if ch.isascii():
        return _pick(rng, _LATIN)
    if "\u30a0" <= ch <= "\u30ff":
        return _pick(rng, _KATAKANA)
    return _pick(rng, _KANJI_POOL)


def _sequence_confusions(text: str, rng: np.random.Generator, rate: float) -> str:
    for a, b in SEQUENCE_CONFUSIONS:
        for src, dst in ((a, b), (b, a)):
            if src in text and rng.random() < rate * text.count(src):
                at = text.find(src)
                text = text[:at] + dst + text[at + len(src):]
    return text


def char_error_rate(truth: str, read: str) -> float:
    """Levenshtein distance / len(truth): the usual OCR quality figure."""
    from rapidfuzz.distance import Levenshtein

    return Levenshtein.distance(truth, read) / max(1, len(truth))
