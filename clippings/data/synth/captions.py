"""English photo captions for synthetic news stories.

A story has facts (who, what, where, when, which agency) and two texts: the wire caption
and another paper's rewrite of it. Instances of the story reprint the caption with OCR
noise, cut it short, edit it lightly, or use the rewrite. Stories of one event share their
facts and carry near-identical captions under different photos: those are different
clippings, which text alone cannot tell apart.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

MALE_FIRST_NAMES = (
    "John", "William", "James", "Charles", "George", "Frank", "Joseph", "Thomas", "Henry", "Robert", "Edward",
    "Harry", "Walter", "Arthur", "Fred", "Albert", "Samuel", "Clarence", "Louis", "David", "Joe", "Richard",
    "Ernest", "Roy", "Will", "Andrew", "Jesse", "Oscar", "Raymond", "Herbert", "Paul", "Howard", "Eugene",
    "Carl", "Ralph", "Harold", "Earl", "Leo", "Lloyd", "Floyd", "Chester", "Dwight", "Herman", "Lester",
)
FEMALE_FIRST_NAMES = (
    "Mary", "Anna", "Emma", "Elizabeth", "Margaret", "Minnie", "Ida", "Bertha", "Clara", "Alice", "Annie",
    "Florence", "Bessie", "Grace", "Ethel", "Sarah", "Ella", "Helen", "Ruth", "Dorothy", "Mildred", "Frances",
    "Evelyn", "Marie", "Louise", "Edna", "Hazel", "Gladys", "Lillian", "Irene", "Pauline", "Vera", "Doris",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Taylor", "Thomas",
    "Moore", "Martin", "Jackson", "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young",
    "Allen", "King", "Wright", "Scott", "Hill", "Green", "Adams", "Baker", "Nelson", "Carter", "Mitchell",
    "Roberts", "Turner", "Phillips", "Campbell", "Parker", "Evans", "Edwards", "Collins", "Stewart", "Morris",
    "Murphy", "Cook", "Rogers", "Morgan", "Cooper", "Peterson", "Reed", "Bailey", "Bell", "Kelly", "Howard",
    "Ward", "Cox", "Richardson", "Wood", "Watson", "Brooks", "Bennett", "Gray", "Hughes", "Price", "Sanders",
    "Myers", "Long", "Ross", "Foster", "Powell", "Jenkins", "Perry", "Russell", "Sullivan", "Fisher", "Henderson",
    "Coleman", "Simmons", "Patterson", "Jordan", "Reynolds", "Hamilton", "Graham", "Kim", "Wallace", "Woods",
    "Cole", "West", "Owens", "Marshall", "Harrison", "Gibson", "McDonald", "Kennedy", "Wells", "Dixon", "Hunt",
    "Palmer", "Robertson", "Black", "Holmes", "Stone", "Meyer", "Boyd", "Mills", "Warren", "Fox", "Rose",
    "Rice", "Moreno", "Schmidt", "Patel", "Ferguson", "Nichols", "Herrera", "Medina", "Ryan", "Fernandez",
    "Weaver", "Daniels", "Stephens", "Gardner", "Payne", "Kelley", "Dunn", "Pierce", "Arnold", "Tran",
    "Spencer", "Peters", "Hawkins", "Grant", "Hansen", "Castro", "Hoffman", "Hart", "Elliott", "Cunningham",
    "Knight", "Bradley", "O'Brien", "Lindqvist", "Kowalski", "Novak", "Romano", "Costa", "Becker", "Schultz",
)
# Title before a name -> the same office after it ("Gov. Al Smith" / "Al Smith, governor").
TITLE_OFFICES = {"Gov.": "governor", "Sen.": "senator", "Rep.": "congressman", "Dr.": "physician",
                 "Rev.": "pastor", "Gen.": "general", "Adm.": "admiral", "Col.": "colonel", "Capt.": "captain"}
ROLES = (
    "Mayor", "Gov.", "Sen.", "Rep.", "Judge", "Dr.", "Rev.", "Gen.", "Adm.", "Col.", "Capt.", "Police Chief",
    "Fire Chief", "Secretary of Commerce", "Secretary of Labor", "Secretary of State", "Commissioner",
    "Superintendent", "Coach", "President", "Chairman", "Director",
)
ORGS = (
    "the Chamber of Commerce", "the State Highway Commission", "the Board of Education", "the Red Cross",
    "the American Legion", "the Rotary Club", "the Farm Bureau", "the United Mine Workers", "the Steel Workers Union",
    "the Garden Club", "the Historical Society", "the County Fair Association", "the Auto Club",
    "the Bar Association", "the Medical Society", "the Railroad Brotherhood", "the Women's Club",
    "the Boy Scouts", "the Port Authority", "the Power Company", "the Water Board", "the Symphony Society",
)
PLACES = (
    ("Springfield", "Ill."), ("Columbus", "Ohio"), ("Dayton", "Ohio"), ("Toledo", "Ohio"), ("Akron", "Ohio"),
    ("Pittsburgh", "Pa."), ("Scranton", "Pa."), ("Erie", "Pa."), ("Albany", "N.Y."), ("Buffalo", "N.Y."),
    ("Syracuse", "N.Y."), ("Rochester", "N.Y."), ("Hartford", "Conn."), ("Providence", "R.I."),
    ("Worcester", "Mass."), ("Boston", "Mass."), ("Portland", "Me."), ("Burlington", "Vt."), ("Trenton", "N.J."),
    ("Newark", "N.J."), ("Baltimore", "Md."), ("Richmond", "Va."), ("Norfolk", "Va."), ("Raleigh", "N.C."),
    ("Charleston", "S.C."), ("Savannah", "Ga."), ("Atlanta", "Ga."), ("Mobile", "Ala."), ("Memphis", "Tenn."),
    ("Nashville", "Tenn."), ("Louisville", "Ky."), ("Lexington", "Ky."), ("Indianapolis", "Ind."),
    ("Gary", "Ind."), ("Detroit", "Mich."), ("Flint", "Mich."), ("Lansing", "Mich."), ("Milwaukee", "Wis."),
    ("Madison", "Wis."), ("Duluth", "Minn."), ("St. Paul", "Minn."), ("Des Moines", "Iowa"),
    ("Dubuque", "Iowa"), ("Omaha", "Neb."), ("Lincoln", "Neb."), ("Topeka", "Kan."), ("Wichita", "Kan."),
    ("Tulsa", "Okla."), ("Dallas", "Tex."), ("Houston", "Tex."), ("El Paso", "Tex."), ("Denver", "Colo."),
    ("Pueblo", "Colo."), ("Cheyenne", "Wyo."), ("Butte", "Mont."), ("Boise", "Idaho"), ("Spokane", "Wash."),
    ("Tacoma", "Wash."), ("Seattle", "Wash."), ("Portland", "Ore."), ("Sacramento", "Calif."),
    ("Fresno", "Calif."), ("San Diego", "Calif."), ("Oakland", "Calif."), ("Phoenix", "Ariz."),
    ("Tucson", "Ariz."), ("Albuquerque", "N.M."), ("Salt Lake City", "Utah"), ("Reno", "Nev."),
    ("Little Rock", "Ark."), ("Shreveport", "La."), ("Baton Rouge", "La."), ("Jackson", "Miss."),
    ("Tampa", "Fla."), ("Miami", "Fla."), ("Jacksonville", "Fla."), ("Wheeling", "W.Va."), ("Wilmington", "Del."),
)
MONTHS = ("Jan.", "Feb.", "March", "April", "May", "June", "July", "Aug.", "Sept.", "Oct.", "Nov.", "Dec.")
MONTHS_LONG = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
               "October", "November", "December")
AGENCIES = ("AP Wirephoto", "UPI Telephoto", "Acme Telephoto", "INS Soundphoto", "Wide World Photo", "AP Photo")
BUILDINGS = ("lumber yard", "grain elevator", "hotel", "warehouse", "high school", "church", "furniture factory",
             "department store", "theater", "feed mill", "garage", "apartment house", "packing plant")
STRUCTURES = ("bridge", "dam", "post office", "courthouse", "library", "hospital wing", "high school",
              "airport terminal", "armory", "highway", "water works", "stadium", "fire station")
TEAMS = ("Tigers", "Bears", "Wildcats", "Eagles", "Panthers", "Bulldogs", "Hornets", "Cardinals", "Rams",
         "Mustangs", "Badgers", "Falcons", "Pirates", "Indians", "Lions", "Trojans")
SHIPS = ("Mary Ellen", "Great Lakes", "Pioneer", "Liberty Bell", "Northern Star", "Atlantic", "Evening Star",
         "Seawolf", "Columbia", "Bay State", "Golden Gate", "Patriot", "Morning Glory", "Mohawk")

# Event: (scene kind, headline, two description templates). {who} is a person with a role,
# {name} the bare name, {n} a number, {thing} a building/structure/team/ship.
EVENTS = {
    "fire": ("street", "FIRE SWEEPS {THING}", (
        "Firemen battle a blaze that destroyed the {thing} at {city} {when}. Damage was estimated at ${amount}.",
        "Flames and smoke pour from the {thing} as {k} firemen fight the fire. {who} said the cause was not known.")),
    "flood": ("landscape", "FLOOD WATERS RISE", (
        "Flood waters cover the lowlands near {city} after the river crested {when}. {n} families were driven from their homes.",
        "Residents of {city} wade through flood waters {when}. {who} asked for Red Cross aid for {n} families.")),
    "parade": ("crowd", "PARADE DRAWS THOUSANDS", (
        "An estimated {n} persons lined the streets of {city} {when} to watch the annual parade led by {who}.",
        "Marchers pass the reviewing stand at {city} {when}. {who} took the salute.")),
    "dedication": ("crowd", "NEW {THING} DEDICATED", (
        "{who} cuts the ribbon to open the new {thing} at {city} {when}. The project cost ${amount}.",
        "A crowd of {n} watched {who} dedicate the new {thing} at {city} {when}.")),
    "strike": ("crowd", "STRIKERS PICKET PLANT", (
        "Pickets march before the gates of the {thing} at {city} {when}. {who} said {n} men were idle.",
        "Striking workers gather outside the {thing} at {city} {when} as talks with {who} broke off.")),
    "rally": ("crowd", "{NAME} OPENS CAMPAIGN", (
        "{who} waves to a crowd of {n} at an election rally in {city} {when}.",
        "{who} speaks to supporters at {city} {when}, opening {his} campaign for re-election.")),
    "launch": ("harbour", "SHIP LAUNCHED", (
        "The freighter {thing} slides down the ways at {city} {when}. {who} was the sponsor.",
        "{who} breaks a bottle across the bow of the {thing} at its launching at {city} {when}.")),
    "wreck": ("landscape", "{K} HURT IN TRAIN WRECK", (
        "Wrecked coaches lie beside the tracks near {city} {when}. {k} passengers were injured.",
        "Workmen clear the wreckage of a passenger train that left the rails near {city} {when}.")),
    "game": ("sports", "{THING} WIN TITLE", (
        "The {thing} score the winning touchdown before {n} fans at {city} {when}.",
        "Players of the {thing} carry {who} off the field at {city} {when} after the championship game.")),
    "storm": ("landscape", "TORNADO STRIKES {CITY}", (
        "Wreckage of homes litters a street at {city} after a tornado struck {when}. {k} persons were hurt.",
        "A farm house near {city} lies in ruins after the storm {when}. {who} toured the area.")),
    "visit": ("street", "{NAME} VISITS {CITY}", (
        "{who} arrives at {city} {when} for a two-day visit. {He} was greeted by {n} persons at the station.",
        "{who} rides through the streets of {city} {when} in an open car.")),
    "conference": ("interior", "LEADERS CONFER", (
        "{who} presides over a meeting of {org} at {city} {when}. {n} delegates attended.",
        "Delegates to the convention of {org} hear {who} at {city} {when}.")),
    "air": ("air", "AIR SHOW THRILLS {N}", (
        "Planes fly in formation over the airport at {city} {when} before {n} spectators.",
        "A stunt flier loops over the field at {city} {when}. {who} opened the show.")),
    "harvest": ("landscape", "RECORD HARVEST", (
        "Farmers near {city} bring in a record wheat crop {when}. {who} said yields were {k} bushels an acre.",
        "Combines move across the wheat fields near {city} {when}, in the biggest harvest since {year2}.")),
    "autoshow": ("street", "NEW MODELS SHOWN", (
        "Crowds inspect the new models at the auto show at {city} {when}. {n} persons attended the opening.",
        "{who} looks over a new sedan at the auto show at {city} {when}.")),
    "portrait": ("portrait", "{NAME}", (
        "{name}, who was named {office} of {org} at {city} {when}.",
        "{name} of {city}, who {deed} {when}.")),
}
DEEDS = ("won the state spelling bee", "was elected president of the club", "retired after 40 years of service",
         "celebrated a 100th birthday", "was awarded a medal for bravery", "won the national title",
         "announced plans to run for governor", "was appointed to the state supreme court",
         "was named teacher of the year", "returned from a tour of Europe")
EVENT_NAMES = tuple(EVENTS)
# Stories most often shown as portraits.
PORTRAIT_SHARE = 0.2


@dataclass(frozen=True)
class Facts:
    event: str
    first: str
    last: str
    female: bool
    role: str
    org: str
    city: str
    state: str
    month: int
    day: int
    year: int
    weekday: str
    n: int  # a crowd
    k: int  # a handful: firemen, injured, bushels
    amount: str
    thing: str
    deed: str
    agency: str


def random_facts(rng: np.random.Generator, event: str | None = None) -> Facts:
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    if event is None:
        event = "portrait" if rng.random() < PORTRAIT_SHARE else pick([e for e in EVENT_NAMES if e != "portrait"])
    city, state = pick(PLACES)
    female = bool(rng.random() < 0.3)
    things = {"fire": BUILDINGS, "strike": BUILDINGS, "dedication": STRUCTURES, "game": TEAMS, "launch": SHIPS}
    return Facts(
        event=event, first=pick(FEMALE_FIRST_NAMES if female else MALE_FIRST_NAMES), last=pick(LAST_NAMES),
        female=female, role=pick(ROLES), org=pick(ORGS),
        city=city, state=state, month=int(rng.integers(12)), day=int(rng.integers(1, 29)),
        year=int(rng.integers(1925, 1966)),
        weekday=pick(("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")),
        n=int(pick((150, 300, 500, 1200, 5000, 12000, 30000)) * rng.uniform(0.8, 1.6)),
        k=int(rng.integers(3, 60)),
        amount=f"{int(rng.integers(2, 90)) * 5000:,}", thing=pick(things.get(event, STRUCTURES)),
        deed=pick(DEEDS), agency=pick(AGENCIES),
    )


def _office(f: Facts) -> str:
    return TITLE_OFFICES.get(f.role, f.role.lower())


def _who(f: Facts, style: int) -> str:
    if f.role in ("President", "Chairman", "Director"):
        return [f"{f.first} {f.last}, {f.role.lower()} of {f.org},", f"{f.role} {f.first} {f.last} of {f.org}"][style]
    return [f"{f.role} {f.first} {f.last}", f"{f.first} {f.last}, {_office(f)},"][style]


def _fill(template: str, f: Facts, when: str, style: int) -> str:
    n = f"{f.n:,}"
    text = template.format(
        who=_who(f, style), name=f"{f.first} {f.last}", NAME=f"{f.first} {f.last}".upper(), n=n, N=n,
        k=f.k, K=f.k, thing=f.thing, THING=f.thing.upper(), city=f.city, CITY=f.city.upper(), when=when,
        amount=f.amount, org=f.org, deed=f.deed, year2=f.year - int(f.n % 17) - 3, office=_office(f),
        He="She" if f.female else "He", his="her" if f.female else "his",
    )
    # an appositive ends with a comma unless the sentence ends there
    return text.replace(",.", ".").replace(", --", " --")


def wire_caption(f: Facts) -> str:
    """The caption as the agency sent it: dateline, first description, credit."""
    _, _, templates = EVENTS[f.event]
    body = _fill(templates[0], f, "today", 0)
    return f"{f.city.upper()}, {f.state}, {MONTHS[f.month]} {f.day} -- {body} ({f.agency})"


def rewrite_caption(f: Facts) -> str:
    """Another paper's caption of the same photo: its own headline and wording, no dateline."""
    _, headline, templates = EVENTS[f.event]
    when = f"on {f.weekday}" if f.event != "portrait" else f"last {f.weekday}"
    return f"{_fill(headline, f, when, 1)} -- {_fill(templates[1], f, when, 1)}"


def event_sibling(rng: np.random.Generator, f: Facts) -> Facts:
    """Facts of another photo of the same event: same people, place and day."""
    return replace(f, agency=AGENCIES[int(rng.integers(len(AGENCIES)))] if rng.random() < 0.3 else f.agency)


def sibling_edit(rng: np.random.Generator, caption: str) -> str:
    """A near-identical caption for another photo of the same event."""
    swaps = (("Firemen battle", "Firemen fight"), (" pour ", " rise "), ("lined the streets", "crowded the streets"),
             ("waves to", "greets"), ("cuts the ribbon", "speaks"), ("Pickets march", "Pickets gather"),
             ("slides down the ways", "is launched"), ("lie beside", "lie along"), ("score", "celebrate"),
             ("litters", "blocks"), ("arrives", "is greeted"), ("presides over", "addresses"),
             ("fly in formation", "circle"), ("bring in", "harvest"), ("inspect", "admire"))
    for a, b in swaps:
        if a in caption and rng.random() < 0.8:
            return caption.replace(a, b, 1)
    prefix = ("Above, ", "Below, ", "Left, ", "Right, ", "Another view: ", "")[int(rng.integers(6))]
    return prefix + caption


def light_edit(rng: np.random.Generator, caption: str) -> str:
    """A copy desk's small changes to the wire caption."""
    out = caption
    if "(" in out and rng.random() < 0.6:
        out = out[: out.rfind("(")].rstrip()  # credit dropped
    if " -- " in out and rng.random() < 0.5:
        out = out.split(" -- ", 1)[1]  # dateline dropped
    if rng.random() < 0.4:
        out = out.replace(" today", " yesterday").replace(" Today", " Yesterday")
    if rng.random() < 0.3:
        out = out.replace(" persons", " people").replace("An estimated", "A crowd of")
    return out


def truncate(rng: np.random.Generator, caption: str) -> str:
    """The caption cut where the clipping was cut: a 40-80% prefix at a word boundary."""
    words = caption.split()
    keep = max(3, int(len(words) * rng.uniform(0.4, 0.8)))
    return " ".join(words[:keep])
