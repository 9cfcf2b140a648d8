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
    {"grabber", "grabbers", "arm", "arms", "tool", "tools", "claw", "stick", "cue", "rod", "cord", "string",
     "rope", "hand", "gate", "pipe", "tube"}
)
SUPPORT_NOUNS: frozenset[str] = frozenset(
    {"table", "floor", "ramp", "shelf", "step", "track", "plate", "heater", "tank", "funnel", "glass", "magnet",
     "bumper", "stopper", "wall", "platform", "board", "tray", "crate", "pillow", "pillows", "slope", "bench",
     "counter", "desk", "pivot"}
)

#: Colours an object's material implies when the text names no colour (what a person knows: ice is white).
IMPLIED_COLOURS: dict[str, str] = {"ice": "white", "snow": "white", "steel": "grey", "metal": "grey",
                                   "chrome": "grey", "coal": "black", "wooden": "brown", "wood": "brown"}

#: Words that say an object is bouncy or dead (what a person knows about materials).
BOUNCY_WORDS: frozenset[str] = frozenset(
    {"rubber", "tennis", "bouncy", "basketball", "football", "inflatable", "superball", "ping-pong"}
)
DEAD_WORDS: frozenset[str] = frozenset({"clay", "clay-like", "putty", "plasticine", "dough", "beanbag", "sandbag"})

#: Image directions as unit vectors ``(dx, dy)``, rows growing downwards.
DIRECTIONS: dict[str, tuple[float, float]] = {
    "right": (1.0, 0.0),
    "left": (-1.0, 0.0),
    "down": (0.0, 1.0),
    "up": (0.0, -1.0),
}

#: Qualitative speed words and the speed they stand for, in frame widths per second (a person's scale: a ball
#: rolling across a table top in about two seconds moves "quickly").
SPEED_WORDS: dict[str, float] = {"slowly": 0.1, "steadily": 0.25, "quickly": 0.5, "fast": 0.5, "very fast": 0.9}

_WORD = re.compile(r"[a-z][a-z'-]*")


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
    "OBJECT_NOUNS",
    "SINGULAR",
    "SPEED_WORDS",
    "SUPPORT_NOUNS",
    "TOOL_NOUNS",
    "colour_word",
    "words",
]
