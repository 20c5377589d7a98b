"""Small vocabularies the synthetic world draws names, places and notes from.

Rows of the vendor files hold indices into these tuples; strings are materialised once per
column with a dictionary ``take``, which keeps generation fast.
"""

from __future__ import annotations

from typing import Final

#: The five big home metros the world places reps in, keyed by the suffix of the catalog's
#: ``Metro_*`` dummies. The generator's own vocabulary: the pipeline reads metro names from the
#: feature catalog, never from here.
METROS: Final[dict[str, str]] = {
    "NYC": "New York-Newark-Jersey City NY-NJ",
    "LosAngeles": "Los Angeles-Long Beach-Anaheim CA",
    "Chicago": "Chicago-Naperville-Elgin IL-IN",
    "Dallas": "Dallas-Fort Worth-Arlington TX",
    "Miami": "Miami-Fort Lauderdale-West Palm Beach FL",
}

_NYC, _LA, _CHI, _DAL, _MIA = (
    METROS[k] for k in ("NYC", "LosAngeles", "Chicago", "Dallas", "Miami")
)

#: (city, state, county, metro or "", zip prefix, weight). The five big metros carry ~30% weight.
CITIES: Final[tuple[tuple[str, str, str, str, int, float], ...]] = (
    ("New York", "NY", "New York", _NYC, 100, 4.0),
    ("Jersey City", "NJ", "Hudson", _NYC, 73, 1.5),
    ("White Plains", "NY", "Westchester", _NYC, 106, 1.5),
    ("Los Angeles", "CA", "Los Angeles", _LA, 900, 3.0),
    ("Irvine", "CA", "Orange", _LA, 926, 1.5),
    ("Chicago", "IL", "Cook", _CHI, 606, 3.0),
    ("Naperville", "IL", "DuPage", _CHI, 605, 1.0),
    ("Dallas", "TX", "Dallas", _DAL, 752, 2.5),
    ("Fort Worth", "TX", "Tarrant", _DAL, 761, 1.0),
    ("Miami", "FL", "Miami-Dade", _MIA, 331, 2.0),
    ("Boca Raton", "FL", "Palm Beach", _MIA, 334, 1.5),
    ("Boston", "MA", "Suffolk", "Boston-Cambridge-Newton MA-NH", 21, 3.0),
    ("Philadelphia", "PA", "Philadelphia", "Philadelphia-Camden-Wilmington PA-NJ-DE-MD", 191, 2.5),
    ("Atlanta", "GA", "Fulton", "Atlanta-Sandy Springs-Alpharetta GA", 303, 2.5),
    ("Houston", "TX", "Harris", "Houston-The Woodlands-Sugar Land TX", 770, 2.5),
    ("Phoenix", "AZ", "Maricopa", "Phoenix-Mesa-Chandler AZ", 850, 2.0),
    ("Seattle", "WA", "King", "Seattle-Tacoma-Bellevue WA", 981, 2.0),
    ("Minneapolis", "MN", "Hennepin", "Minneapolis-St. Paul-Bloomington MN-WI", 554, 2.0),
    ("Osseo", "MN", "Hennepin", "Minneapolis-St. Paul-Bloomington MN-WI", 553, 0.5),
    ("Denver", "CO", "Denver", "Denver-Aurora-Lakewood CO", 802, 2.0),
    ("San Francisco", "CA", "San Francisco", "San Francisco-Oakland-Berkeley CA", 941, 2.5),
    (
        "Washington",
        "DC",
        "District of Columbia",
        "Washington-Arlington-Alexandria DC-VA-MD-WV",
        200,
        2.5,
    ),
    ("St. Louis", "MO", "St. Louis", "St. Louis MO-IL", 631, 1.5),
    ("Charlotte", "NC", "Mecklenburg", "Charlotte-Concord-Gastonia NC-SC", 282, 1.5),
    ("Nashville", "TN", "Davidson", "Nashville-Davidson-Murfreesboro-Franklin TN", 372, 1.5),
    ("Columbus", "OH", "Franklin", "Columbus OH", 432, 1.5),
    ("Omaha", "NE", "Douglas", "Omaha-Council Bluffs NE-IA", 681, 1.0),
    ("Des Moines", "IA", "Polk", "Des Moines-West Des Moines IA", 503, 1.0),
    ("Boise", "ID", "Ada", "Boise City ID", 837, 1.0),
    ("Greenville", "SC", "Greenville", "", 296, 1.0),
    ("Bozeman", "MT", "Gallatin", "", 597, 0.7),
    ("Burlington", "VT", "Chittenden", "", 54, 0.7),
    ("Fargo", "ND", "Cass", "", 581, 0.7),
    ("Santa Fe", "NM", "Santa Fe", "", 875, 0.7),
    ("Naples", "FL", "Collier", "", 341, 1.0),
    ("Scottsdale", "AZ", "Maricopa", "Phoenix-Mesa-Chandler AZ", 852, 1.0),
    ("Madison", "WI", "Dane", "", 537, 1.0),
    ("Portland", "ME", "Cumberland", "", 41, 0.8),
)

STATES: Final[tuple[str, ...]] = tuple(sorted({c[1] for c in CITIES} | {"KS", "KY", "OR", "UT"}))

FIRST_NAMES: Final = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Sandra", "Mark",
    "Ashley", "Steven", "Emily", "Andrew", "Megan", "Kevin", "Rachel", "Brian", "Laura", "Ryan",
    "Priya", "Wei", "Carlos", "Maria", "Ahmed", "Olga", "Kenji", "Grace", "Luis", "Fatima",
)  # fmt: skip
LAST_NAMES: Final = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera",
    "Campbell", "Mitchell", "Carter", "Roberts", "Patel", "Chen", "Kim", "Olsen", "Schmidt",
)  # fmt: skip
TITLES: Final = (
    "Financial Advisor", "Wealth Advisor", "Senior Financial Advisor", "Managing Director",
    "Vice President", "Partner", "Founder", "Principal", "Investment Advisor Representative",
    "Private Wealth Manager", "Portfolio Manager", "Financial Planner", "Associate Advisor",
)  # fmt: skip
EDUCATION: Final = (
    "BA", "BS", "BBA", "MBA", "MS Finance", "JD", "CFA Charterholder; MBA", "BS Economics",
    "Some college", "PhD",
)  # fmt: skip
NOTES: Final = (
    "Prefers email", "Do not call before 10am", "Former wirehouse", "Met at conference",
    "Team lead", "Spouse also licensed", "Recently relocated", "Focus on retirees",
    "Interested in alternatives", "Left voicemail 2x", "Succession planning", "see notes",
)  # fmt: skip
FIRM_WORDS_A: Final = (
    "Summit", "Harbor", "Cedar", "Granite", "Beacon", "Pinnacle", "Meridian", "Oak", "Lighthouse",
    "Keystone", "Evergreen", "Northstar", "Bluewater", "Ironwood", "Willow", "Sterling",
    "Heritage", "Liberty", "Crescent", "Aspen", "Cornerstone", "Riverbend", "Falcon", "Prairie",
    "Redwood", "Silverline", "Trident", "Horizon", "Juniper", "Copper",
)  # fmt: skip
FIRM_WORDS_B: Final = (
    "Wealth", "Capital", "Financial", "Advisors", "Asset", "Private", "Family", "Investment",
    "Planning", "Partners", "Trust", "Retirement",
)  # fmt: skip
FIRM_SUFFIXES: Final = (
    "LLC", "Group", "Management LLC", "Partners LP", "Inc.", "Advisors LLC", "& Co.",
    "Management", "Wealth LLC",
)  # fmt: skip
#: Junk a vendor leaves in numeric cells (a city in a number column, placeholders).
JUNK: Final = ("Osseo", "N/A", "see notes", "-", "n.a.", "TBD", "#VALUE!", "Osseo MN")
#: Boolean spellings: style i writes False as BOOL_STYLES[i][0] and True as BOOL_STYLES[i][1].
BOOL_STYLES: Final = (("N", "Y"), ("false", "true"), ("0", "1"), ("FALSE", "TRUE"))
BOOL_STYLE_WEIGHTS: Final = (0.45, 0.3, 0.2, 0.05)
#: Licence bits, in the order of the ``licence_code`` bit mask.
LICENCES: Final = ("Series 7", "Series 63", "Series 65", "Series 66", "CFP")
LEAD_SOURCES: Final = (
    "Provided Lead List", "LinkedIn", "Advisor Waitlist", "Event", "Referral", "Website",
)  # fmt: skip
LEAD_SOURCE_WEIGHTS: Final = (0.45, 0.2, 0.1, 0.08, 0.07, 0.1)
DISPOSITIONS: Final = ("Connected", "Left Voicemail", "No Answer", "Wrong Number", "Busy")
DISPOSITION_WEIGHTS: Final = (0.2, 0.35, 0.38, 0.04, 0.03)
