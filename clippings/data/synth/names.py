"""Compositional Japanese firm names, about 15% of them romanised.

A name is a head (place, family or brand word, sometimes two) + an industry word + a legal
form before or after, e.g. 株式会社山田製作所, 東洋紡績株式会社, 大日本窒素肥料. The word lists
are small and shared, and a fifth of the firms are siblings of an earlier one (one slot
changed: 東洋紡績 / 東洋紡織 / 東邦紡績), so names overlap enough to confuse string matching.
The lists are written here on purpose: no dictionary package is a name source, because a
held-out benchmark is built from one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from clippings.errors import ConfigError

# (kanji, romaji)
PLACES = (
    ("東洋", "Toyo"), ("大日本", "Dai Nippon"), ("日本", "Nippon"), ("東京", "Tokyo"), ("大阪", "Osaka"),
    ("京都", "Kyoto"), ("名古屋", "Nagoya"), ("横浜", "Yokohama"), ("神戸", "Kobe"), ("北海道", "Hokkaido"),
    ("九州", "Kyushu"), ("四国", "Shikoku"), ("関西", "Kansai"), ("関東", "Kanto"), ("中央", "Chuo"),
    ("東邦", "Toho"), ("東亜", "Toa"), ("大和", "Yamato"), ("昭和", "Showa"), ("大正", "Taisho"),
    ("明治", "Meiji"), ("富士", "Fuji"), ("旭", "Asahi"), ("日東", "Nitto"), ("帝国", "Teikoku"),
    ("国際", "Kokusai"), ("太平洋", "Taiheiyo"), ("新潟", "Niigata"), ("広島", "Hiroshima"), ("福岡", "Fukuoka"),
    ("仙台", "Sendai"), ("札幌", "Sapporo"), ("静岡", "Shizuoka"), ("岡山", "Okayama"), ("熊本", "Kumamoto"),
    ("長崎", "Nagasaki"), ("金沢", "Kanazawa"), ("富山", "Toyama"), ("岐阜", "Gifu"), ("三重", "Mie"),
    ("奈良", "Nara"), ("和歌山", "Wakayama"), ("姫路", "Himeji"), ("堺", "Sakai"), ("尼崎", "Amagasaki"),
    ("川口", "Kawaguchi"), ("八幡", "Yawata"), ("室蘭", "Muroran"), ("釜石", "Kamaishi"), ("小倉", "Kokura"),
    ("門司", "Moji"), ("宇部", "Ube"), ("徳山", "Tokuyama"), ("呉", "Kure"), ("佐世保", "Sasebo"),
    ("舞鶴", "Maizuru"), ("北陸", "Hokuriku"), ("東北", "Tohoku"), ("山陽", "Sanyo"), ("山陰", "San-in"),
    ("中国", "Chugoku"), ("近畿", "Kinki"), ("東海", "Tokai"), ("西日本", "Nishi Nippon"), ("東日本", "Higashi Nippon"),
    ("南海", "Nankai"), ("北越", "Hokuetsu"), ("越後", "Echigo"), ("信越", "Shin-etsu"), ("常磐", "Joban"),
    ("房総", "Boso"), ("甲府", "Kofu"), ("松本", "Matsumoto"), ("諏訪", "Suwa"), ("上田", "Ueda"),
    ("桐生", "Kiryu"), ("足利", "Ashikaga"), ("高崎", "Takasaki"), ("前橋", "Maebashi"), ("宇都宮", "Utsunomiya"),
    ("水戸", "Mito"), ("千葉", "Chiba"), ("浦和", "Urawa"), ("川崎", "Kawasaki"), ("横須賀", "Yokosuka"),
    ("浜松", "Hamamatsu"), ("豊橋", "Toyohashi"), ("岡崎", "Okazaki"), ("一宮", "Ichinomiya"), ("四日市", "Yokkaichi"),
    ("大津", "Otsu"), ("福井", "Fukui"), ("鳥取", "Tottori"), ("松江", "Matsue"), ("高松", "Takamatsu"),
    ("松山", "Matsuyama"), ("高知", "Kochi"), ("徳島", "Tokushima"), ("大分", "Oita"), ("宮崎", "Miyazaki"),
    ("鹿児島", "Kagoshima"), ("佐賀", "Saga"), ("函館", "Hakodate"), ("小樽", "Otaru"), ("旭川", "Asahikawa"),
    ("青森", "Aomori"), ("秋田", "Akita"), ("山形", "Yamagata"), ("盛岡", "Morioka"), ("福島", "Fukushima"),
    ("郡山", "Koriyama"), ("日立", "Hitachi"), ("東洋高", "Toyotaka"), ("中日本", "Naka Nippon"), ("北日本", "Kita Nippon"),
    ("南日本", "Minami Nippon"), ("全国", "Zenkoku"), ("大東", "Daito"), ("東", "Higashi"), ("西", "Nishi"),
)
FAMILIES = (
    ("山田", "Yamada"), ("鈴木", "Suzuki"), ("佐藤", "Sato"), ("田中", "Tanaka"), ("高橋", "Takahashi"),
    ("渡辺", "Watanabe"), ("伊藤", "Ito"), ("中村", "Nakamura"), ("小林", "Kobayashi"), ("加藤", "Kato"),
    ("吉田", "Yoshida"), ("山本", "Yamamoto"), ("井上", "Inoue"), ("木村", "Kimura"), ("林", "Hayashi"),
    ("清水", "Shimizu"), ("山崎", "Yamazaki"), ("森", "Mori"), ("池田", "Ikeda"), ("橋本", "Hashimoto"),
    ("阿部", "Abe"), ("石川", "Ishikawa"), ("山口", "Yamaguchi"), ("中島", "Nakajima"), ("前田", "Maeda"),
    ("藤田", "Fujita"), ("小川", "Ogawa"), ("岡田", "Okada"), ("後藤", "Goto"), ("長谷川", "Hasegawa"),
    ("村上", "Murakami"), ("近藤", "Kondo"), ("石井", "Ishii"), ("坂本", "Sakamoto"), ("遠藤", "Endo"),
    ("青木", "Aoki"), ("藤井", "Fujii"), ("西村", "Nishimura"), ("福田", "Fukuda"), ("太田", "Ota"),
    ("三浦", "Miura"), ("藤原", "Fujiwara"), ("岡本", "Okamoto"), ("松田", "Matsuda"), ("中川", "Nakagawa"),
    ("中野", "Nakano"), ("原田", "Harada"), ("小野", "Ono"), ("田村", "Tamura"), ("竹内", "Takeuchi"),
    ("金子", "Kaneko"), ("和田", "Wada"), ("中山", "Nakayama"), ("石田", "Ishida"), ("森田", "Morita"),
    ("原", "Hara"), ("柴田", "Shibata"), ("酒井", "Sakai"), ("工藤", "Kudo"), ("横山", "Yokoyama"),
    ("宮本", "Miyamoto"), ("内田", "Uchida"), ("高木", "Takagi"), ("安藤", "Ando"), ("谷口", "Taniguchi"),
    ("大野", "Ono"), ("丸山", "Maruyama"), ("今井", "Imai"), ("河野", "Kono"), ("藤本", "Fujimoto"),
    ("村田", "Murata"), ("武田", "Takeda"), ("上野", "Ueno"), ("杉山", "Sugiyama"), ("増田", "Masuda"),
    ("平野", "Hirano"), ("大塚", "Otsuka"), ("久保", "Kubo"), ("松井", "Matsui"), ("小島", "Kojima"),
    ("岩崎", "Iwasaki"), ("桜井", "Sakurai"), ("野口", "Noguchi"), ("松尾", "Matsuo"), ("野村", "Nomura"),
    ("木下", "Kinoshita"), ("菊地", "Kikuchi"), ("佐野", "Sano"), ("大西", "Onishi"), ("杉本", "Sugimoto"),
    ("新井", "Arai"), ("浅野", "Asano"), ("古河", "Furukawa"), ("安田", "Yasuda"), ("大倉", "Okura"),
    ("久原", "Kuhara"), ("鮎川", "Aikawa"), ("渋沢", "Shibusawa"), ("住友", "Sumitomo"), ("三井", "Mitsui"),
)
BRANDS = (
    ("丸善", "Maruzen"), ("丸紅", "Marubeni"), ("大丸", "Daimaru"), ("三共", "Sankyo"), ("第一", "Daiichi"),
    ("第二", "Daini"), ("協和", "Kyowa"), ("共同", "Kyodo"), ("共栄", "Kyoei"), ("大同", "Daido"),
    ("合同", "Godo"), ("日興", "Nikko"), ("日新", "Nisshin"), ("日清", "Nisshin"), ("新興", "Shinko"),
    ("興亜", "Koa"), ("光", "Hikari"), ("明星", "Myojo"), ("金剛", "Kongo"), ("菊水", "Kikusui"),
    ("松竹", "Shochiku"), ("東宝", "Toho"), ("宝", "Takara"), ("寿", "Kotobuki"), ("栄", "Sakae"),
    ("昭栄", "Shoei"), ("三栄", "San-ei"), ("大栄", "Daiei"), ("太陽", "Taiyo"), ("日の出", "Hinode"),
    ("旭日", "Kyokujitsu"), ("富国", "Fukoku"), ("大成", "Taisei"), ("大洋", "Taiyo"), ("三和", "Sanwa"),
    ("三洋", "Sanyo"), ("八洲", "Yashima"), ("三菱", "Mitsubishi"), ("丸井", "Marui"), ("丸大", "Marudai"),
    ("山一", "Yamaichi"), ("日産", "Nissan"), ("日窒", "Nitchitsu"), ("鐘紡", "Kanebo"), ("倉敷", "Kurashiki"),
    ("敷島", "Shikishima"), ("朝日", "Asahi"), ("白鶴", "Hakutsuru"), ("金星", "Kinsei"), ("福助", "Fukusuke"),
    ("正栄", "Shoei"), ("三光", "Sanko"), ("日光", "Nikko"), ("東光", "Toko"), ("大正海", "Taishokai"),
)
# (kanji, romaji, English)
INDUSTRIES = (
    ("紡績", "Boseki", "Spinning"), ("紡織", "Boshoku", "Spinning & Weaving"), ("製糸", "Seishi", "Silk Reeling"),
    ("織物", "Orimono", "Textile"), ("毛織", "Keori", "Woollen Mills"), ("染工", "Senko", "Dyeing"),
    ("人絹", "Jinken", "Rayon"), ("レーヨン", "Rayon", "Rayon"), ("化繊", "Kasen", "Synthetic Fibre"),
    ("製紙", "Seishi", "Paper Manufacturing"), ("パルプ", "Pulp", "Pulp"), ("製糖", "Seito", "Sugar Refining"),
    ("製粉", "Seifun", "Flour Milling"), ("製菓", "Seika", "Confectionery"), ("製薬", "Seiyaku", "Pharmaceutical"),
    ("薬品", "Yakuhin", "Drug"), ("化学工業", "Kagaku Kogyo", "Chemical Industries"), ("化学", "Kagaku", "Chemical"),
    ("化成", "Kasei", "Chemical"), ("窒素肥料", "Chisso Hiryo", "Nitrogen Fertilizer"),
    ("人造肥料", "Jinzo Hiryo", "Artificial Fertilizer"), ("肥料", "Hiryo", "Fertilizer"), ("曹達", "Soda", "Soda"),
    ("硝子", "Garasu", "Glass"), ("板硝子", "Ita Garasu", "Sheet Glass"), ("セメント", "Cement", "Cement"),
    ("窯業", "Yogyo", "Ceramic Industries"), ("製陶", "Seito", "Porcelain"), ("陶器", "Toki", "Pottery"),
    ("製鋼", "Seiko", "Steel"), ("製鉄", "Seitetsu", "Iron & Steel"), ("鉄鋼", "Tekko", "Iron & Steel"),
    ("鋼管", "Kokan", "Steel Tube"), ("鋳造", "Chuzo", "Foundry"), ("金属工業", "Kinzoku Kogyo", "Metal Industries"),
    ("鉱業", "Kogyo", "Mining"), ("炭礦", "Tanko", "Colliery"), ("石炭", "Sekitan", "Coal"),
    ("石油", "Sekiyu", "Oil"), ("瓦斯", "Gasu", "Gas"), ("電力", "Denryoku", "Electric Power"),
    ("電気", "Denki", "Electric"), ("電機", "Denki", "Electric Machinery"), ("電線", "Densen", "Electric Wire"),
    ("電気工業", "Denki Kogyo", "Electric Industries"), ("重工業", "Jukogyo", "Heavy Industries"),
    ("造船", "Zosen", "Shipbuilding"), ("船渠", "Senkyo", "Dock"), ("汽船", "Kisen", "Steamship"),
    ("海運", "Kaiun", "Shipping"), ("郵船", "Yusen", "Mail Steamship"), ("鉄道", "Tetsudo", "Railway"),
    ("電鉄", "Dentetsu", "Electric Railway"), ("自動車", "Jidosha", "Motor"),
    ("自動車工業", "Jidosha Kogyo", "Motor Industries"), ("航空", "Koku", "Aviation"), ("機械", "Kikai", "Machinery"),
    ("機械製作所", "Kikai Seisakusho", "Machine Works"), ("製作所", "Seisakusho", "Works"),
    ("工業", "Kogyo", "Industries"), ("工業所", "Kogyosho", "Industrial Works"), ("鉄工所", "Tekkosho", "Iron Works"),
    ("精機", "Seiki", "Precision Machinery"), ("計器", "Keiki", "Instruments"), ("光学", "Kogaku", "Optical"),
    ("写真工業", "Shashin Kogyo", "Photo Industries"), ("印刷", "Insatsu", "Printing"), ("出版", "Shuppan", "Publishing"),
    ("新聞", "Shimbun", "Newspaper"), ("倉庫", "Soko", "Warehouse"), ("運輸", "Unyu", "Transport"),
    ("通運", "Tsuun", "Express"), ("商事", "Shoji", "Trading"), ("商会", "Shokai", "& Co."),
    ("商店", "Shoten", "Shoten"), ("物産", "Bussan", "Trading"), ("貿易", "Boeki", "Trading"),
    ("産業", "Sangyo", "Industries"), ("興業", "Kogyo", "Enterprise"), ("興産", "Kosan", "Kosan"),
    ("銀行", "Ginko", "Bank"), ("信託", "Shintaku", "Trust"), ("生命保険", "Seimei Hoken", "Life Insurance"),
    ("火災海上保険", "Kasai Kaijo Hoken", "Fire & Marine Insurance"), ("証券", "Shoken", "Securities"),
    ("土地", "Tochi", "Land"), ("建設", "Kensetsu", "Construction"), ("土木", "Doboku", "Civil Engineering"),
    ("組", "Gumi", "Gumi"), ("工務店", "Komuten", "Builders"), ("木材", "Mokuzai", "Timber"),
    ("製材", "Seizai", "Lumber"), ("酒造", "Shuzo", "Sake Brewery"), ("醸造", "Jozo", "Brewing"),
    ("麦酒", "Bakushu", "Brewery"), ("食品", "Shokuhin", "Foods"), ("水産", "Suisan", "Fisheries"),
    ("製氷", "Seihyo", "Ice"), ("冷蔵", "Reizo", "Cold Storage"), ("乳業", "Nyugyo", "Dairy"),
    ("製油", "Seiyu", "Oil Mills"), ("ゴム", "Gomu", "Rubber"), ("ゴム工業", "Gomu Kogyo", "Rubber Industries"),
    ("皮革", "Hikaku", "Leather"), ("百貨店", "Hyakkaten", "Department Store"), ("映画", "Eiga", "Films"),
    ("興行", "Kogyo", "Theatres"), ("ホテル", "Hotel", "Hotel"), ("不動産", "Fudosan", "Real Estate"),
    ("開発", "Kaihatsu", "Development"), ("ラジオ", "Radio", "Radio"), ("電業", "Dengyo", "Electrical Works"),
    ("製靴", "Seika", "Shoe"), ("製缶", "Seikan", "Can"), ("製罐", "Seikan", "Can"),
    ("硫酸", "Ryusan", "Sulphuric Acid"), ("染料", "Senryo", "Dyestuff"), ("塗料", "Toryo", "Paint"),
    ("ペイント", "Paint", "Paint"), ("工作所", "Kosakusho", "Works"), ("製作", "Seisaku", "Manufacturing"),
    ("綿業", "Mengyo", "Cotton"), ("綿布", "Menpu", "Cotton Cloth"), ("撚糸", "Nenshi", "Twisting"),
    ("莫大小", "Meriyasu", "Knitting"), ("鉄工", "Tekko", "Iron Works"), ("製鎖", "Seisa", "Chain"),
)
# Family firms are mostly shops and works.
_SHOP_INDUSTRIES = ("商店", "商会", "製作所", "鉄工所", "組", "工務店", "工業所", "工作所", "酒造", "醸造",
                    "印刷", "製材", "商事", "工業", "織物", "製菓", "木材", "鉄工", "染工", "莫大小")
_HEAD_PREFIXES = (("新", "Shin "), ("大", "Dai "), ("第一", "Daiichi "), ("北", "Kita "), ("南", "Minami "))

# (kanji, English, position weights (before, after)); 株式会社 dominates as in the directories.
LEGAL_FORMS = (
    ("株式会社", 0.74), ("合資会社", 0.08), ("合名会社", 0.05), ("有限会社", 0.06), ("", 0.07),
)
_LEGAL_EN = {
    "株式会社": (("Co., Ltd.", 0.35), ("Company, Limited", 0.15), ("K.K.", 0.2), ("Kabushiki Kaisha", 0.15),
             ("Ltd.", 0.1), ("Limited", 0.05)),
    "合資会社": (("Goshi Kaisha", 0.6), ("& Co.", 0.4)),
    "合名会社": (("Gomei Kaisha", 0.6), ("& Co.", 0.4)),
    "有限会社": (("Yugen Kaisha", 0.5), ("Co., Ltd.", 0.5)),
    "": (("", 0.6), ("Co.", 0.4)),
}
# New (post-1946) character forms and the old forms a pre-war print or a conservative
# directory would use for the same firm.
OLD_FORMS = {
    "鉄": "鐵", "会": "會", "気": "氣", "発": "發", "売": "賣", "薬": "藥", "団": "團", "県": "縣", "国": "國",
    "学": "學", "広": "廣", "沢": "澤", "浜": "濱", "辺": "邊", "竜": "龍", "亜": "亞", "与": "與", "証": "證",
    "栄": "榮", "塩": "鹽", "伝": "傳", "礦": "鑛", "桜": "櫻", "関": "關", "宝": "寶",
    "実": "實", "総": "總", "経": "經", "済": "濟", "択": "擇", "図": "圖", "円": "圓", "観": "觀",
    "検": "檢", "権": "權", "営": "營", "労": "勞", "恵": "惠", "徳": "德", "万": "萬", "写": "寫", "台": "臺",
    "鋳": "鑄", "糸": "絲", "缶": "罐", "剤": "劑", "芸": "藝", "処": "處", "継": "繼", "斎": "齋",
    "条": "條", "体": "體", "旧": "舊", "帰": "歸", "乗": "乘", "両": "兩",
}


@dataclass(frozen=True)
class FirmName:
    script: str  # "ja" or "en"
    head: tuple[str, ...]  # kanji words before the industry
    head_romaji: tuple[str, ...]
    industry: int  # index into INDUSTRIES
    legal: str  # one of LEGAL_FORMS' kanji ("" for none)
    legal_first: bool
    english_style: str  # "en" (English industry word) or "romaji"; only for script "en"
    legal_en: str  # the romanised legal form; only for script "en"

    @property
    def text(self) -> str:
        """The canonical printed name."""
        if self.script == "ja":
            core = "".join(self.head) + INDUSTRIES[self.industry][0]
            return self.legal + core if self.legal_first else core + self.legal
        return english_name(self, self.legal_en)


def english_name(name: FirmName, legal_en: str, with_the: bool = True) -> str:
    _, romaji, english = INDUSTRIES[name.industry]
    head = " ".join(name.head_romaji)
    industry = english if name.english_style == "en" else romaji
    if industry == "& Co.":  # 商会: "Yamada & Co., Ltd."
        core = f"{head} & Co."
        if legal_en in ("& Co.", "Co."):
            legal_en = ""
        elif legal_en.startswith("Co., "):
            core, legal_en = f"{head} & Co.,", legal_en[len("Co., "):]
    else:
        core = f"{head} {industry}"
    if legal_en == "Kabushiki Kaisha" and name.legal_first:
        return f"Kabushiki Kaisha {core}"
    if with_the and legal_en in ("Company, Limited", "Limited") and name.english_style == "en":
        core = f"The {core}"
    return f"{core} {legal_en}".strip()


def _weighted(rng: np.random.Generator, options):
    weights = np.array([w for _, w in options], dtype=float)
    return options[int(rng.choice(len(options), p=weights / weights.sum()))][0]


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def _random_head(rng: np.random.Generator) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """-> (kanji words, romaji words, is_family)."""
    u = rng.random()
    if u < 0.40:
        p = _pick(rng, PLACES)
        return (p[0],), (p[1],), False
    if u < 0.66:
        f = _pick(rng, FAMILIES)
        return (f[0],), (f[1],), True
    if u < 0.83:
        b = _pick(rng, BRANDS)
        return (b[0],), (b[1],), False
    if u < 0.91:
        p, b = _pick(rng, PLACES), _pick(rng, BRANDS)
        return (p[0], b[0]), (p[1], b[1]), False
    if u < 0.96:
        pre, p = _pick(rng, _HEAD_PREFIXES), _pick(rng, PLACES)
        return (pre[0], p[0]), (pre[1].strip(), p[1]), False
    p, f = _pick(rng, PLACES), _pick(rng, FAMILIES)
    return (p[0], f[0]), (p[1], f[1]), True


def _random_industry(rng: np.random.Generator, family: bool) -> int:
    if family and rng.random() < 0.7:
        word = _pick(rng, _SHOP_INDUSTRIES)
        return next(i for i, ind in enumerate(INDUSTRIES) if ind[0] == word)
    return int(rng.integers(len(INDUSTRIES)))


def _random_legal(rng: np.random.Generator) -> tuple[str, bool]:
    legal = _weighted(rng, LEGAL_FORMS)
    return legal, bool(rng.random() < 0.5)


def random_firm(rng: np.random.Generator, english_rate: float = 0.15) -> FirmName:
    head, head_romaji, family = _random_head(rng)
    legal, legal_first = _random_legal(rng)
    script = "en" if rng.random() < english_rate else "ja"
    style = "en" if rng.random() < 0.6 else "romaji"
    return FirmName(script, head, head_romaji, _random_industry(rng, family), legal, legal_first,
                    style, _weighted(rng, _LEGAL_EN[legal]))


def sibling_firm(rng: np.random.Generator, base: FirmName) -> FirmName:
    """`base` with one slot changed: a different firm with a confusingly close name."""
    u = rng.random()
    if u < 0.45:
        return replace(base, industry=_random_industry(rng, family=False))
    if u < 0.85:
        i = int(rng.integers(len(base.head)))
        pool = PLACES if rng.random() < 0.6 else (FAMILIES if rng.random() < 0.5 else BRANDS)
        word = _pick(rng, pool)
        head = base.head[:i] + (word[0],) + base.head[i + 1:]
        head_romaji = base.head_romaji[:i] + (word[1],) + base.head_romaji[i + 1:]
        return replace(base, head=head, head_romaji=head_romaji)
    legal, legal_first = _random_legal(rng)
    return replace(base, legal=legal, legal_first=legal_first, industry=_random_industry(rng, False),
                   legal_en=_weighted(rng, _LEGAL_EN[legal]))


def firm_names(rng: np.random.Generator, n: int, sibling_rate: float = 0.2) -> list[FirmName]:
    """`n` firms with distinct canonical names, drawn in order (deterministic for `rng`)."""
    firms: list[FirmName] = []
    seen: set[str] = set()
    attempts = 0
    while len(firms) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ConfigError(f"could not draw {n} distinct firm names (got {len(firms)}): ask for fewer entities")
        if firms and rng.random() < sibling_rate:
            firm = sibling_firm(rng, firms[int(rng.integers(len(firms)))])
        else:
            firm = random_firm(rng)
        key = firm.text
        if key not in seen:
            seen.add(key)
            firms.append(firm)
    return firms


def surface_form(firm: FirmName, rng: np.random.Generator, strength: float) -> str:
    """How one document prints the firm: the canonical name, or with the legal form
    abbreviated or dropped, old character forms, capitals... `strength` in [0, 1]
    scales how far a print strays from the canonical name."""
    if firm.script == "en":
        legal_en = firm.legal_en
        if legal_en and rng.random() < 0.35 * strength:
            alternatives = [e for e, _ in _LEGAL_EN[firm.legal] if e != legal_en] or [""]
            legal_en = _pick(rng, alternatives + ["Co. Ltd.", ""])
        text = english_name(firm, legal_en, with_the=rng.random() >= 0.3 * strength)
        if rng.random() < 0.12:
            text = text.upper()
        return text
    core = "".join(firm.head) + INDUSTRIES[firm.industry][0]
    legal, legal_first = firm.legal, firm.legal_first
    if legal and rng.random() < 0.35 * strength:
        u = rng.random()
        if legal == "株式会社" and u < 0.45:
            legal = "(株)" if rng.random() < 0.7 else "㈱"
        elif u < 0.8:
            legal = ""
        else:
            legal_first = not legal_first
    if rng.random() < 0.25 * strength:
        core = "".join(OLD_FORMS.get(ch, ch) for ch in core)
        legal = "".join(OLD_FORMS.get(ch, ch) for ch in legal)
    return legal + core if legal_first else core + legal


def name_characters() -> str:
    """Every character a printed Japanese name can contain (for font coverage checks)."""
    words = [w for w, _ in PLACES + FAMILIES + BRANDS] + [i[0] for i in INDUSTRIES]
    words += [k for k, _ in LEGAL_FORMS] + [p for p, _ in _HEAD_PREFIXES] + ["(株)", "㈱"]
    chars = set("".join(words))
    chars |= {OLD_FORMS[c] for c in chars if c in OLD_FORMS}
    return "".join(sorted(chars))
