"""What a news shift story can be about: per topic, the photo's scene and subjects, kickers,
and sentence templates (the lead describes the photo; details, quotes and background follow).

Written for this module (present-day wire style), independently of the training generator.
Placeholders: {who} an official at first mention ("Fire Chief Dana Whitlock"), {wlast} the
official's surname, {person} / {plast} a resident, {age}, {town}, {street}, {venue}, {firm}
(a local business), {river}, {day} (a weekday), {n} (hundreds or thousands), {k} (a handful),
{team} / {team2}, {school}, {org}, {animal}, {year}.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    scene: str  # the photo's location kind (news_photos.LOCATIONS)
    subjects: tuple[str, ...]  # what the photo shows (news_photos.SUBJECTS)
    kickers: tuple[str, ...]
    leads: tuple[str, ...]
    details: tuple[str, ...]
    quotes: tuple[str, ...]
    background: tuple[str, ...]  # about the event: shared by every story of one event


TOPICS = {
    "fire": Topic("town", ("building", "smoke", "truck", "person"), ("UP IN FLAMES", "BLAZE", "FIRE GUTS LANDMARK"), (
        "Firefighters battle a blaze at the {firm} on {street} in {town} on {day}.",
        "Smoke rises over downtown {town} as crews pour water on the {firm} on {day} afternoon.",
        "A firefighter sprays water through a broken window of the {firm} on {day}.",
        "{who} surveys what is left of the {firm} on {street} on {day}.",
    ), (
        "The fire broke out shortly after 2 a.m. and took {k} hours to bring under control, {who} said.",
        "Crews from {k} departments responded to the three-alarm fire.",
        "The building, a fixture on {street} since {year}, was a total loss.",
    ), (
        "\"It went up so fast there was nothing anybody could do,\" said {person}, {age}, who lives across the street.",
        "\"We will rebuild,\" said owner {person}, whose family has run the business for three generations.",
    ), (
        "It was the second major fire on {street} in {k} months.",
        "The {firm} employed about {k}0 people, according to the Chamber of Commerce.",
    )),
    "flood": Topic("water", ("person", "house", "car"), ("HIGH WATER", "RISING RIVER", "FLOODWATERS"), (
        "Residents wade through floodwaters on {street} in {town} on {day} after {river} spilled over its banks.",
        "A man paddles a canoe past flooded homes near {river} in {town} on {day}.",
        "Volunteers fill sandbags outside {venue} in {town} on {day} as {river} continued to rise.",
        "{who} tours a flooded neighborhood by boat on {day}.",
    ), (
        "{river} crested at {k} feet above flood stage early {day}, the highest level since {year}.",
        "About {n} homes were evacuated, {who} said.",
        "Several roads into town, including {street}, were under water.",
    ), (
        "\"I've lived here {k}0 years and never seen it this bad,\" said {person}, {age}.",
        "\"We're asking people to stay off the roads,\" {who} said.",
    ), (
        "Heavy rain fell across the region for {k} straight days.",
        "The governor declared a state of emergency in {k} counties.",
    )),
    "storm": Topic("town", ("house", "tree", "debris", "person"), ("STORM DAMAGE", "TWISTER", "AFTERMATH"), (
        "{person} sifts through the remains of a home on {street} in {town} on {day}, a day after a tornado struck.",
        "A toppled tree rests on a pickup truck in {town} on {day} after storms swept through the area.",
        "Workers clear debris from {street} in {town} on {day}.",
        "{who} speaks with residents whose homes were damaged by the storm on {day}.",
    ), (
        "The tornado cut a path about {k} miles long through the east side of town, forecasters said.",
        "More than {n} customers were without power on {day} night.",
        "At least {k} people were treated for minor injuries.",
    ), (
        "\"It sounded like a freight train,\" said {person}, {age}.",
        "\"We are lucky nobody was killed,\" {who} said.",
    ), (
        "The National Weather Service confirmed an EF-2 tornado touched down shortly before 6 p.m.",
        "Storms also downed trees and power lines in {k} neighboring counties.",
    )),
    "festival": Topic("field", ("crowd", "flag", "tent", "person"), ("FUN IN THE SUN", "FAIR DAY", "CELEBRATION"), (
        "Visitors stroll among the booths at the {town} Harvest Festival at {venue} on {day}.",
        "Dancers perform during the opening parade of the festival in {town} on {day}.",
        "{person}, {age}, rides a mechanical bull at {venue} in {town} on {day}.",
        "{who} cuts the ribbon to open the annual festival on {day}.",
    ), (
        "Organizers expected more than {n} visitors over the four-day event.",
        "This year's festival features {k}0 vendors and a carnival midway.",
        "Proceeds benefit {org}.",
    ), (
        "\"It's the best weekend of the year,\" said {person}, who has not missed a festival since {year}.",
        "\"We've had great weather and great crowds,\" {who} said.",
    ), (
        "The festival began in {year} as a small street fair.",
        "Parking is available at {venue}, with shuttle buses running every 20 minutes.",
    )),
    "protest": Topic("town", ("crowd", "banner", "person"), ("RALLY", "VOICES RAISED", "ON THE MARCH"), (
        "Demonstrators march down {street} in {town} on {day} to protest the planned closing of the {firm}.",
        "Protesters hold signs outside {venue} in {town} on {day}.",
        "{person} leads a chant during a rally at {venue} on {day}.",
        "Members of {org} rally outside {venue} in {town} on {day}.",
    ), (
        "About {n} people took part, according to police estimates.",
        "The march ended peacefully at {venue}, where organizers read a list of demands.",
        "{who} agreed to meet with organizers next week.",
    ), (
        "\"We are not going away,\" said {person}, one of the organizers.",
        "\"Everyone has a right to be heard,\" {who} said.",
    ), (
        "The company announced {k} weeks ago that it would cut {n} jobs.",
        "The proposal goes before the city council for a final vote later this month.",
    )),
    "game": Topic("field", ("player", "ball"), ("SPORTS", "TITLE BOUND", "GAME ON"), (
        "{school} quarterback {person} scrambles away from a {team} defender in the first half on {day} in {town}.",
        "The {team} celebrate after beating the {team2} {k}-2 on {day} at Memorial Stadium in {town}.",
        "{team} forward {person} drives to the basket against the {team2} on {day}.",
        "{who} talks to players during a timeout in the second half on {day}.",
    ), (
        "{plast} finished with {k} touchdowns and {n} yards.",
        "The win clinched a spot in the state playoffs.",
        "The {team} have won {k} straight games.",
    ), (
        "\"The kids never quit,\" {who} said.",
        "\"We came out flat, and they made us pay,\" said {person}.",
    ), (
        "The two teams have met every season since {year}.",
        "The game was delayed {k}0 minutes by lightning in the area.",
    )),
    "court": Topic("steps", ("person", "person2"), ("IN COURT", "VERDICT", "ON TRIAL"), (
        "{person}, center, is escorted out of {venue} in {town} on {day} after a hearing.",
        "Defense attorney {person} speaks to reporters outside {venue} on {day}.",
        "{who} leaves {venue} in {town} on {day} after testifying.",
    ), (
        "A jury of seven women and five men deliberated for {k} hours before reaching a verdict.",
        "Sentencing was set for next month.",
        "{plast}, {age}, faces up to {k} years in prison.",
    ), (
        "\"Justice was done today,\" said {who}.",
        "\"We will appeal,\" {person} said.",
    ), (
        "The case drew national attention after a video of the arrest was posted online.",
        "The trial was moved from a neighboring county because of pretrial publicity.",
    )),
    "campaign": Topic("hall", ("podium", "flag", "person", "crowd"), ("CAMPAIGN TRAIL", "ELECTION 2024", "STUMPING"), (
        "{who} speaks to supporters at {venue} in {town} on {day}.",
        "{who} shakes hands with voters at a diner in {town} on {day}.",
        "Supporters cheer as {who} takes the stage at {venue} on {day}.",
    ), (
        "The stop was one of {k} planned across the state this week.",
        "{wlast} is seeking a second term.",
        "Polls show a tight race.",
    ), (
        "\"This election is about jobs,\" {wlast} told the crowd.",
        "\"I'm here to listen,\" {wlast} said.",
    ), (
        "Early voting begins Oct. 21.",
        "The election is Nov. 5.",
    )),
    "opening": Topic("town", ("building", "ribbon", "person"), ("NOW OPEN", "GROUNDBREAKING", "GRAND OPENING"), (
        "{who} cuts the ribbon at the new {firm} on {street} in {town} on {day}.",
        "Officials break ground on the new {venue} annex in {town} on {day}.",
        "Customers line up outside the new {firm} in {town} before it opened on {day}.",
    ), (
        "The project cost about ${k}.{k} million and will create {k}0 jobs.",
        "Construction is expected to take {k} months.",
        "The building replaces one that stood on the site since {year}.",
    ), (
        "\"This is a great day for {town},\" {who} said.",
        "\"We've waited a long time for this,\" said {person}, a lifelong resident.",
    ), (
        "The city council approved tax incentives for the project last year.",
        "The site had been vacant since the old plant closed.",
    )),
    "crash": Topic("road", ("car", "truck", "person"), ("WRECK", "HIGHWAY CRASH", "PILEUP"), (
        "Emergency workers respond to a crash on {street} near {town} on {day}.",
        "A tow truck removes a wrecked car from {street} in {town} on {day}.",
        "Troopers investigate a multi-vehicle crash near {town} on {day}.",
    ), (
        "Ambulances took {k} people to a hospital, {who} said.",
        "Traffic was backed up for miles for several hours.",
        "Icy conditions may have played a role, police said.",
    ), (
        "\"It happened in a split second,\" said {person}, who saw the crash.",
        "\"Slow down and leave room,\" {who} said.",
    ), (
        "It was the third serious crash at the intersection this year.",
        "The state has plans to add a traffic signal at the site.",
    )),
    "animal": Topic("nature", ("animal", "person", "tree"), ("WILD LIFE", "CLOSE ENCOUNTER", "ANIMAL RESCUE"), (
        "Wildlife officers release {animal} near {river} outside {town} on {day}.",
        "Visitors watch {animal} at the {town} zoo on {day}.",
        "{person} photographs {animal} that wandered into a backyard in {town} on {day}.",
    ), (
        "The animal was spotted near {venue} earlier in the week.",
        "Officials said it was healthy and showed no signs of injury.",
        "It was the {k}th such sighting in the county this year.",
    ), (
        "\"You don't see that every day,\" said {person}, {age}.",
        "\"Give them space and call us,\" said {who}.",
    ), (
        "State wildlife officials say sightings have become more common as development spreads.",
        "The zoo's breeding program began in {year}.",
    )),
    "portrait": Topic("studio", ("face",), ("NEWSMAKER", "PROFILE", "IN THE NEWS"), (
        "{who} was named to lead {org} on {day}.",
        "{who} announced on {day} that {pron} will not seek re-election.",
        "{who}, pictured, was sworn in on {day} at {venue} in {town}.",
        "{who} will receive the {town} Citizen of the Year award on {day}.",
    ), (
        "{wlast} has served in the post for {k} years.",
        "{wlast} replaces a predecessor who retired in {year}.",
        "A reception is planned at {venue}.",
    ), (
        "\"I'm honored and humbled,\" {wlast} said.",
        "\"There is a lot of work to do,\" {wlast} said in a statement.",
    ), (
        "{wlast}, a native of {town}, graduated from {school} in {year}.",
        "The appointment must be confirmed by {org}.",
    )),
}
TOPIC_SHARE = (("fire", 0.11), ("flood", 0.09), ("storm", 0.09), ("festival", 0.1), ("protest", 0.08),
               ("game", 0.13), ("court", 0.07), ("campaign", 0.07), ("opening", 0.07), ("crash", 0.06),
               ("animal", 0.05), ("portrait", 0.08))
