"""The vocabulary of the news shift set: people, places, papers, credits, kickers.

Written for this module, independently of the training generator's caption tables
(clippings/data/synth/captions.py): present-day names and wire style (AP datelines such as
"BANGOR, Maine (AP) —", credits such as "(AP Photo/Jane Roe)" or "Staff photo by ..."),
other towns, other titles. tests/test_shift_news.py checks that the surname and town lists
share nothing with the generator's.
"""

from __future__ import annotations

FIRST_NAMES = (
    "Aisha", "Marcus", "Priya", "Diego", "Keisha", "Tomasz", "Ingrid", "Rafael", "Noor", "Dmitri", "Yolanda",
    "Tariq", "Bethany", "Hector", "Mei", "Gretchen", "Luis", "Shanice", "Colin", "Fatima", "Brendan", "Camila",
    "Desmond", "Ngozi", "Kurt", "Rosalind", "Andrei", "Tamika", "Javier", "Siobhan", "Kwame", "Lorraine",
    "Mateo", "Hannah", "Jamal", "Svetlana", "Trevor", "Imani", "Rohan", "Courtney", "Esteban", "Maribel",
    "Darnell", "Leticia", "Graham", "Yusuf", "Brianna", "Wendell", "Consuelo", "Tyrone", "Heather", "Anil",
    "Kendra", "Mohammed", "Dana", "Reggie", "Lupe", "Craig", "Nadia", "Dustin", "Renee", "Chidi", "Tanya",
)
SURNAMES = (
    "Okafor", "Lindgren", "Vasquez", "Nakamura", "Brennan", "Haddad", "Abernathy", "Castellanos", "Delacroix",
    "Eriksen", "Fitzhugh", "Gutierrez", "Halvorsen", "Iwu", "Jablonski", "Kowalczyk", "Lachance", "Mbeki",
    "Nordstrom", "Oyelaran", "Pruitt", "Quintero", "Rasmussen", "Szabo", "Thibodeaux", "Underwood", "Villanueva",
    "Whitlock", "Yamamoto", "Zielinski", "Ashby", "Birchfield", "Calloway", "Dunleavy", "Esposito", "Fairbanks",
    "Gallardo", "Hightower", "Ibarra", "Jorgensen", "Kincaid", "Lutz", "Mahoney", "Nwosu", "Odom", "Pettibone",
    "Rourke", "Sandoval", "Tolliver", "Urquhart", "Vukovic", "Waldron", "Yancey", "Ziegler", "Amundsen",
    "Bustamante", "Crenshaw", "Dziedzic", "Ellsworth", "Farouk", "Gillespie", "Harjo", "Ingersoll", "Janssen",
    "Kaufusi", "Lomax", "McCreary", "Navarro", "Ostrowski", "Pemberton", "Rutledge", "Sorensen", "Tremblay",
    "Vance", "Weatherby", "Alcott", "Boateng", "Cordero", "Dorsey", "Espinoza", "Faulkner", "Grimaldi",
    "Holloway", "Iqbal", "Keough", "Landry", "Maldonado", "Nguyen", "Oakes", "Pacheco", "Redding", "Stroud",
)
# (dateline, town as written in text, state or country as written after it in AP style).
TOWNS = (
    ("GREENVILLE, S.C.", "Greenville"), ("BANGOR, Maine", "Bangor"), ("KALAMAZOO, Mich.", "Kalamazoo"),
    ("YAKIMA, Wash.", "Yakima"), ("ROANOKE, Va.", "Roanoke"), ("BILOXI, Miss.", "Biloxi"),
    ("FARGO, N.D.", "Fargo"), ("SIOUX FALLS, S.D.", "Sioux Falls"), ("AMARILLO, Texas", "Amarillo"),
    ("CEDAR RAPIDS, Iowa", "Cedar Rapids"), ("ANCHORAGE, Alaska", "Anchorage"), ("HILO, Hawaii", "Hilo"),
    ("MISSOULA, Mont.", "Missoula"), ("ASHEVILLE, N.C.", "Asheville"), ("CHATTANOOGA, Tenn.", "Chattanooga"),
    ("LAS CRUCES, N.M.", "Las Cruces"), ("FLAGSTAFF, Ariz.", "Flagstaff"), ("EUGENE, Ore.", "Eugene"),
    ("BAKERSFIELD, Calif.", "Bakersfield"), ("STOCKTON, Calif.", "Stockton"), ("LAKELAND, Fla.", "Lakeland"),
    ("MACON, Ga.", "Macon"), ("MONTGOMERY, Ala.", "Montgomery"), ("LAFAYETTE, La.", "Lafayette"),
    ("JOPLIN, Mo.", "Joplin"), ("PEORIA, Ill.", "Peoria"), ("ROCKFORD, Ill.", "Rockford"),
    ("FORT WAYNE, Ind.", "Fort Wayne"), ("GREEN BAY, Wis.", "Green Bay"), ("BISMARCK, N.D.", "Bismarck"),
    ("RAPID CITY, S.D.", "Rapid City"), ("GRAND JUNCTION, Colo.", "Grand Junction"), ("OGDEN, Utah", "Ogden"),
    ("CASPER, Wyo.", "Casper"), ("POCATELLO, Idaho", "Pocatello"), ("LOWELL, Mass.", "Lowell"),
    ("NASHUA, N.H.", "Nashua"), ("NEW HAVEN, Conn.", "New Haven"), ("ALLENTOWN, Pa.", "Allentown"),
    ("CAMDEN, N.J.", "Camden"), ("UTICA, N.Y.", "Utica"), ("BINGHAMTON, N.Y.", "Binghamton"),
    ("YOUNGSTOWN, Ohio", "Youngstown"), ("CANTON, Ohio", "Canton"), ("SAGINAW, Mich.", "Saginaw"),
    ("CHICAGO", "Chicago"), ("NEW YORK", "New York"), ("LOS ANGELES", "Los Angeles"),
    ("PHILADELPHIA", "Philadelphia"), ("NEW ORLEANS", "New Orleans"), ("MINNEAPOLIS", "Minneapolis"),
    ("CLEVELAND", "Cleveland"), ("ST. LOUIS", "St. Louis"), ("SAN ANTONIO", "San Antonio"),
    ("HALIFAX, Nova Scotia", "Halifax"), ("WINNIPEG, Manitoba", "Winnipeg"), ("LONDON", "London"),
    ("MANILA, Philippines", "Manila"), ("NAIROBI, Kenya", "Nairobi"), ("KRAKOW, Poland", "Krakow"),
)
MONTHS = ("Jan.", "Feb.", "March", "April", "May", "June", "July", "Aug.", "Sept.", "Oct.", "Nov.", "Dec.")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
STREETS = ("Depot Street", "Oak Avenue", "Route 9", "Water Street", "Kensington Boulevard", "Old Mill Road",
           "Third Street", "Harbor Drive", "Cotton Avenue", "Highway 61", "Bridge Street", "Lakeview Drive",
           "Station Road", "Pine Hollow Road", "Market Square", "Elm Terrace", "Canal Street", "Airport Road")
BUSINESSES = ("Feed Mill", "Furniture Outlet", "Auto Body", "Bakery", "Lumber Co.", "Hardware", "Diner",
              "Storage", "Packing Plant", "Textile Mill", "Bowling Lanes", "Marina", "Creamery", "Tire Center")
VENUES = ("the county fairgrounds", "City Hall", "the Civic Center", "Memorial Stadium", "the public library",
          "Riverside Park", "the state Capitol", "the federal courthouse", "Veterans Park", "the convention center",
          "the high school gym", "the municipal airport", "Lincoln Middle School", "the community college")
RIVERS = ("the Cedar River", "the Red River", "Mill Creek", "the Kaskaskia River", "the Wabash River",
          "Bear Creek", "the Yellowstone River", "the Pee Dee River", "the Black Warrior River", "Buffalo Bayou")
TEAMS = ("Mudcats", "Lumberjacks", "RiverHawks", "Comets", "Blue Devils", "Golden Eagles", "Ironmen",
         "Thunder", "Red Raiders", "Sea Lions", "Knights", "Hurricanes", "Grizzlies", "Vikings")
SCHOOLS = ("Central High", "Westside High", "St. Anne's Academy", "Northridge High", "Valley Christian",
           "Jefferson High", "Lakeside Prep", "East Ridge High")
ORGANISATIONS = ("the Salvation Army", "the county food bank", "Habitat for Humanity", "the Lions Club",
                 "the local Teamsters union", "the teachers' union", "the historical society",
                 "the Chamber of Commerce", "the parks department", "the state Department of Transportation",
                 "the school board", "the city council", "the county commission", "the Humane Society")
ANIMALS = ("a black bear", "a moose", "a bald eagle", "a harbor seal", "a loggerhead turtle", "a stray horse",
           "a giraffe calf", "twin red panda cubs", "a rescued owl", "a manatee")

# Offices held by people who recur across stories (the same subject in unrelated stories).
OFFICES = ("Gov.", "Mayor", "Sen.", "Rep.", "Sheriff", "Police Chief", "Fire Chief", "Coach",
           "Superintendent", "County Judge", "State Sen.", "Council member")
# Photo credits: {p} is the photographer; the agency styles are what reprints vary between.
AGENCY_CREDITS = {
    "AP": ("(AP Photo/{p})", "(AP Photo)", "AP photo by {p}", "(Associated Press)", "Associated Press photo"),
    "Reuters": ("(Reuters/{p})", "REUTERS/{p}", "(Reuters photo)", "Reuters"),
    "AFP": ("(AFP/Getty Images/{p})", "{p}/AFP via Getty Images", "(AFP photo)"),
    "staff": ("Staff photo by {p}", "{p}/Staff photographer", "(Staff photo/{p})", "Staff photo"),
    "paper": ("({p}/{paper} via AP)", "{p}/The {paper}", "Photo courtesy of The {paper}", "(The {paper})"),
    "courtesy": ("Submitted photo", "Photo courtesy of {org}", "(Contributed photo)", "Courtesy photo"),
}
AGENCY_SHARE = (("AP", 0.42), ("Reuters", 0.1), ("AFP", 0.06), ("staff", 0.22), ("paper", 0.14),
                ("courtesy", 0.06))
PAPERS = ("Daily Ledger", "Herald-Dispatch", "Morning Call", "Courier-Journal", "Star-Tribune",
          "Post-Standard", "Evening Sentinel", "Tri-County Record", "Gazette-Times", "Press-Citizen")

# Kickers and headline fragments set above a caption. Generic ones recur across unrelated stories.
GENERIC_KICKERS = ("PHOTO OF THE DAY", "AROUND THE STATE", "NEWS IN PICTURES", "LOCAL SCENE", "THE WEEK IN PHOTOS",
                   "ON THE SCENE", "NATION", "IN BRIEF", "REGION", "SNAPSHOT")

# Sentences papers repeat across unrelated stories: boilerplate the caption desk pastes in.
BOILERPLATE = (
    "No injuries were reported.",
    "The cause remains under investigation.",
    "The National Weather Service said more rain was expected through the weekend.",
    "Officials said the road would remain closed until further notice.",
    "The event is free and open to the public.",
    "Police asked anyone with information to call the department's tip line.",
    "The Red Cross opened a shelter at the high school gym.",
    "A full schedule of events is available on the city's website.",
    "Forecasters warned of more severe weather later in the week.",
    "Funeral arrangements were pending.",
    "The festival continues through Sunday.",
    "More photos are online.",
    "Story on Page 3.",
    "See related story, Page A6.",
    "Damage was estimated in the hundreds of thousands of dollars.",
    "Crews worked through the night to restore power to the area.",
    "The investigation is continuing, authorities said.",
    "Admission is $5 for adults; children under 12 get in free.",
)

# Reprints rephrase: (wire wording, another desk's wording), applied to whole words.
REPHRASE = (
    ("firefighters", "fire crews"), ("blaze", "fire"), ("residents", "neighbors"), ("battle", "fight"),
    ("officials", "authorities"), ("more than", "over"), ("approximately", "about"), ("children", "kids"),
    ("vehicle", "car"), ("demonstrators", "protesters"), ("spectators", "fans"), ("attorney", "lawyer"),
    ("damaged", "wrecked"), ("sandbags", "bags of sand"), ("ceremony", "event"), ("crowd", "throng"),
    ("gathered", "assembled"), ("according to", "said"), ("inspect", "look over"), ("helps", "assists"),
    ("walks", "strolls"), ("holds", "carries"), ("stands", "waits"), ("celebrates", "cheers"),
)
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}
