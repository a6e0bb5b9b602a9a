"""Word tables of the synthetic tasks (see :mod:`speechrl.data.synthetic`).

mini-AST: an English -> German lexicon. Every noun carries its German gender, a semantic kind
(which adjectives fit it, which verbs take it as object) and whether it is a weak masculine noun
(``der Junge`` -> ``den Jungen``; those only ever appear as nominative subjects, so the grammar
never has to inflect a noun). Adjectives are stored as their German declension stem
(``teuer`` -> ``teur``, ``müde`` -> ``müd``) so that stem + ending is always correct.

mini-SQA: fact templates with slots and, per template, several (question, answer, answer span)
patterns, plus the slot vocabularies. ``{name}`` is the person, ``{pos}`` her/his, and ``{a_X}``
is slot ``X`` with its indefinite article (a/an).

All tables are tuples or dicts (insertion ordered), never sets, so that seeded sampling is
reproducible across processes.
"""

from __future__ import annotations

from dataclasses import dataclass

# ============================================================================ mini-AST lexicon


@dataclass(frozen=True)
class Noun:
    de: str
    gender: str  # "m", "f" or "n"
    kind: str  # key of ADJ_BY_KIND; verbs select objects by kind or by noun
    countable: bool = True  # mass nouns (milk, water) only take the definite article
    weak: bool = False  # weak masculine (Junge, Bär): nominative subject only


#: English adjective -> German declension stem.
ADJECTIVES: dict[str, str] = {
    "red": "rot", "blue": "blau", "green": "grün", "yellow": "gelb", "black": "schwarz",
    "white": "weiß", "brown": "braun", "big": "groß", "small": "klein", "new": "neu",
    "old": "alt", "young": "jung", "beautiful": "schön", "expensive": "teur", "cheap": "billig",
    "heavy": "schwer", "fresh": "frisch", "sweet": "süß", "ripe": "reif", "warm": "warm",
    "cold": "kalt", "long": "lang", "short": "kurz", "funny": "lustig", "tired": "müd",
    "hungry": "hungrig", "happy": "fröhlich", "friendly": "freundlich", "clever": "klug",
}

_COLOURS = ("red", "blue", "green", "yellow", "black", "white", "brown")
ADJ_BY_KIND: dict[str, tuple[str, ...]] = {
    "person": ("old", "young", "tired", "hungry", "happy", "friendly", "clever"),
    "animal": ("big", "small", "old", "young", "tired", "hungry", "black", "white", "brown"),
    "food": ("fresh", "warm", "big", "small"),
    "fruit": ("fresh", "sweet", "ripe", "big", "small"),
    "vegetable": ("fresh", "big", "small"),
    "drink": ("cold", "warm", "fresh", "sweet"),
    "text": ("new", "old", "long", "short", "funny"),
    "clothing": _COLOURS + ("new", "old", "warm", "beautiful", "expensive", "cheap"),
    "thing": _COLOURS + ("big", "small", "new", "old", "beautiful", "expensive", "cheap"),
    "heavything": _COLOURS + ("big", "small", "new", "old", "heavy"),
    "plant": ("red", "yellow", "white", "big", "small", "beautiful"),
    "building": ("red", "white", "big", "small", "old", "new", "beautiful"),
    "stone": ("big", "small", "heavy", "black", "white"),
}

NOUNS: dict[str, Noun] = {
    # people
    "man": Noun("Mann", "m", "person"), "woman": Noun("Frau", "f", "person"),
    "child": Noun("Kind", "n", "person"), "girl": Noun("Mädchen", "n", "person"),
    "boy": Noun("Junge", "m", "person", weak=True), "teacher": Noun("Lehrer", "m", "person"),
    "doctor": Noun("Arzt", "m", "person"), "baker": Noun("Bäcker", "m", "person"),
    "student": Noun("Student", "m", "person", weak=True), "farmer": Noun("Bauer", "m", "person", weak=True),
    "neighbour": Noun("Nachbar", "m", "person", weak=True), "sister": Noun("Schwester", "f", "person"),
    "brother": Noun("Bruder", "m", "person"), "cook": Noun("Koch", "m", "person"),
    "king": Noun("König", "m", "person"), "queen": Noun("Königin", "f", "person"),
    "grandmother": Noun("Großmutter", "f", "person"), "grandfather": Noun("Großvater", "m", "person"),
    # animals
    "dog": Noun("Hund", "m", "animal"), "cat": Noun("Katze", "f", "animal"),
    "bird": Noun("Vogel", "m", "animal"), "horse": Noun("Pferd", "n", "animal"),
    "mouse": Noun("Maus", "f", "animal"), "cow": Noun("Kuh", "f", "animal"),
    "duck": Noun("Ente", "f", "animal"), "fish": Noun("Fisch", "m", "animal"),
    "rabbit": Noun("Kaninchen", "n", "animal"), "sheep": Noun("Schaf", "n", "animal"),
    "pig": Noun("Schwein", "n", "animal"), "fox": Noun("Fuchs", "m", "animal"),
    "bear": Noun("Bär", "m", "animal", weak=True), "monkey": Noun("Affe", "m", "animal", weak=True),
    "lion": Noun("Löwe", "m", "animal", weak=True),
    # food
    "cake": Noun("Kuchen", "m", "food"), "bread": Noun("Brot", "n", "food"),
    "sandwich": Noun("Sandwich", "n", "food"), "sausage": Noun("Wurst", "f", "food"),
    "egg": Noun("Ei", "n", "food"), "cookie": Noun("Keks", "m", "food"),
    "pizza": Noun("Pizza", "f", "food"), "soup": Noun("Suppe", "f", "food"),
    "cheese": Noun("Käse", "m", "food", countable=False),
    "apple": Noun("Apfel", "m", "fruit"), "pear": Noun("Birne", "f", "fruit"),
    "banana": Noun("Banane", "f", "fruit"), "plum": Noun("Pflaume", "f", "fruit"),
    "peach": Noun("Pfirsich", "m", "fruit"), "orange": Noun("Orange", "f", "fruit"),
    "tomato": Noun("Tomate", "f", "vegetable"), "carrot": Noun("Karotte", "f", "vegetable"),
    "potato": Noun("Kartoffel", "f", "vegetable"), "cucumber": Noun("Gurke", "f", "vegetable"),
    # drinks (mass nouns)
    "milk": Noun("Milch", "f", "drink", countable=False), "water": Noun("Wasser", "n", "drink", countable=False),
    "juice": Noun("Saft", "m", "drink", countable=False), "tea": Noun("Tee", "m", "drink", countable=False),
    "coffee": Noun("Kaffee", "m", "drink", countable=False),
    "lemonade": Noun("Limonade", "f", "drink", countable=False),
    # texts
    "book": Noun("Buch", "n", "text"), "letter": Noun("Brief", "m", "text"),
    "newspaper": Noun("Zeitung", "f", "text"), "story": Noun("Geschichte", "f", "text"),
    "magazine": Noun("Zeitschrift", "f", "text"), "poem": Noun("Gedicht", "n", "text"),
    # clothing
    "hat": Noun("Hut", "m", "clothing"), "coat": Noun("Mantel", "m", "clothing"),
    "jacket": Noun("Jacke", "f", "clothing"), "dress": Noun("Kleid", "n", "clothing"),
    "shirt": Noun("Hemd", "n", "clothing"), "scarf": Noun("Schal", "m", "clothing"),
    "skirt": Noun("Rock", "m", "clothing"), "sweater": Noun("Pullover", "m", "clothing"),
    "cap": Noun("Mütze", "f", "clothing"),
    # things
    "ball": Noun("Ball", "m", "thing"), "doll": Noun("Puppe", "f", "thing"),
    "car": Noun("Auto", "n", "thing"), "bicycle": Noun("Fahrrad", "n", "thing"),
    "key": Noun("Schlüssel", "m", "thing"), "umbrella": Noun("Regenschirm", "m", "thing"),
    "cup": Noun("Tasse", "f", "thing"), "lamp": Noun("Lampe", "f", "thing"),
    "picture": Noun("Bild", "n", "thing"), "phone": Noun("Telefon", "n", "thing"),
    "bottle": Noun("Flasche", "f", "thing"), "clock": Noun("Uhr", "f", "thing"),
    "pen": Noun("Stift", "m", "thing"), "ring": Noun("Ring", "m", "thing"),
    "glass": Noun("Glas", "n", "thing"), "spoon": Noun("Löffel", "m", "thing"),
    "plate": Noun("Teller", "m", "thing"),
    "bag": Noun("Tasche", "f", "heavything"), "box": Noun("Kiste", "f", "heavything"),
    "chair": Noun("Stuhl", "m", "heavything"), "table": Noun("Tisch", "m", "heavything"),
    "basket": Noun("Korb", "m", "heavything"), "stone": Noun("Stein", "m", "stone"),
    # plants, buildings, fixtures
    "flower": Noun("Blume", "f", "plant"), "rose": Noun("Rose", "f", "plant"),
    "tree": Noun("Baum", "m", "plant"), "house": Noun("Haus", "n", "building"),
    "door": Noun("Tür", "f", "building"), "window": Noun("Fenster", "n", "building"),
}

#: Proper-name subjects (same in both languages, no article).
NAMES: tuple[str, ...] = ("Anna", "Tom", "Lisa", "Max", "Paul", "Emma", "Ben", "Lena", "Jonas", "Mia", "Leo", "Sophie")


@dataclass(frozen=True)
class Verb:
    third: str  # English 3rd person singular ("looks for")
    de: str  # German 3rd person singular present
    objects: tuple[str, ...]  # noun kinds and/or nouns it takes as (accusative) object
    animals: bool = False  # animals can be its subject
    stative: bool = False  # no time/place adverbials ("Today the man knows the teacher" is odd)


#: English base form -> verb. Only accusative, non-separable German verbs.
VERBS: dict[str, Verb] = {
    "see": Verb("sees", "sieht", ("animal", "person", "thing", "heavything", "fruit", "food", "clothing", "plant", "building", "text"), True),
    "find": Verb("finds", "findet", ("animal", "thing", "heavything", "clothing", "text", "fruit", "food"), True),
    "look for": Verb("looks for", "sucht", ("animal", "person", "thing", "clothing", "text"), True),
    "like": Verb("likes", "mag", ("animal", "person", "food", "fruit", "drink", "thing", "clothing", "text", "plant", "building"), True, stative=True),
    "eat": Verb("eats", "isst", ("food", "fruit", "vegetable"), True),
    "catch": Verb("catches", "fängt", ("ball", "fish", "mouse", "bird"), True),
    "drink": Verb("drinks", "trinkt", ("drink",)),
    "read": Verb("reads", "liest", ("text",)),
    "write": Verb("writes", "schreibt", ("letter", "story", "poem", "book")),
    "buy": Verb("buys", "kauft", ("food", "fruit", "vegetable", "drink", "thing", "heavything", "clothing", "text", "flower", "rose", "house")),
    "sell": Verb("sells", "verkauft", ("food", "fruit", "vegetable", "thing", "heavything", "clothing", "text", "animal", "house")),
    "have": Verb("has", "hat", ("thing", "heavything", "clothing", "animal", "text", "house"), stative=True),
    "take": Verb("takes", "nimmt", ("thing", "fruit", "food", "text")),
    "carry": Verb("carries", "trägt", ("heavything", "ball", "cup", "glass", "bottle", "book", "umbrella", "doll", "plate", "stone")),
    "wear": Verb("wears", "trägt", ("clothing", "ring")),
    "hold": Verb("holds", "hält", ("cup", "glass", "bottle", "umbrella", "ball", "doll", "pen", "flower", "rose", "key", "book", "letter", "spoon", "plate", "picture")),
    "wash": Verb("washes", "wäscht", ("car", "bicycle", "cup", "glass", "bottle", "plate", "spoon", "shirt", "dress", "sweater", "dog", "horse", "window", "fruit", "vegetable")),
    "open": Verb("opens", "öffnet", ("door", "window", "box", "bottle", "letter", "book", "bag")),
    "close": Verb("closes", "schließt", ("door", "window", "box", "book", "bag")),
    "throw": Verb("throws", "wirft", ("ball", "stone", "apple", "key", "pen")),
    "draw": Verb("draws", "zeichnet", ("animal", "plant", "building", "car", "bicycle", "person")),
    "feed": Verb("feeds", "füttert", ("animal",)),
    "need": Verb("needs", "braucht", ("thing", "heavything", "clothing"), stative=True),
    "lose": Verb("loses", "verliert", ("key", "ring", "pen", "umbrella", "bag", "hat", "ball", "cap", "scarf")),
    "cook": Verb("cooks", "kocht", ("soup", "egg", "potato")),
    "bring": Verb("brings", "bringt", ("thing", "food", "fruit", "drink", "text", "flower")),
    "love": Verb("loves", "liebt", ("animal", "person"), stative=True),
    "visit": Verb("visits", "besucht", ("person",)),
    "meet": Verb("meets", "trifft", ("person",)),
    "know": Verb("knows", "kennt", ("person",), stative=True),
}

#: Time adverbials: always sentence-initial (German verb-second).
TIME_ADVERBIALS: dict[str, str] = {
    "today": "heute", "now": "jetzt", "in the morning": "am Morgen", "in the evening": "am Abend",
    "on Sunday": "am Sonntag", "on Saturday": "am Samstag", "every day": "jeden Tag", "sometimes": "manchmal",
}

#: Place adverbials: sentence-initial (V2) or sentence-final.
PLACE_ADVERBIALS: dict[str, str] = {
    "in the garden": "im Garten", "in the kitchen": "in der Küche", "in the park": "im Park",
    "at home": "zu Hause", "at school": "in der Schule", "in the city": "in der Stadt",
    "at the market": "auf dem Markt", "in the forest": "im Wald",
}

# ============================================================================ mini-SQA tables


@dataclass(frozen=True)
class FactTemplate:
    fact: str
    #: (question, answer, answer span); every answer names the person.
    questions: tuple[tuple[str, str, str], ...]


FACT_TEMPLATES: tuple[FactTemplate, ...] = (
    FactTemplate("{name} keeps {a_colour} {thing} in the {room}.", (
        ("Where does {name} keep {pos} {thing}?", "{name} keeps {pos} {thing} in the {room}.", "{room}"),
        ("What colour is {name}'s {thing}?", "{name}'s {thing} is {colour}.", "{colour}"),
        ("What does {name} keep in the {room}?", "{name} keeps {a_colour} {thing} in the {room}.", "{thing}"),
        ("Who keeps {a_colour} {thing} in the {room}?", "{name} keeps {a_colour} {thing} in the {room}.", "{name}"),
    )),
    FactTemplate("{name} works as {a_job} in {city}.", (
        ("What does {name} do for a living?", "{name} works as {a_job}.", "{job}"),
        ("In which city does {name} work?", "{name} works in {city}.", "{city}"),
        ("Who works as {a_job}?", "{name} works as {a_job}.", "{name}"),
    )),
    FactTemplate("{name} has {number} {pets} at home.", (
        ("How many {pets} does {name} have?", "{name} has {number} {pets}.", "{number}"),
        ("What pets does {name} have?", "{name} has {number} {pets}.", "{pets}"),
        ("Who has {number} {pets}?", "{name} has {number} {pets} at home.", "{name}"),
    )),
    FactTemplate("{name} plays {sport} every {day}.", (
        ("What does {name} play every {day}?", "{name} plays {sport} every {day}.", "{sport}"),
        ("When does {name} play {sport}?", "{name} plays {sport} every {day}.", "{day}"),
        ("Who plays {sport} every {day}?", "{name} plays {sport} every {day}.", "{name}"),
    )),
    FactTemplate("{name} is flying to {city} in {month}.", (
        ("Where is {name} flying in {month}?", "{name} is flying to {city}.", "{city}"),
        ("When is {name} flying to {city}?", "{name} is flying to {city} in {month}.", "{month}"),
        ("Who is flying to {city}?", "{name} is flying to {city} in {month}.", "{name}"),
    )),
    FactTemplate("{name} eats {food} for {meal}.", (
        ("What does {name} eat for {meal}?", "{name} eats {food} for {meal}.", "{food}"),
        ("When does {name} eat {food}?", "{name} eats {food} for {meal}.", "{meal}"),
        ("Who eats {food} for {meal}?", "{name} eats {food} for {meal}.", "{name}"),
    )),
    FactTemplate("{name} lives in {a_colour} house near the {landmark}.", (
        ("What colour is {name}'s house?", "{name}'s house is {colour}.", "{colour}"),
        ("Where does {name} live?", "{name} lives in {a_colour} house near the {landmark}.", "{landmark}"),
        ("Who lives near the {landmark}?", "{name} lives near the {landmark}.", "{name}"),
    )),
    FactTemplate("{name}'s {relative} is {age} years old.", (
        ("How old is {name}'s {relative}?", "{name}'s {relative} is {age} years old.", "{age}"),
        ("Who is {age} years old?", "{name}'s {relative} is {age} years old.", "{relative}"),
    )),
    FactTemplate("{name} practises the {instrument} every {daytime}.", (
        ("Which instrument does {name} practise?", "{name} practises the {instrument}.", "{instrument}"),
        ("When does {name} practise the {instrument}?", "{name} practises the {instrument} every {daytime}.", "{daytime}"),
        ("Who practises the {instrument}?", "{name} practises the {instrument} every {daytime}.", "{name}"),
    )),
    FactTemplate("{name} is reading a book about {topic}.", (
        ("What is {name}'s book about?", "{name}'s book is about {topic}.", "{topic}"),
        ("What is {name} reading?", "{name} is reading a book about {topic}.", "{topic}"),
        ("Who is reading a book about {topic}?", "{name} is reading a book about {topic}.", "{name}"),
    )),
    FactTemplate("{name} bought {number} {fruits} at the market.", (
        ("How many {fruits} did {name} buy?", "{name} bought {number} {fruits}.", "{number}"),
        ("What did {name} buy at the market?", "{name} bought {number} {fruits} at the market.", "{fruits}"),
        ("Who bought {number} {fruits}?", "{name} bought {number} {fruits} at the market.", "{name}"),
    )),
)

#: Person names with their possessive pronoun (none ends in "s", so "{name}'s" is always right).
PEOPLE: dict[str, str] = {
    **{n: "her" for n in ("Anna", "Emma", "Lisa", "Sarah", "Laura", "Julia", "Mia", "Sofia", "Clara", "Nina",
                          "Lucy", "Olivia", "Hannah", "Grace", "Kate", "Ruth")},
    **{n: "his" for n in ("Tom", "Max", "Ben", "Paul", "David", "Leo", "Jack", "Sam", "Peter", "Noah",
                          "Oscar", "Felix", "Daniel", "Henry", "Mark", "Adam")},
}

SLOTS: dict[str, tuple[str, ...]] = {
    "colour": ("red", "blue", "green", "yellow", "black", "white", "brown", "orange", "purple", "grey"),
    "thing": ("bicycle", "umbrella", "guitar", "lamp", "chair", "suitcase", "kite", "blanket", "ladder", "toolbox", "basket", "drum"),
    "room": ("garden", "kitchen", "garage", "attic", "basement", "hallway", "bedroom", "shed", "office", "cellar"),
    "job": ("baker", "teacher", "nurse", "doctor", "pilot", "engineer", "farmer", "painter", "lawyer", "dentist",
            "chef", "journalist", "architect", "mechanic", "librarian", "artist"),
    "city": ("Madrid", "Paris", "London", "Berlin", "Rome", "Vienna", "Lisbon", "Prague", "Dublin", "Oslo",
             "Athens", "Warsaw", "Boston", "Chicago", "Tokyo", "Sydney"),
    "number": ("two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "pets": ("cats", "dogs", "rabbits", "parrots", "goldfish", "hamsters", "turtles", "guinea pigs"),
    "sport": ("tennis", "football", "chess", "basketball", "volleyball", "golf", "badminton", "hockey"),
    "day": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "month": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
              "October", "November", "December"),
    "food": ("pancakes", "porridge", "toast", "eggs", "soup", "rice", "noodles", "salad", "fruit", "cereal",
             "yoghurt", "sandwiches"),
    "meal": ("breakfast", "lunch", "dinner"),
    "landmark": ("station", "river", "park", "library", "church", "market", "school", "bridge", "harbour",
                 "museum", "hospital", "lake"),
    "relative": ("sister", "brother", "cousin", "uncle", "aunt", "grandmother", "grandfather", "daughter", "son"),
    "age": ("six", "seven", "eight", "nine", "ten", "eleven", "twelve", "fifteen", "twenty", "thirty", "forty",
            "fifty", "sixty", "seventy"),
    "instrument": ("piano", "violin", "flute", "trumpet", "cello", "harp", "clarinet", "saxophone"),
    "daytime": ("morning", "afternoon", "evening", "night"),
    "topic": ("birds", "space", "history", "dinosaurs", "the ocean", "volcanoes", "robots", "pirates", "music",
              "cooking", "trains", "castles"),
    "fruits": ("apples", "pears", "lemons", "oranges", "plums", "peaches", "cherries", "bananas", "mangoes"),
}
