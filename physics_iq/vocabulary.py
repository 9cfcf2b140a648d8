"""Words that the perception, the offline critic and the physics prior must agree on.

The offline critic names objects the way a person would ("the grey ball on the left") and writes what they do
in ordinary words; the physics prior reads prompts written in the same ordinary words. Both use the colour
words, object nouns and motion words kept here, so that a change on one side cannot silently break the other.
"""

from __future__ import annotations

import re

#: Colour names the perception gives objects (basic colour terms, see :func:`physics_iq.motion.colour_name`).
COLOURS: tuple[str, ...] = (
    "red",
    "orange",
    "yellow",
    "green",
    "cyan",
    "blue",
    "purple",
    "magenta",
    "pink",
    "brown",
    "beige",
    "white",
    "grey",
    "black",
)

#: Other words for those colours, as people write them.
COLOUR_SYNONYMS: dict[str, str] = {
    "gray": "grey",
    "silver": "grey",
    "silvery": "grey",
    "metallic": "grey",
    "golden": "yellow",
    "gold": "yellow",
    "teal": "cyan",
    "turquoise": "cyan",
    "aqua": "cyan",
    "navy": "blue",
    "violet": "purple",
    "lilac": "purple",
    "maroon": "red",
    "crimson": "red",
    "scarlet": "red",
    "tan": "brown",
    "cream": "beige",
    "ivory": "white",
    "lime": "green",
    "olive": "green",
}

#: Colours a shaded, lit or patterned object of the key colour may also show (shadowed white looks grey, a
#: highlight on black looks grey, a dim orange looks brown ...). Used to score, never to decide alone.
COLOUR_NEIGHBOURS: dict[str, frozenset[str]] = {
    "red": frozenset({"orange", "magenta", "pink", "brown"}),
    "orange": frozenset({"red", "yellow", "brown"}),
    "yellow": frozenset({"orange", "beige", "green"}),
    "green": frozenset({"yellow", "cyan"}),
    "cyan": frozenset({"green", "blue"}),
    "blue": frozenset({"cyan", "purple"}),
    "purple": frozenset({"blue", "magenta"}),
    "magenta": frozenset({"purple", "pink", "red"}),
    "pink": frozenset({"magenta", "red", "white"}),
    "brown": frozenset({"orange", "red", "black", "beige"}),
    "beige": frozenset({"white", "yellow", "brown"}),
    "white": frozenset({"grey", "beige"}),
    "grey": frozenset({"white", "black"}),
    "black": frozenset({"grey", "brown"}),
}

#: Nouns of things that move by themselves in a scene, and the shape class the perception looks for.
#: ``round``: a disc in a side view; ``box``: a rectangle; ``grains``: many small bits (beads, sand);
#: ``fluid``: a liquid body.
OBJECT_NOUNS: dict[str, str] = {
    "ball": "round",
    "balls": "round",
    "marble": "round",
    "marbles": "round",
    "bob": "round",
    "sphere": "round",
    "balloon": "round",
    "lamp": "round",
    "bulb": "round",
    "apple": "round",
    "block": "box",
    "blocks": "box",
    "cube": "box",
    "cubes": "box",
    "brick": "box",
    "domino": "box",
    "dominoes": "box",
    "dominos": "box",
    "puck": "box",
    "box": "box",
    "book": "box",
    "can": "box",
    "bottle": "box",
    "mug": "box",
    "cup": "box",
    "beads": "grains",
    "bead": "grains",
    "sand": "grains",
    "rice": "grains",
    "pellets": "grains",
    "liquid": "fluid",
    "water": "fluid",
    "juice": "fluid",
    "oil": "fluid",
}

#: The singular form a name uses for a plural noun.
SINGULAR: dict[str, str] = {
    "balls": "ball",
    "marbles": "marble",
    "blocks": "block",
    "cubes": "cube",
    "dominoes": "domino",
    "dominos": "domino",
}

#: Things that are tools or fixed parts of the set-up, never objects to simulate (they hold, push, support).
TOOL_NOUNS: frozenset[str] = frozenset(
    {
        "grabber",
        "grabbers",
        "arm",
        "arms",
        "tool",
        "tools",
        "claw",
        "stick",
        "cue",
        "rod",
        "cord",
        "string",
        "rope",
        "hand",
        "gate",
        "pipe",
        "tube",
    }
)
SUPPORT_NOUNS: frozenset[str] = frozenset(
    {
        "table",
        "floor",
        "ramp",
        "shelf",
        "step",
        "track",
        "plate",
        "heater",
        "tank",
        "funnel",
        "glass",
        "magnet",
        "bumper",
        "stopper",
        "wall",
        "platform",
        "board",
        "tray",
        "crate",
        "pillow",
        "pillows",
        "slope",
        "bench",
        "counter",
        "desk",
        "pivot",
    }
)

#: Colours an object's material implies when the text names no colour (what a person knows: ice is white).
IMPLIED_COLOURS: dict[str, str] = {
    "ice": "white",
    "snow": "white",
    "steel": "grey",
    "metal": "grey",
    "chrome": "grey",
    "coal": "black",
    "wooden": "brown",
    "wood": "brown",
}

#: Things an object can hang from and swing on once it is let go (a grabber arm just lets go: free fall).
TETHER_WORDS: frozenset[str] = frozenset(
    {"rod", "cord", "string", "rope", "chain", "wire", "thread", "pendulum", "cable", "lanyard"}
)

#: Words that say an object is bouncy or dead (what a person knows about materials).
BOUNCY_WORDS: frozenset[str] = frozenset(
    {"rubber", "tennis", "bouncy", "basketball", "football", "inflatable", "superball", "ping-pong"}
)
DEAD_WORDS: frozenset[str] = frozenset(
    {"clay", "clay-like", "putty", "plasticine", "dough", "beanbag", "sandbag"}
)

#: Image directions as unit vectors ``(dx, dy)``, rows growing downwards.
DIRECTIONS: dict[str, tuple[float, float]] = {
    "right": (1.0, 0.0),
    "left": (-1.0, 0.0),
    "down": (0.0, 1.0),
    "up": (0.0, -1.0),
}

#: Qualitative speed words and the speed they stand for, in frame widths per second (a person's scale: a ball
#: rolling across a table top in about two seconds moves "quickly").
SPEED_WORDS: dict[str, float] = {
    "slowly": 0.1,
    "steadily": 0.25,
    "quickly": 0.5,
    "fast": 0.5,
    "very fast": 0.9,
}

#: Typical size (metres: diameter, or the longest side) of things people name, what a person knows. The
#: critic and the prior both read the scene's scale from it (a ball 20 px across is probably ~7 cm), so that
#: "falls as a real ball would" means the same pixel acceleration to both.
TYPICAL_SIZE_M: dict[str, float] = {
    "ball": 0.07, "marble": 0.016, "bob": 0.06, "sphere": 0.07, "balloon": 0.25, "lamp": 0.1, "bulb": 0.06,
    "apple": 0.08, "block": 0.08, "cube": 0.05, "brick": 0.2, "domino": 0.05, "puck": 0.076, "box": 0.2,
    "book": 0.22, "can": 0.12, "bottle": 0.25, "mug": 0.1, "cup": 0.09,
}  # fmt: skip

#: Phrases of ordinary language about how things move, by what they say (regular expressions, lower case).
#: The offline critic writes sentences from these; the physics prior reads prompts with them. Both sides use
#: the same table, and it also holds common wordings neither side writes (a real VLM's prompt).
MOTION_PHRASES: dict[str, tuple[str, ...]] = {
    "falls": (r"\bfalls?\b", r"\bfalling\b", r"\bdrops?\b(?! of)", r"\bdropped\b", r"\blet go\b", r"\blets go\b",
              r"\breleased?\b", r"\breleases\b", r"\btumbles?\b", r"\bplummets?\b"),
    "still": (r"\bstays? (?:still|put|in place|where it is|at rest|motionless)\b",
              r"\bremains? (?:still|in place|where it is|at rest|motionless)\b",
              r"\b(?:does not|doesn't|do not|don't|never) move\b", r"\bnot moving\b", r"\bnothing else moves\b"),
    "until_hit": (r"\buntil (?:something|it is|it gets|another|the \w+ (?:hits|reaches|strikes))",
                  r"\bunless (?:something|it is) (?:hit|pushed|struck)\b"),
    "moves": (r"\brolls?\b", r"\brolling\b", r"\bmoves?\b", r"\bmoving\b", r"\bslides?\b", r"\bsliding\b",
              r"\btravels?\b", r"\bkeeps? going\b", r"\bcarries on\b", r"\bcontinues?\b", r"\bglides?\b"),
    "swings": (r"\bswings?\b", r"\bswinging\b"),
    "floats": (r"\bfloats?\b(?! up)", r"\bfloating\b", r"\bbobs? (?:up|on|at)\b", r"\bstays? on the surface\b"),
    "pours": (r"\bpour(?:s|ing)?\b(?! (?:into|in)\b)", r"\bflows?\b", r"\bruns? out\b", r"\btrickles?\b",
              r"\bspills?\b", r"\bstreams?\b(?! of)"),
    "rises": (r"\brises?\b", r"\brising\b", r"\bfloats? up\b", r"\blifts? off\b", r"\bgoes up\b"),
    "bounce_high": (r"\bbounces? (?:back )?(?:up )?high\b", r"\bbounces? (?:several|many|a few) times\b",
                    r"\beach bounce (?:a little )?lower\b", r"\bbouncy\b", r"\bbounces? back up\b"),
    "bounce_very_high": (r"\bbounces? (?:back up )?very high\b", r"\balmost (?:back )?(?:up )?to where it (?:fell|was dropped) from\b",
                         r"\bnearly as high as\b"),
    "bounce_low": (r"\bbounces? (?:only )?(?:a little|slightly|low|once|weakly)\b", r"\bsmall bounce\b"),
    "no_bounce": (r"\b(?:does not|doesn't|won't|will not|never) bounce\b", r"\bwithout bouncing\b",
                  r"\bwith a thud\b", r"\blands? and stays?\b", r"\bno bounce\b", r"\bstays where it lands\b"),
    "keeps_speed": (r"\bat (?:a steady|a constant) speed\b", r"\bkeeps? (?:its|the same) speed\b",
                    r"\bwithout slowing\b", r"\bdoes not slow\b", r"\bnever slows\b"),
    "same_speed": (r"\b(?:at|with) (?:exactly )?the (?:same )?speed (?:it|they) (?:had|has|have)\b",
                   r"\bas fast as (?:it was|before)\b", r"\bwithout (?:a )?(?:jump|jolt|change) in speed\b"),
    "slows_gently": (r"\bslows? (?:down )?(?:gently|gradually|slightly|a little|slowly)\b",
                     r"\bgradually slows?\b"),
    "slows_quickly": (r"\bslows? (?:down )?(?:quickly|fast|sharply|rapidly)\b", r"\bstops? (?:soon|quickly)\b",
                      r"\bcomes? (?:quickly )?to (?:a )?(?:rest|stop|halt) quickly\b"),
    "slows": (r"\bslows? down\b", r"\bslowing down\b", r"\bcomes? to (?:a )?(?:rest|stop|halt)\b",
              r"\bstops?\b(?! \w+ing)"),
    "fast": (r"\bquickly\b", r"\bfast\b", r"\brapidly\b", r"\bspeeds? up\b", r"\bfaster and faster\b",
             r"\baccelerat\w*\b"),
    "slow": (r"\bslowly\b", r"\bgently\b", r"\bin slow motion\b"),
    "pulled": (r"\b(?:pulled|drawn|attracted|sucked)\b[^.;]*?\b(?:towards?|to)\b",),
    "pushed_back": (r"\b(?:pushed (?:back|away)|repelled|repels?|driven back)\b",),
    # How hard a stated pull or push acts (a magnet's force grows as the object comes close).
    "force_gentle": (r"\bonly (?:as|when|once) it (?:comes?|gets?|is) (?:close|near)",
                     r"\b(?:gently|weakly|softly|slightly) (?:pulled|drawn|attracted|pushed|repelled)\b",
                     r"\b(?:pulled|drawn|attracted|pushed (?:back|away)|repelled)\b[^.;]*?\b(?:gently|weakly)\b",
                     r"\bweak (?:pull|push|force|magnet)\b"),
    "force_strong": (r"\b(?:strongly|sharply|hard|firmly) (?:pulled|drawn|attracted|pushed|repelled)\b",
                     r"\b(?:pulled|drawn|attracted|pushed (?:back|away)|repelled)\b[^.;]*?\b(?:strongly|sharply|at once|right away)\b",
                     r"\bstrong (?:pull|push|force)\b"),
}  # fmt: skip

#: Words that say a surface or an object slides with hardly any friction.
SMOOTH_WORDS: frozenset[str] = frozenset(
    {"smooth", "slippery", "icy", "frictionless", "polished", "greased", "air-hockey"}
)

_WORD = re.compile(r"[a-z][a-z'-]*")
_COMPILED: dict[str, tuple[re.Pattern[str], ...]] = {
    key: tuple(re.compile(p) for p in patterns) for key, patterns in MOTION_PHRASES.items()
}
_SECONDS = re.compile(
    r"\b(?:after|within|in|for) (?:about |around |roughly |some )?(\d+(?:\.\d+)?) ?(?:s|sec|secs|seconds?)\b"
)
_DIRECTION = re.compile(
    r"\b(?:to(?:wards?)? the (right|left)|(right|left)wards?|(up)wards?|(down)wards?|straight (down|up)|"
    r"(?:up|down) the (?:ramp|slope) to the (right|left)|\b(up|down)\b)"
)


def says(sentence: str, what: str) -> bool:
    """Whether a sentence says ``what`` (a key of :data:`MOTION_PHRASES`).

    >>> says("The ball rolls to the right, slows down and stops.", "slows")
    True
    >>> says("It bounces a few times, each bounce lower.", "bounce_high")
    True
    """
    low = sentence.lower()
    return any(p.search(low) for p in _COMPILED[what])


#: "Slows down", "settles down": "down" there is not a way to go.
_NOT_A_WAY = re.compile(
    r"\b(?:slow(?:s|ed|ing)?|settl(?:es|ed|ing|e)|calm(?:s|ed|ing)?|wind(?:s|ing)?) (?:down|up)\b"
)


def direction(sentence: str) -> str | None:
    """The first image direction a sentence gives (``right``, ``left``, ``up``, ``down``), or ``None``.

    >>> direction("The ball keeps rolling to the right."), direction("It falls straight down."), direction("Hi.")
    ('right', 'down', None)
    >>> direction("The ball slows down gradually."), direction("It slows down and rolls to the left.")
    (None, 'left')
    """
    match = _DIRECTION.search(_NOT_A_WAY.sub(" ", sentence.lower()))
    if not match:
        return None
    return next(g for g in match.groups() if g)


def seconds(sentence: str) -> float | None:
    """A duration in seconds a sentence gives ("stops after about 2 seconds"), or ``None``.

    >>> seconds("It comes to rest after about 2.5 seconds."), seconds("It stops.")
    (2.5, None)
    """
    match = _SECONDS.search(sentence.lower())
    return float(match[1]) if match else None


def colour_word(word: str) -> str | None:
    """The basic colour a word names, or ``None``.

    >>> colour_word("Gray"), colour_word("silver"), colour_word("ball")
    ('grey', 'grey', None)
    """
    low = word.lower()
    if low in COLOURS:
        return low
    return COLOUR_SYNONYMS.get(low)


def words(text: str) -> list[str]:
    """Lower-case words of a text (hyphenated words kept whole).

    >>> words("A clay-like ball, the Grabber's arm.")
    ['a', 'clay-like', 'ball', 'the', "grabber's", 'arm']
    """
    return _WORD.findall(text.lower())


__all__ = [
    "BOUNCY_WORDS",
    "COLOURS",
    "COLOUR_NEIGHBOURS",
    "COLOUR_SYNONYMS",
    "DEAD_WORDS",
    "DIRECTIONS",
    "IMPLIED_COLOURS",
    "MOTION_PHRASES",
    "OBJECT_NOUNS",
    "SINGULAR",
    "SMOOTH_WORDS",
    "SPEED_WORDS",
    "SUPPORT_NOUNS",
    "TETHER_WORDS",
    "TOOL_NOUNS",
    "TYPICAL_SIZE_M",
    "colour_word",
    "direction",
    "says",
    "seconds",
    "words",
]
