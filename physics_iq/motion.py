"""Scene-agnostic perception (shared by the agent and the generators): what is in a clip, what moves, and how.

Classical image processing only (OpenCV and numpy), no neural model and no palette:

- **Colour words** from CIELAB lightness, chroma and hue (:func:`colour_name`), calibrated on the CSS/X11
  colour names, so that a shaded white ball, a black puck or a brown tennis ball are named as people name them.
  Colour only *names* objects and scores candidates the description asks for; nothing is found by saturation.
- **What moved** in a prefix clip (v2v): a background model (the per-pixel temporal median), the switch
  frame's difference from it above the measured sensor noise, cast shadows removed (darker, same chromaticity),
  and *ghosts* (where an object was for most of the prefix but no longer is) told from objects by which of the
  two images contrasts with its surroundings.
- **What the description names** (:func:`mentions`: "a white rubber ball", "six black dominoes", "small
  yellow beads"): for each named thing not found moving, candidates by shape against their surroundings —
  circles (Hough transform on the lightness and colour channels) for round things, rectangles for blocks —
  scored by edge support, contrast with the surroundings, the colour word and physical plausibility (resting on
  a support, or at least not sunk into it).
- **Static geometry**: the floor line (a long horizontal edge that things rest on) and what stands on it.
- **Tracking** a continuation by masked template matching of each object's switch-frame appearance, with a
  constant-acceleration motion prior, so that decorations and props of the same colour are not confused with
  it, and things that never moved and are not named are not objects at all.

The measurements (:class:`ObjectMotion`) serve the offline critic, the physics-prior generator and real VLMs
(:meth:`MotionSummary.grounding_text`, the MASS idea: motion signals in language).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from physics_iq.vocabulary import (
    BOUNCY_WORDS,
    COLOUR_NEIGHBOURS,
    COLOURS,
    DEAD_WORDS,
    IMPLIED_COLOURS,
    OBJECT_NOUNS,
    SINGULAR,
    SUPPORT_NOUNS,
    TOOL_NOUNS,
    TYPICAL_SIZE_M,
    colour_word,
    direction,
    words,
)

#: Smallest object, px: below this a blob is codec fringe or texture at any frame size the benchmark uses.
MIN_AREA = 20

# ---------------------------------------------------------------------------------------------- colour words


def lch(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CIELAB lightness (0..100), chroma and hue angle (degrees) of RGB uint8 pixels ``(..., 3)``."""
    flat = np.ascontiguousarray(image, np.uint8).reshape(-1, 1, 3)
    lab = cv2.cvtColor(flat, cv2.COLOR_RGB2LAB).reshape(*image.shape[:-1], 3).astype(np.float32)
    light = lab[..., 0] * (100.0 / 255.0)
    a, b = lab[..., 1] - 128.0, lab[..., 2] - 128.0
    return light, np.hypot(a, b), np.degrees(np.arctan2(b, a)) % 360.0


def _name_index(light: np.ndarray, chroma: np.ndarray, hue: np.ndarray) -> np.ndarray:
    """Index into :data:`COLOURS` per pixel. Boundaries follow the CSS/X11 colour names (``red`` ... ``black``,
    ``saddlebrown`` -> brown, ``silver`` -> grey, ``beige`` -> beige, ``teal`` -> cyan ...)."""
    idx = {name: k for k, name in enumerate(COLOURS)}
    out = np.full(light.shape, idx["grey"], np.uint8)
    grey = chroma < 9.0
    out[grey & (light < 28)] = idx["black"]
    out[grey & (light > 82)] = idx["white"]
    hue_bins = [
        ((hue >= 345) | (hue < 15), "red"),
        ((hue >= 15) & (hue < 45), "red"),
        ((hue >= 45) & (hue < 80), "orange"),
        ((hue >= 80) & (hue < 115), "yellow"),
        ((hue >= 115) & (hue < 170), "green"),
        ((hue >= 170) & (hue < 225), "cyan"),
        ((hue >= 225) & (hue < 310), "blue"),
        ((hue >= 310) & (hue < 345), "purple"),
    ]
    chromatic = ~grey
    for where, name in hue_bins:
        out[chromatic & where] = idx[name]
    # Refinements by lightness and chroma within hue families.
    warm_light = chromatic & (hue >= 345) | chromatic & (hue < 15)
    out[warm_light & (light > 60)] = idx["pink"]
    reds = chromatic & (hue >= 15) & (hue < 45)
    out[reds & (light >= 30) & (light < 50) & (chroma < 62)] = idx["brown"]
    out[reds & (light > 62) & (chroma < 60)] = idx["pink"]
    oranges = chromatic & (hue >= 45) & (hue < 80)
    out[oranges & ((light < 60) | (chroma < 35))] = idx["brown"]
    yellows = chromatic & (hue >= 80) & (hue < 115)
    out[yellows & (light < 60)] = idx["green"]
    out[chromatic & (hue >= 60) & (hue < 115) & (light > 80) & (chroma < 30)] = idx["beige"]
    purples = chromatic & (hue >= 310) & (hue < 345)
    out[purples & (light >= 55) & (chroma >= 55)] = idx["magenta"]
    out[purples & (light > 65) & (chroma < 55)] = idx["pink"]
    return out


def colour_names(image: np.ndarray) -> np.ndarray:
    """Per-pixel index into :data:`physics_iq.vocabulary.COLOURS` of an RGB uint8 image."""
    return _name_index(*lch(image))


def colour_name(rgb: tuple[int, int, int] | np.ndarray) -> str:
    """The basic colour word of one RGB colour.

    >>> [colour_name(c) for c in [(255, 0, 0), (139, 69, 19), (192, 192, 192), (0, 128, 128), (245, 245, 220)]]
    ['red', 'brown', 'grey', 'cyan', 'beige']
    """
    pixel = np.asarray(rgb, np.uint8).reshape(1, 1, 3)
    return COLOURS[int(colour_names(pixel)[0, 0])]


def object_colour(pixels: np.ndarray) -> str:
    """The colour word of an object from its pixels ``(N, 3)``: the commonest name among its mid-lit pixels
    (lightness between its 35th and 90th percentiles). Shading darkens one side and a highlight whitens a
    spot; neither names the object.

    >>> object_colour(np.array([[200, 30, 30]] * 8 + [[90, 10, 10]] * 4 + [[255, 255, 255]], np.uint8))
    'red'
    """
    if len(pixels) == 0:
        return "grey"
    light, chroma, hue = lch(pixels.reshape(-1, 1, 3))
    light, chroma, hue = light[:, 0], chroma[:, 0], hue[:, 0]
    lo, hi = np.percentile(light, [35, 90])
    keep = (light >= lo) & (light <= hi)
    if keep.sum() < 3:
        keep = np.ones_like(light, bool)
    names = _name_index(light[keep], chroma[keep], hue[keep])
    return COLOURS[int(np.bincount(names, minlength=len(COLOURS)).argmax())]


def colour_match(named: str | None, seen: str) -> float:
    """How well an object seen as ``seen`` fits a description's colour word: 1 same, 0.5 a shading neighbour,
    0 otherwise; 0.5 when the description gives no colour.

    >>> colour_match("white", "white"), colour_match("white", "grey"), colour_match("white", "red")
    (1.0, 0.5, 0.0)
    """
    if named is None:
        return 0.5
    if named == seen:
        return 1.0
    return 0.5 if seen in COLOUR_NEIGHBOURS.get(named, frozenset()) else 0.0


# ---------------------------------------------------------------------------------------------- the description

_COUNTS = {
    "a": 1, "an": 1, "one": 1, "single": 1, "two": 2, "both": 2, "pair": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
}  # fmt: skip
# Words that end a noun phrase when reading backwards from its noun.
_PHRASE_STOPS = frozenset(
    {"and", "or", "with", "of", "in", "on", "at", "to", "from", "by", "into", "onto", "over", "under", "above",
     "below", "behind", "beside", "towards", "toward", "than", "is", "are", "was", "holds", "hold", "holding",
     "pushes", "push", "hits", "sends", "then", "that", "which", "while", "as"}
)  # fmt: skip


@dataclass(frozen=True)
class Mention:
    """A thing the description names that can move by itself.

    Attributes:
        noun: The noun, singular (``"ball"``, ``"domino"``, ``"beads"``).
        shape: ``round``, ``box``, ``grains`` or ``fluid`` (:data:`physics_iq.vocabulary.OBJECT_NOUNS`).
        colour: The colour word it is given (or implied by its material), ``None`` if none.
        count: How many (``"six dominoes"``: 6).
        bounce: ``"bouncy"``, ``"dead"`` or ``None`` from material words ("rubber", "clay").
        phrase: The words of its noun phrase.
        held: Whether the description says something holds it or lets it go ("A grabber arm holds a yellow
            block", "a ball hangs on a string", "the bob is let go"): then it is in the air at the switch frame.
    """

    noun: str
    shape: str
    colour: str | None
    count: int = 1
    bounce: str | None = None
    phrase: str = ""
    held: bool = False

    @property
    def label(self) -> str:
        """``"white ball"``, ``"dominoes"``: how a sentence names it."""
        return f"{self.colour} {self.noun}" if self.colour else self.noun


def mentions(text: str) -> list[Mention]:
    """The movable things a description names, in order, a later bare repetition ("the ball") merged into
    the first naming of the same noun.

    >>> [m.label for m in mentions("A red rubber ball and a blue clay-like ball hang from two grabber arms. "
    ...                                "The grabbers let go of both balls.")]
    ['red ball', 'blue ball']
    >>> [(m.label, m.count) for m in mentions("Six thin white dominoes stand on a table. A stick pushes a ball.")]
    [('white domino', 6), ('ball', 1)]
    >>> mentions("An ice cube sits on a hot plate.")[0].colour
    'white'
    >>> [m.held for m in mentions("A ball rests on a table. A grabber arm holds a block above it, then lets go.")]
    [False, True]
    """
    tokens = words(text)
    found: list[Mention] = []
    for i, token in enumerate(tokens):
        shape = OBJECT_NOUNS.get(token)
        if shape is None:
            continue
        # "tennis ball" is a ball; "ball string" or "ball bearing" are not separate objects.
        if i + 1 < len(tokens) and (tokens[i + 1] in TOOL_NOUNS or tokens[i + 1] in SUPPORT_NOUNS):
            continue
        colour: str | None = None
        count = 1
        bounce: str | None = None
        implied: str | None = None
        phrase = [token]
        for back in range(i - 1, max(-1, i - 6), -1):
            word = tokens[back]
            if word in _PHRASE_STOPS or word in OBJECT_NOUNS or word in SUPPORT_NOUNS or word in TOOL_NOUNS:
                break
            phrase.insert(0, word)
            if word in ("the", "this", "that"):
                break
            if word in _COUNTS:
                count = _COUNTS[word]
                break
            named = colour_word(word)
            if named and colour is None:
                colour = named
            implied = implied or IMPLIED_COLOURS.get(word)
            if word in BOUNCY_WORDS:
                bounce = "bouncy"
            elif word in DEAD_WORDS:
                bounce = "dead"
        if token in IMPLIED_COLOURS and colour is None:
            implied = IMPLIED_COLOURS[token]
        colour = colour or implied
        noun = SINGULAR.get(token, token)
        if shape == "grains":
            noun = token if token.endswith("s") or token in ("sand", "rice") else token + "s"
        plural_back_reference = token != noun and colour is None
        earlier = [m for m in found if m.noun == noun and (colour is None or m.colour in (None, colour))]
        if earlier and (colour is None or plural_back_reference or any(m.colour == colour for m in earlier)):
            continue  # "the ball", "both balls", "the red ball" again: said again, not another object
        if earlier and earlier[0].colour is None:  # "a ball ... the red ball": the same ball, now with colour
            found[found.index(earlier[0])] = Mention(
                noun, shape, colour, earlier[0].count, bounce or earlier[0].bounce, " ".join(phrase)
            )
            continue
        found.append(Mention(noun, shape, colour, count, bounce, " ".join(phrase)))
    held = set()
    for sentence in re.split(r"(?<=[.!?;])\s+", text):
        if _HOLD_WORDS.search(sentence) or _RELEASE_WORDS.search(sentence):
            held |= {SINGULAR.get(w, w) for w in words(sentence)}
    return [replace(m, held=m.noun in held) for m in found]


# A thing held or hanging is in the air at the switch frame, not resting on a support.
_HOLD_WORDS = re.compile(
    r"\b(?:holds?|holding|held|hangs?|hanging|hung|suspended|dangles?|dangling|grips?|gripped|clamps?|clamped)\b",
    re.I,
)


# ---------------------------------------------------------------------------------------------- noise, background


def noise_level(frames: np.ndarray) -> float:
    """Typical per-pixel RGB distance between a frame and the scene's background, 8-bit levels (robust).

    With several frames: the 90th percentile of the switch frame's distance from the temporal median (most
    pixels are static; video codecs copy static blocks, so frame-to-frame differences would say 0). With one
    frame: Immerkaer's Laplacian-like residual, which texture inflates a little.
    """
    if len(frames) >= 5:
        median = np.median(frames, axis=0)
        return float(np.percentile(_distance(frames[-1], median), 90)) + 0.5
    gray = cv2.cvtColor(frames[-1], cv2.COLOR_RGB2GRAY).astype(np.float32)
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    residual = np.abs(cv2.filter2D(gray, -1, kernel))[1:-1, 1:-1]
    return float(1.4826 * np.median(residual) / 6.0 * math.sqrt(3.0)) + 0.5


def _distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean RGB distance per pixel."""
    d = a.astype(np.float32) - b.astype(np.float32)
    return np.sqrt((d * d).sum(axis=-1))


def difference_threshold(noise: float) -> float:
    """RGB distance above which a pixel changed: 2.5 times the typical background distance (its 90th
    percentile), and at least 12 levels for codec ringing."""
    return max(12.0, 2.5 * noise)


def _shadow(frame: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Pixels of ``frame`` that are ``background`` in shadow: darker by 8-60 %, with the same chromaticity."""
    f = frame.astype(np.float32) + 1.0
    b = background.astype(np.float32) + 1.0
    ratio = f.sum(axis=-1) / b.sum(axis=-1)
    chroma_f = f / f.sum(axis=-1, keepdims=True)
    chroma_b = b / b.sum(axis=-1, keepdims=True)
    same_chroma = np.abs(chroma_f - chroma_b).max(axis=-1) < 0.03
    return (ratio > 0.4) & (ratio < 0.92) & same_chroma


def _grown(mask: np.ndarray, px: int = 2) -> np.ndarray:
    """A boolean mask grown by ``px`` pixels in every direction (a square neighbourhood)."""
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)).astype(bool)


def _ring(mask: np.ndarray, width: int) -> np.ndarray:
    """The band of ``width`` px around a boolean mask."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool) & ~mask


def _novelty(image: np.ndarray, inside: np.ndarray, outside: np.ndarray) -> float:
    """How much a region stands out from a band around it, texture-aware: the median over the region's pixels
    of the RGB distance to the closest colour found in the band. A patch of patterned wall finds all its
    colours in the surrounding wall (low), an object in front of it does not (high). 0 when either is empty.
    """
    if not inside.any() or not outside.any():
        return 0.0
    a = image[inside].astype(np.float32)
    b = image[outside].astype(np.float32)
    a = a[:: max(1, len(a) // 300)]
    b = b[:: max(1, len(b) // 300)]
    nearest = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1)).min(axis=1)
    return float(np.median(nearest))


@dataclass
class Motion:
    """What the prefix shows moving at the switch frame (v2v): its background and the moving regions.

    Attributes:
        background: ``(H, W, 3)`` uint8: the temporal median, with ghosts replaced by the switch frame.
        moving: Boolean ``(H, W)``: pixels of things that moved and are at the switch frame now.
        threshold: The RGB distance used to call a pixel changed.
    """

    background: np.ndarray
    moving: np.ndarray
    threshold: float


def prefix_motion(prefix: np.ndarray, noise: float | None = None) -> Motion:
    """Background model of a prefix and what has moved by its last frame (see the module docstring)."""
    switch = prefix[-1]
    height, width = switch.shape[:2]
    noise = noise_level(prefix) if noise is None else noise
    threshold = difference_threshold(noise)
    if len(prefix) < 5:
        return Motion(switch.copy(), np.zeros((height, width), bool), threshold)
    background = np.median(prefix, axis=0).astype(np.uint8)
    changed = (_distance(switch, background) > threshold) & ~_shadow(switch, background)
    changed = cv2.morphologyEx(changed.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(changed, connectivity=8)
    moving = np.zeros((height, width), bool)
    for label in range(1, count):
        if stats[label, cv2.CC_STAT_AREA] < MIN_AREA // 2:
            continue
        region = labels == label
        ring = _ring(region, 3) & ~changed.astype(bool)
        # An object arrived here: the switch frame stands out from the surroundings, the median does not.
        # A ghost: the object was here for most of the prefix (the median shows it) and has left.
        if _novelty(switch, region, ring) >= _novelty(background, region, ring):
            moving |= region
        else:
            background[region] = switch[region]
    return Motion(background, moving, threshold)


# ---------------------------------------------------------------------------------------------- objects


@dataclass(eq=False)
class Blob:
    """One object at the switch frame.

    Attributes:
        x: Centroid column (px).
        y: Centroid row (px, downwards).
        area: Pixel count of its mask.
        colour: Colour word (:func:`object_colour`).
        bbox: ``(x0, y0, width, height)`` of its mask.
        label: Its value in the label image.
        shape: ``round``, ``box``, ``grains``, ``fluid`` or ``blob``.
        noun: What it is called (``"ball"``; ``"object"`` when the description does not name it).
        name: How sentences name it (``"the white ball"``, ``"the black ball on the right"``).
        moving: Whether it moved in the prefix.
        mention: Index into the description's :func:`mentions`, -1 if it names none of them.
        bounce: ``"bouncy"``/``"dead"``/``None`` from the description's material words.
        fitted_radius: The fitted circle's radius for round things (px), else ``None``.
    """

    x: float
    y: float
    area: int
    colour: str
    bbox: tuple[int, int, int, int]
    label: int
    shape: str = "blob"
    noun: str = "object"
    name: str = ""
    moving: bool = False
    mention: int = -1
    bounce: str | None = None
    fitted_radius: float | None = None

    @property
    def radius(self) -> float:
        """Radius of a round thing; for others, of the disc with the blob's area."""
        if self.fitted_radius is not None:
            return self.fitted_radius
        return math.sqrt(self.area / math.pi)

    @property
    def bottom(self) -> float:
        """Lowest row of its mask (px)."""
        return float(self.bbox[1] + self.bbox[3] - 1)


def _component_shape(mask: np.ndarray) -> tuple[str, float]:
    """``round``/``box``/``blob`` of a mask, and its radius (enclosing circle for round things, else the disc
    of equal area). A box fills its minimum-area rectangle (a disc fills pi/4 of it); a round thing is about as
    wide as high; anything else is a blob.

    >>> disc = np.zeros((40, 40), np.uint8); _ = cv2.circle(disc, (20, 20), 9, 1, -1)
    >>> square = np.zeros((40, 40), np.uint8); square[10:30, 12:26] = 1
    >>> _component_shape(disc.astype(bool))[0], _component_shape(square.astype(bool))[0]
    ('round', 'box')
    """
    area = float(mask.sum())
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return "blob", math.sqrt(area / math.pi)
    contour = max(contours, key=cv2.contourArea)
    (_, _), (w, h), _ = cv2.minAreaRect(contour)
    # minAreaRect measures between pixel centres: add the pixel's own width.
    w, h = w + 1.0, h + 1.0
    rectangularity = area / max(w * h, 1.0)
    aspect = max(w, h) / max(min(w, h), 1.0)
    if rectangularity >= 0.88:
        return "box", math.sqrt(area / math.pi)
    if aspect <= 1.35 and rectangularity >= 0.6:
        return "round", 0.25 * (w + h)
    return "blob", math.sqrt(area / math.pi)


def _box_fit(region: np.ndarray) -> tuple[float, np.ndarray]:
    """How well a region the colour picked out fits a block (1 a rectangle, 0.6 a shaded or tilted one whose
    outline frays, 0.5 a round one, 0 anything filling less than 72 % of its rectangle), and the region
    without what sticks out of it.

    A block in a real picture is seldom a clean rectangle of one colour: shading splits its faces, a holder
    or an arm adds a stub, a tilt adds a ragged edge. Thin attachments are cut off (an opening a third of
    its width) before the outline is judged.

    >>> block = np.zeros((40, 60), bool); block[10:30, 10:40] = True; block[2:10, 24:27] = True  # an arm on top
    >>> fit, kept = _box_fit(block); fit, int(kept[:8].sum())
    (1.0, 0)
    >>> ring = np.zeros((40, 40), np.uint8); _ = cv2.circle(ring, (20, 20), 12, 1, 3)
    >>> _box_fit(ring.astype(bool))[0]
    0.0
    """
    ys, xs = np.nonzero(region)
    size = max(3, round(min(np.ptp(xs) + 1, np.ptp(ys) + 1) / 3)) | 1
    opened = cv2.morphologyEx(
        region.astype(np.uint8), cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    )
    count, comp, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    if count < 2:
        return 0.0, region
    kept = comp == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    if kept.sum() < 0.6 * region.sum():
        return 0.0, region  # mostly thin parts: a frame, a ring, a line
    shape, _ = _component_shape(kept)
    if shape == "box":
        return 1.0, kept
    contour = max(
        cv2.findContours(kept.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)[0],
        key=cv2.contourArea,
    )
    (_, _), (w, h), _ = cv2.minAreaRect(contour)
    rectangularity = float(kept.sum()) / max((w + 1.0) * (h + 1.0), 1.0)
    if rectangularity < 0.72:
        return 0.0, region  # a triangle (a poster's mountain), a star, a ragged patch: no block
    return (0.5 if shape == "round" else 0.6), kept  # a disc is a poorer block than a frayed rectangle


def _thin(mask: np.ndarray) -> bool:
    """A long thin structure (a stick, an arm, a string): at most 5 px across and 4 times as long."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return False
    (_, _), (w, h), _ = cv2.minAreaRect(max(contours, key=cv2.contourArea))
    short, long = min(w, h), max(w, h)
    return short <= 5.0 and long >= 4.0 * max(short, 1.0)


def _circle_candidates(frame: np.ndarray, min_r: int, max_r: int) -> list[tuple[float, float, float]]:
    """Circles found by the Hough transform (OpenCV's gradient-alt variant) on the lightness and on both
    colour-opponent channels (a shaded ball may differ from the wall in colour more than in lightness)."""
    lab = cv2.cvtColor(frame, cv2.COLOR_RGB2LAB)
    found: list[tuple[float, float, float]] = []
    for channel in range(3):
        plane = cv2.GaussianBlur(lab[..., channel], (3, 3), 0)
        circles = cv2.HoughCircles(
            plane,
            cv2.HOUGH_GRADIENT_ALT,
            dp=1.5,
            minDist=max(min_r, 4),
            param1=150,
            param2=0.6,
            minRadius=min_r,
            maxRadius=max_r,
        )
        if circles is None:
            continue
        for x, y, r in circles[0]:
            if all(math.hypot(x - a, y - b) > 0.5 * max(r, c) for a, b, c in found):
                found.append((float(x), float(y), float(r)))
    return found


def _disc_mask(shape: tuple[int, int], x: float, y: float, r: float) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.circle(mask, (round(x * 16), round(y * 16)), max(1, round(r * 16)), 1, -1, cv2.LINE_8, 4)
    return mask.astype(bool)


def _edge_support(gradient: np.ndarray, x: float, y: float, r: float) -> float:
    """Share of 32 points on the circle where the image gradient is strong (above its 85th percentile)."""
    strong = float(np.percentile(gradient, 85))
    angles = np.linspace(0, 2 * math.pi, 32, endpoint=False)
    xs = np.clip(np.round(x + r * np.cos(angles)).astype(int), 0, gradient.shape[1] - 1)
    ys = np.clip(np.round(y + r * np.sin(angles)).astype(int), 0, gradient.shape[0] - 1)
    hits = 0
    for px, py in zip(xs, ys, strict=True):
        patch = gradient[max(0, py - 1) : py + 2, max(0, px - 1) : px + 2]
        hits += int(patch.max() > strong)
    return hits / 32.0


def _gradient(frame: np.ndarray) -> np.ndarray:
    lab = cv2.cvtColor(frame, cv2.COLOR_RGB2LAB).astype(np.float32)
    mag = np.zeros(frame.shape[:2], np.float32)
    for channel in range(3):
        gx = cv2.Sobel(lab[..., channel], cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(lab[..., channel], cv2.CV_32F, 0, 1, ksize=3)
        mag = np.maximum(mag, np.hypot(gx, gy))
    return mag


@dataclass
class Perception:
    """Everything :func:`perceive` found.

    Attributes:
        objects: The switch frame's objects (moving ones first, then named still ones).
        labels: ``(H, W)`` int32 label image (0: none; ``blob.label`` otherwise).
        background: ``(H, W, 3)`` uint8, the scene without its objects (inpainted where never seen).
        hidden: Boolean ``(H, W)``: background pixels that were inpainted.
        floor_y: The floor line (row).
        support: Per column, the row a falling object would land on (the floor, or what stands on it).
        noise: Sensor noise (8-bit levels).
        mentions: The description's :func:`mentions`.
    """

    objects: list[Blob]
    labels: np.ndarray
    background: np.ndarray
    hidden: np.ndarray
    floor_y: float
    support: np.ndarray
    noise: float
    mentions: list[Mention] = field(default_factory=list)

    def mask(self, blob: Blob) -> np.ndarray:
        """Boolean ``(H, W)`` mask of one object."""
        return self.labels == blob.label


def _hanging(
    frame: np.ndarray,
    x: float,
    top: float,
    reach: float,
    threshold: float = 30.0,
    bottom: float | None = None,
) -> bool:
    """Whether a thin line (a string, a grabber arm, a rod) comes down onto a thing from above: in some
    column within ``reach`` of ``x``, just above its top, a 1-3 px band of steady colour that differs from
    the pixels a few px to both sides, and that does not go on below the thing (``bottom``): a stripe of the
    wallpaper passes behind things, a string ends at what it holds."""
    height, width = frame.shape[:2]
    rows = [r for r in range(round(top) - 14, round(top) - 1) if 0 <= r < height]
    if len(rows) < 6:
        return False
    image = frame.astype(np.float32)
    under = [] if bottom is None else [r for r in range(round(bottom) + 4, round(bottom) + 14) if r < height]
    for col in range(round(x - reach), round(x + reach) + 1):
        if not 6 <= col < width - 6:
            continue
        middle = image[rows, col]
        left = image[rows, col - 5]
        right = image[rows, col + 5]
        to_left = np.linalg.norm(middle - left, axis=1)
        to_right = np.linalg.norm(middle - right, axis=1)
        differs = (to_left > threshold) & (to_right > threshold)
        # Where the line crosses something of its own colour (an arm in front of a dark picture frame) the
        # row says nothing either way.
        crossing = (to_left <= threshold) & (to_right <= threshold)
        judged = ~crossing
        if judged.sum() >= 6 and differs[judged].mean() >= 0.8 and float(np.std(middle, axis=0).max()) < 20.0:
            if len(under) >= 5:
                line = np.median(middle, axis=0)
                if (np.linalg.norm(image[under, col] - line, axis=1) < threshold).mean() >= 0.6:
                    continue  # the same line below the thing: a pattern behind it
            return True
    return False


def _plausible(
    frame: np.ndarray,
    mask: np.ndarray,
    support: np.ndarray,
    floor_y: float,
    held: bool = False,
    solid: np.ndarray | None = None,
) -> float:
    """How plausible it is that a still thing is a real object: 1 resting on the support below it, 0.9 hanging
    from a line, 0.3 in the air with nothing holding it (a picture, a pattern), 0 sunk below the support. For
    a thing the description says is held (``held``), hanging from a line is 1, and resting or floating (a hand
    or a holder the picture does not show as a line) 0.6. With the picture's :func:`solid_mask`, what it
    stands on is read without the thing itself (in a single frame a ball on a heater is part of the solid
    tower it tops)."""
    ys, xs = np.nonzero(mask)
    bottom, top, x = float(ys.max()), float(ys.min()), float(xs.mean())
    col = int(min(max(round(x), 0), len(support) - 1))
    below = float(support[col])
    if solid is not None:
        floor = solid.shape[0]
        below = float(floor - _standing_run(solid[:, col] & ~mask[:floor, col]))
    if bottom > max(below, floor_y) + 4:
        return 0.0
    reach = 0.5 * max(float(np.ptp(xs)), 2.0)
    if held:
        return 1.0 if _hanging(frame, x, top, reach, bottom=bottom) else 0.6
    if abs(bottom - below) <= 4:
        return 1.0
    return 0.9 if _hanging(frame, x, top, reach, bottom=bottom) else 0.3


def _candidates(
    frame: np.ndarray,
    names: np.ndarray,
    gradient: np.ndarray,
    mention: Mention,
    taken: np.ndarray,
    circles: list[tuple[float, float, float]],
    support: np.ndarray,
    floor_y: float,
    solid: np.ndarray | None = None,
) -> list[tuple[float, np.ndarray, str, float | None]]:
    """Scored ``(score, mask, shape, radius)`` candidates for a named thing not seen moving, best first.

    With a colour word: the connected regions of pixels of exactly that colour (then of its shading neighbours,
    if none), as a disc for round things (the region's enclosing circle, snapped to a Hough circle that fits
    its edge) or as the region for blocks; grains and fluids are all the regions of that colour together.
    Without one: the Hough circles (round things only). Scores combine colour fit, how the region stands out
    from the band around it (:func:`_novelty`), edge support and physical plausibility (:func:`_plausible`).
    """
    height, width = frame.shape[:2]
    out: list[tuple[float, np.ndarray, str, float | None]] = []
    if mention.colour is None:
        if mention.shape != "round":
            return out
        for cx, cy, r in circles:
            disc = _disc_mask((height, width), cx, cy, r)
            if disc.sum() < MIN_AREA or (disc & taken).sum() > 0.3 * disc.sum():
                continue
            ring = _ring(_disc_mask((height, width), cx, cy, 1.1 * r), max(2, round(0.4 * r)))
            stand_out = min(1.0, _novelty(frame, _disc_mask((height, width), cx, cy, 0.8 * r), ring) / 30.0)
            edges = _edge_support(gradient, cx, cy, r)
            place = _plausible(frame, disc, support, floor_y, mention.held, solid)
            score = 0.5 * (0.3 + 0.35 * stand_out + 0.35 * edges) * place
            out.append((score, disc, "round", r))
        return sorted(out, key=lambda c: -c[0])
    # A shaded or patterned object shows its colour's neighbours too (a white domino's shadowed half is grey),
    # but a colour covering a fifth of the picture is the backdrop, never part of an object.
    share = np.bincount(names.ravel(), minlength=len(COLOURS)) / names.size
    neighbours = {c for c in COLOUR_NEIGHBOURS.get(mention.colour, ()) if share[COLOURS.index(c)] < 0.2}
    exact_index = COLOURS.index(mention.colour)
    passes = (({mention.colour} | neighbours, 1.0), ({mention.colour}, 1.0), (neighbours, 0.6))
    for step, (wanted, fit) in enumerate(passes):
        if not wanted or (step == 1 and not neighbours) or (step == 2 and out):
            continue
        hit = np.isin(names, [COLOURS.index(c) for c in wanted]) & ~taken
        if mention.shape in ("round", "box"):
            hit[int(min(max(floor_y, 0), height)) + 1 :] = False  # what stands on the floor is above it
        hit = cv2.morphologyEx(hit.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
        if mention.shape in ("round", "box"):
            # Cut thin attachments (a string, an arm, a painted line) off the object's region.
            size = 5 if mention.shape == "round" else 3
            hit = cv2.morphologyEx(
                hit, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
            )
        count, comp, stats, _ = cv2.connectedComponentsWithStats(hit, connectivity=8)
        if mention.shape in ("grains", "fluid"):
            # The material is the biggest cluster of bits of its colour above the floor (a pile of beads, a
            # body of liquid), not every pixel of that colour in the room.
            bits = np.isin(comp, [k for k in range(1, count) if stats[k, cv2.CC_STAT_AREA] >= 3])
            bits[int(max(0, min(floor_y, height))) + 1 :] = False
            joined = cv2.dilate(bits.astype(np.uint8), np.ones((5, 5), np.uint8))
            n, clusters, _cstats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
            if n > 1:
                best = 1 + int(np.argmax([(bits & (clusters == k)).sum() for k in range(1, n)]))
                cluster = bits & (clusters == best)
                # Wallpaper stripes, picture frames and plants of a near colour join any body of liquid when
                # dilated; the material is its solid core (what a 7 px disc fits in) and the bits next to it.
                core = _solid_core(bits)
                if core is not None:
                    cluster = bits & cv2.dilate(core.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
                if cluster.sum() >= MIN_AREA:
                    out.append((fit, cluster, mention.shape, None))
                    break
            continue
        for label in range(1, count):
            if stats[label, cv2.CC_STAT_AREA] < MIN_AREA // 2:
                continue
            region = comp == label
            if fit == 1.0 and (names[region] == exact_index).mean() < 0.25:
                continue  # mostly a neighbouring colour: not an object of the named colour
            if mention.shape == "round":
                contours, _ = cv2.findContours(
                    region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
                )
                (cx, cy), r = cv2.minEnclosingCircle(max(contours, key=cv2.contourArea))
                fill = float(region.sum()) / max(math.pi * r * r, 1.0)
                if fill < 0.3 or r < 3.0:
                    continue
                near = [
                    c
                    for c in circles
                    if math.hypot(c[0] - cx, c[1] - cy) < 0.6 * r and 0.7 * r < c[2] < 1.4 * r
                ]
                if near:
                    cx, cy, r = max(near, key=lambda c: _edge_support(gradient, *c))
                mask = _disc_mask((height, width), cx, cy, r)
                ring = _ring(_disc_mask((height, width), cx, cy, 1.1 * r), max(2, round(0.4 * r)))
                inner = _disc_mask((height, width), cx, cy, 0.8 * r)
                shape_fit = min(1.0, fill / 0.6) * (0.5 + 0.5 * _edge_support(gradient, cx, cy, r))
                radius: float | None = r
            else:
                shape_fit, region = _box_fit(region)
                if shape_fit == 0.0:
                    continue
                mask = cv2.morphologyEx(
                    region.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)
                ).astype(bool)
                # The band starts 2 px out: a block's own blurred or shaded rim (and the stub an opening cut
                # off) is not its surroundings.
                ring = _ring(_grown(mask), 3)
                inner = mask
                radius = None
            stand_out = min(1.0, _novelty(frame, inner, ring) / 30.0)
            # Judged on its own pixels: a fitted disc may overhang them.
            place = _plausible(frame, region, support, floor_y, mention.held, solid)
            out.append((fit * shape_fit * (0.4 + 0.6 * stand_out) * place, mask, mention.shape, radius))
    if mention.shape in ("round", "box") and out:
        # What a description names is seldom the smallest thing of its colour in the picture: a dot of the
        # wallpaper or a book on a shelf loses to a block of the same colour and fit.
        largest = max(float(c[1].sum()) for c in out)
        out = [(score * (float(mask.sum()) / largest) ** 0.25, mask, kind, r) for score, mask, kind, r in out]
    return sorted(out, key=lambda c: -c[0])


def perceive(prefix: np.ndarray, text: str = "", fps: float = 8.0) -> Perception:
    """Find the objects of a clip's last frame, the background and the static geometry.

    Args:
        prefix: ``(P, H, W, 3)`` uint8 RGB, the switch frame last (``P == 1``: a single image).
        text: The scene description (or a prompt): the objects it names are looked for even when still.
        fps: Frame rate of the prefix.

    Returns:
        A :class:`Perception`.
    """
    switch = prefix[-1]
    height, width = switch.shape[:2]
    noise = noise_level(prefix)
    found = prefix_motion(prefix, noise)
    background = found.background
    named = mentions(text)
    gradient = _gradient(switch)
    floor_y = detect_floor(background)
    solid_guess = solid_mask(background, floor_y)
    support_guess = support_surface(background, floor_y, solid=solid_guess)
    labels = np.zeros((height, width), np.int32)
    objects: list[Blob] = []
    taken = np.zeros((height, width), bool)

    def add(mask: np.ndarray, shape: str, moving: bool, fitted: float | None = None) -> Blob:
        ys, xs = np.nonzero(mask)
        label = len(objects) + 1
        labels[mask & (labels == 0)] = label
        blob = Blob(
            x=float(xs.mean()),
            y=float(ys.mean()),
            area=int(mask.sum()),
            colour=object_colour(switch[mask]),
            bbox=(int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1),
            label=label,
            shape=shape,
            moving=moving,
            fitted_radius=fitted,
        )
        objects.append(blob)
        taken[_grown(mask)] = True
        return blob

    # 1. Things that moved: components of the moving mask, tools (thin and long) cut off or left out, each
    # completed by the same-coloured region it belongs to (an expanding balloon changes only at its rim).
    names = colour_names(switch)
    moving = found.moving.astype(np.uint8)
    opened = cv2.morphologyEx(moving, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    count, comp, stats, _ = cv2.connectedComponentsWithStats(moving, connectivity=8)
    for label in sorted(range(1, count), key=lambda k: -stats[k, cv2.CC_STAT_AREA]):
        if stats[label, cv2.CC_STAT_AREA] < MIN_AREA:
            continue
        region = comp == label
        core = region & cv2.dilate(opened, np.ones((3, 3), np.uint8)).astype(bool)
        if core.sum() >= MIN_AREA:
            region = core  # a cue or an arm touching the object is not part of it
        elif _thin(region):
            continue
        region = _complete(region, names, taken, floor_y)
        if (region & taken).sum() > 0.5 * region.sum():
            continue
        rest = region & ~taken
        near = np.unique(labels[cv2.dilate(region.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)])
        beside = [objects[k - 1].area for k in near.tolist() if k > 0]
        if beside and rest.sum() < 0.25 * max(beside):
            continue  # a sliver at the rim of a bigger moving thing (its shadow, a highlight) is part of it
        shape, radius = _component_shape(region)
        add(rest, shape, True, radius if shape == "round" else None)
    _merge_fluids(objects, named, labels)
    # 2. Named things not seen moving: shape candidates, best first. Solid things compete for regions
    # together (a white ball among six white dominoes goes to the ball, whose shape it fits better, not to
    # whichever was named first); a liquid or a pile of beads is looked for in what is left, so that its
    # colour cannot swallow a block of a similar colour floating in it.
    assigned = _assign_mentions(objects, named)
    circles: list[tuple[float, float, float]] | None = None
    missing = {k: m.count - assigned.get(k, 0) for k, m in enumerate(named)}
    solids = [k for k, m in enumerate(named) if m.shape not in ("grains", "fluid")]
    materials = [k for k, m in enumerate(named) if m.shape in ("grains", "fluid")]
    for group in (solids, materials):
        pool: list[tuple[float, int, np.ndarray, str, float | None]] = []
        for index in group:
            mention = named[index]
            if missing[index] <= 0:
                continue
            if mention.shape == "round" and circles is None:
                circles = _circle_candidates(
                    switch, max(3, round(0.012 * height)), max(8, round(0.2 * height))
                )
            pool += [
                (score, index, mask, kind, fitted)
                for score, mask, kind, fitted in _candidates(
                    switch,
                    names,
                    gradient,
                    mention,
                    taken,
                    circles or [],
                    support_guess,
                    floor_y,
                    solid_guess,
                )
                if score >= 0.2
            ]
        pool.sort(key=lambda c: -c[0])
        claimed = taken.copy()
        accepted: list[tuple[int, np.ndarray, str, float | None]] = []
        for _score, index, mask, kind, fitted in pool:
            if missing[index] <= 0 or (mask & claimed).sum() > 0.3 * mask.sum():
                continue
            accepted.append((index, mask, kind, fitted))
            claimed |= _grown(mask)
            missing[index] -= 1
        # Added in the description's order (what is simulated, and in what order, does not depend on scores).
        for index, mask, kind, fitted in sorted(accepted, key=lambda a: a[0]):
            blob = add(mask & ~taken if kind != "round" else mask, kind, False, fitted)
            blob.mention = index
    if not text.strip():
        # No description to say what matters: every compact patch of one colour (not a backdrop colour) that
        # stands out clearly from its surroundings is taken for an object.
        share = np.bincount(names.ravel(), minlength=len(COLOURS)) / names.size
        ellipse = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        for colour_index in np.flatnonzero((share > 0) & (share < 0.2)).tolist():
            patch = cv2.morphologyEx(
                ((names == colour_index) & ~taken).astype(np.uint8), cv2.MORPH_OPEN, ellipse
            )
            count, comp, stats, _ = cv2.connectedComponentsWithStats(patch, connectivity=8)
            for label in range(1, count):
                if not MIN_AREA // 2 <= stats[label, cv2.CC_STAT_AREA] <= 0.05 * height * width:
                    continue
                region = comp == label
                kind, radius = _component_shape(region)
                if kind != "blob" and _novelty(switch, region, _ring(region, 3)) >= 40.0:
                    add(region, kind, False, radius if kind == "round" else None)
    _assign_mentions(objects, named)
    _name_objects(objects, named, width)
    # 3. The background without the objects: what the median saw behind moving things, inpainted elsewhere.
    hidden = np.zeros((height, width), bool)
    for blob in objects:
        mask = labels == blob.label
        grown = _grown(mask)
        still_there = float(np.median(_distance(background[mask], switch[mask]))) < found.threshold
        if still_there or not blob.moving:
            hidden |= grown
    if hidden.any():
        background = cv2.inpaint(background, hidden.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    floor_y = detect_floor(background)
    covered = _grown(labels > 0)
    support = support_surface(background, floor_y, unknown=hidden | covered)
    return Perception(objects, labels, background, hidden, floor_y, support, noise, named)


def _complete(region: np.ndarray, names: np.ndarray, taken: np.ndarray, floor_y: float) -> np.ndarray:
    """A hollow moving region (a ring or a crescent: less than 55 % of its bounding box) grown into the
    connected region of its colour word and its shading neighbours around it (not the backdrop's colours),
    when that stays compact (at most 40 times the area, within three times its
    size, above the floor, a round or box shape): the whole object, not only the part that changed."""
    ys, xs = np.nonzero(region)
    if region.sum() >= 0.55 * (np.ptp(xs) + 1) * (np.ptp(ys) + 1):
        return region  # already a solid shape: the object moved as a whole
    colour = COLOURS[int(np.bincount(names[region].ravel()).argmax())]
    share = np.bincount(names.ravel(), minlength=len(COLOURS)) / names.size
    family = [c for c in {colour} | set(COLOUR_NEIGHBOURS.get(colour, ())) if share[COLOURS.index(c)] < 0.2]
    same = np.isin(names, [COLOURS.index(c) for c in family]) & ~taken
    same[int(max(0, min(floor_y, names.shape[0]))) + 1 :] = False
    same = cv2.morphologyEx(same.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)).astype(bool)
    _count, comp = cv2.connectedComponents((same | region).astype(np.uint8), connectivity=8)
    ids = np.unique(comp[region])
    grown = np.isin(comp, ids[ids > 0])
    gy, gx = np.nonzero(grown)
    size = max(float(np.ptp(xs)), float(np.ptp(ys)), 3.0)
    compact = max(float(np.ptp(gx)), float(np.ptp(gy))) <= 3.0 * size and grown.sum() <= 40 * region.sum()
    if compact and _component_shape(grown)[0] != "blob":
        return grown
    return region


def _solid_core(bits: np.ndarray) -> np.ndarray | None:
    """The largest region of ``bits`` a 7 px disc fits in, when it is as big as an object (``MIN_AREA``):
    a body of liquid or a heap of beads, without the thin lines and dots of the same colour around it.

    >>> bits = np.zeros((40, 60), bool)
    >>> bits[25:35, 10:40] = True  # a body of liquid
    >>> bits[:, 50:52] = True  # a stripe of the same colour
    >>> core = _solid_core(bits)
    >>> bool(core[30, 20]), bool(core[:, 50:52].any())
    (True, False)
    """
    solid = cv2.morphologyEx(
        bits.astype(np.uint8), cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    )
    count, comp, stats, _ = cv2.connectedComponentsWithStats(solid, connectivity=8)
    if count < 2:
        return None
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return comp == best if stats[best, cv2.CC_STAT_AREA] >= MIN_AREA else None


def _merge_fluids(objects: list[Blob], named: list[Mention], labels: np.ndarray) -> None:
    """Moving bits of the colour of a named liquid or granular material are that one material (melt water
    running off in drops, beads falling): merge them into the first of them."""
    for index, mention in enumerate(named):
        if mention.shape not in ("grains", "fluid") or mention.colour is None:
            continue
        parts = [b for b in objects if b.moving and colour_match(mention.colour, b.colour) == 1.0]
        if not parts:
            continue
        keep = parts[0]
        for other in parts[1:]:
            labels[labels == other.label] = keep.label
            objects.remove(other)
        ys, xs = np.nonzero(labels == keep.label)
        keep.x, keep.y, keep.area = float(xs.mean()), float(ys.mean()), len(xs)
        keep.bbox = (int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1)
        keep.shape, keep.mention, keep.fitted_radius = mention.shape, index, None


def _shape_fit(wanted: str, blob: Blob) -> float:
    """How well a seen object's shape fits a named shape class: 1 the same, 0 another known shape; for a
    shapeless moving region, by its proportions (a compact region is more likely round)."""
    if blob.shape == wanted:
        return 1.0
    if blob.shape != "blob":
        return 0.0
    _, _, w, h = blob.bbox
    aspect = max(w, h) / max(min(w, h), 1)
    if wanted == "round":
        return 0.6 if aspect <= 1.5 else 0.2
    return 0.4


def _assign_mentions(objects: list[Blob], named: list[Mention]) -> dict[int, int]:
    """Give moving objects the mention that fits them best (colour, then shape); returns mention -> count."""
    used: dict[int, int] = {}
    for blob in objects:
        if blob.mention >= 0:
            used[blob.mention] = used.get(blob.mention, 0) + 1
    for blob in objects:
        if blob.mention >= 0:
            continue
        best, best_fit = -1, 0.0
        for index, mention in enumerate(named):
            if used.get(index, 0) >= mention.count:
                continue
            fit = colour_match(mention.colour, blob.colour) + _shape_fit(mention.shape, blob)
            if fit > best_fit:
                best, best_fit = index, fit
        if best >= 0 and best_fit >= 0.8:
            blob.mention = best
            used[best] = used.get(best, 0) + 1
    for blob in objects:
        if blob.mention >= 0:
            mention = named[blob.mention]
            blob.noun, blob.bounce = mention.noun, mention.bounce
            if mention.colour is not None:
                # The description's word for it, even where the pixels say otherwise (pale blue "white" ice, a
                # "silver" ball in shadow): a VLM calls a thing what the description calls it, and a sentence
                # that names it by its seen colour would read as another thing to whoever reads it back.
                blob.colour = mention.colour
            if mention.shape in ("grains", "fluid"):
                blob.shape = mention.shape
        elif blob.shape in ("round", "box"):
            blob.noun = "ball" if blob.shape == "round" else "block"
    return used


def _name_objects(objects: list[Blob], named: list[Mention], width: int) -> None:
    """``"the white ball"``; where two share colour and noun, their place tells them apart."""
    groups: dict[tuple[str, str], list[Blob]] = {}
    for blob in objects:
        groups.setdefault((blob.colour, blob.noun), []).append(blob)
    for (colour, noun), group in groups.items():
        base = f"the {colour} {noun}"
        if len(group) == 1:
            group[0].name = base
            continue
        ordered = sorted(group, key=lambda b: b.x)
        if len(ordered) == 2:
            ordered[0].name, ordered[1].name = f"{base} on the left", f"{base} on the right"
            continue
        ordinals = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth")
        for k, blob in enumerate(ordered):
            ordinal = ordinals[k] if k < len(ordinals) else f"number {k + 1}"
            blob.name = f"the {ordinal} {colour} {noun} from the left"


def refers(sentence: str, blob: Blob) -> bool:
    """Whether a sentence names this object: its noun (any number) with its colour word or a synonym (or no
    colour word at all), and its place when its name has one and the sentence gives a place.

    >>> ball = Blob(10, 10, 80, "grey", (5, 5, 10, 10), 1, "round", "ball", "the grey ball on the left")
    >>> refers("The silver ball on the left falls.", ball), refers("The red ball falls.", ball)
    (True, False)
    >>> refers("The grey ball on the right falls.", ball), refers("Both balls fall.", ball)
    (False, True)
    """
    low = sentence.lower()
    nouns = {blob.noun, SINGULAR.get(blob.noun, blob.noun)}
    if not any(re.search(rf"\b{re.escape(n)}(?:e?s)?\b", low) for n in nouns):
        return False
    said = {colour_word(w) for w in words(low)} - {None}
    if said and blob.colour not in said:
        return False
    for place in ("on the left", "on the right"):
        other = "on the right" if place == "on the left" else "on the left"
        if place in blob.name and other in low and place not in low:
            return False
    return True


def tether(frame: np.ndarray, blob: Blob, min_length: float | None = None) -> tuple[float, float] | None:
    """The fixed end of a straight thin line (a rod, a cord, a string) that holds an object from above, or
    ``None``: the pivot it swings about once it is let go.

    Rays are cast upwards from the object's edge every 3 degrees; along each, a pixel is "line" when it differs
    from the pixels 3 px to both sides of the ray (a thin structure, not a wall or a stripe seen edge-on) and
    keeps about the colour the line had so far or stays darker (or brighter) than both sides as it was (a thin
    cord takes on the colours it crosses, but stays the dark line on them). The longest run (at least
    ``min_length``, default 3 radii, short gaps bridged) wins; its far end is the pivot.

    >>> img = np.full((120, 160, 3), 200, np.uint8)
    >>> _ = cv2.line(img, (40, 10), (80, 80), (30, 30, 30), 2)
    >>> _ = cv2.circle(img, (84, 86), 8, (200, 40, 40), -1)
    >>> ball = Blob(84.0, 86.0, 200, "red", (76, 78, 17, 17), 1, "round", fitted_radius=8.0)
    >>> [round(v) for v in tether(img, ball)]
    [39, 10]
    """
    height, width = frame.shape[:2]
    image = frame.astype(np.float32)
    r = blob.radius
    need = 3.0 * r if min_length is None else min_length

    def follow(degrees: float) -> tuple[int, tuple[float, float] | None]:
        theta = math.radians(degrees)
        ux, uy = math.cos(theta), math.sin(theta)
        nx, ny = -uy, ux
        run = gaps = 0
        end: tuple[float, float] | None = None
        colour: np.ndarray | None = None
        polarity = 0  # -1: the line is darker than both sides, +1: brighter (0: not known yet)
        d = r + 1.5
        start = r + max(4.0, 1.2 * r)
        while gaps <= 3:
            px, py = blob.x + ux * d, blob.y + uy * d
            ax, ay, bx, by = px + 3 * nx, py + 3 * ny, px - 3 * nx, py - 3 * ny
            inside = min(px, ax, bx) >= 0 and max(px, ax, bx) < width - 1
            if not (inside and min(py, ay, by) >= 0 and max(py, ay, by) < height - 1):
                break
            side_a, side_b = image[round(ay), round(ax)], image[round(by), round(bx)]
            # A line one pixel wide crosses a ray a few degrees off it now and then: look one pixel to each side.
            offsets = (0, -1, 1)
            near = [image[round(py + o * ny), round(px + o * nx)] for o in offsets]
            contrasts = [min(np.linalg.norm(c - side_a), np.linalg.norm(c - side_b)) for c in near]
            best = int(np.argmax(contrasts))
            here, contrast, off = near[best], contrasts[best], offsets[best]
            level, sides = float(here.mean()), (float(side_a.mean()), float(side_b.mean()))
            sign = -1 if level < min(sides) - 10 else 1 if level > max(sides) + 10 else 0
            is_line = bool(contrast > 30)
            same_colour = colour is None or np.linalg.norm(here - colour) <= 60
            same_side = polarity != 0 and sign == polarity
            if is_line and not (same_colour or same_side):
                is_line = False
                if d <= start:
                    # What began at the object was its glow or its shading's edge, not the line: start again.
                    colour, polarity, run, gaps, is_line = None, 0, 0, 0, True
            if is_line:
                colour = here if colour is None else 0.8 * colour + 0.2 * here
                polarity = sign if polarity == 0 else polarity
                run += 1 + gaps
                gaps = 0
                end = (px + off * nx, py + off * ny)
            elif run == 0 and d > start:
                break  # the line must start at the object (or just past the glow a lamp has around it)
            else:
                gaps += 1
            d += 1.0
        return run, end

    coarse = max(range(-177, -2, 3), key=lambda a: follow(a)[0])
    # A thin line far from the object drifts off a ray a few degrees wrong: refine around the best.
    fine = max((coarse + k * 0.25 for k in range(-12, 13)), key=lambda a: follow(a)[0])
    run, end = follow(fine)
    return end if end is not None and run >= need else None


_RELEASE_WORDS = re.compile(
    r"\b(?:lets? go|let go|released?|releases|releasing|drops?(?! of)|dropped|opens?|opened|slides? away)\b",
    re.I,
)


def released(text: str, objects: list[Blob]) -> set[int]:
    """Indices of the objects a text says are let go: those named in a sentence that announces a release
    ("The grabbers let go of both balls", "The bob is let go"), or, when such a sentence names none of them
    ("The grabber opens"), every named object.

    >>> a = Blob(10, 10, 80, "white", (5, 5, 10, 10), 1, "round", "lamp", "the white lamp", mention=0)
    >>> b = Blob(30, 10, 80, "black", (25, 5, 10, 10), 2, "round", "ball", "the black ball", mention=1)
    >>> sorted(released("A white lamp and a black ball hang on cords. The lamp is let go and swings.", [a, b]))
    [0]
    >>> sorted(released("The grabbers let go of both balls.", [b])), sorted(released("The gate opens.", [a, b]))
    ([0], [0, 1])
    >>> sorted(released("The lamp is let go.", [b]))  # the lamp was not found: the ball stays
    []
    """
    out: set[int] = set()
    for sentence in re.split(r"(?<=[.!?;])\s+", text):
        if not _RELEASE_WORDS.search(sentence):
            continue
        named = {k for k, blob in enumerate(objects) if refers(sentence, blob)}
        if not named and not any(w in OBJECT_NOUNS for w in words(sentence)):
            # "The grabber opens": it names no thing, so everything named in the scene is let go. (A sentence
            # that names a thing not found in the picture lets nothing else go.)
            named = {k for k, blob in enumerate(objects) if blob.mention >= 0}
        out |= named
    return out


# A tool or a hand sets a thing moving ("A cue stick pushes the white ball to the right towards the black
# ball", "A stick hits the tennis ball, which rolls towards the block"). A thing hitting a thing is a
# collision the simulation plays out, not a push: those sentences are left alone.
_PUSH_WORDS = re.compile(
    r"\b(?:push(?:es|ed)?|shoves?|shoved|nudges?|nudged|hits?|strikes?|struck|kicks?|kicked|knocks?|knocked|"
    r"flicks?|flicked|taps?|tapped|launch(?:es|ed)?|sends?|sent|rolls?)\b",
    re.I,
)
_GOAL = re.compile(r"\b(?:towards?|into|onto|at|against)\b", re.I)
_OBJECT_END = re.compile(r"\b(?:towards?|into|onto|at|against|which|so|and|until|over|off)\b|[,;]", re.I)
_PASSIVE = re.compile(r"\b(?:is|are|was|were|gets?|got|being)\s+$", re.I)
_CLAUSE = re.compile(r",|;|\band\b|\bwhile\b|\bthen\b", re.I)
# What the object is called, and everything after it, once a sentence turns to what it moves towards or hits.
_NOT_SUBJECT = re.compile(
    r"\b(?:towards?|into|onto|against|until|unless|reaches|reaching|hits|hitting|strikes|striking|past)\b",
    re.I,
)


def subjects(sentence: str, objects: list[Blob]) -> list[int]:
    """Indices of the objects a sentence is about: those it names before it turns to what they move towards
    or hit ("The white ball rolls to the right towards the black ball" is about the white ball).

    >>> a = Blob(10, 10, 80, "white", (5, 5, 10, 10), 1, "round", "ball", "the white ball")
    >>> b = Blob(60, 10, 80, "black", (55, 5, 10, 10), 2, "round", "ball", "the black ball")
    >>> subjects("The white ball rolls to the right towards the black ball.", [b, a])
    [1]
    >>> subjects("Both balls fall.", [a, b]), subjects("The black ball stays until it is hit.", [a, b])
    ([0, 1], [1])
    """
    named = [k for k, blob in enumerate(objects) if refers(sentence, blob)]
    if len(named) < 2:
        return named
    cut = _NOT_SUBJECT.search(sentence)
    if cut is not None:
        head = [k for k in named if refers(sentence[: cut.start()], objects[k])]
        if head:
            return head
    return named


@dataclass(frozen=True)
class Push:
    """A thing the description says is set moving by a tool or a hand.

    Attributes:
        heading: ``"right"``, ``"left"``, ``"up"`` or ``"down"`` (image axes).
        target: Index of the object it is sent towards, or -1.
    """

    heading: str
    target: int = -1


def pushed(text: str, objects: list[Blob]) -> dict[int, Push]:
    """The objects a description says a tool or a hand pushes, hits or sends somewhere, with the way they go
    (said, or towards what they are sent to) and what they are sent towards.

    >>> a = Blob(10, 10, 80, "white", (5, 5, 10, 10), 1, "round", "ball", "the white ball", mention=0)
    >>> b = Blob(60, 10, 80, "black", (55, 5, 10, 10), 2, "round", "ball", "the black ball", mention=1)
    >>> pushed("A white ball and a black ball rest on a table. A cue stick pushes the white ball to the "
    ...        "right towards the black ball.", [a, b])
    {0: Push(heading='right', target=1)}
    >>> pushed("A stick hits the black ball, which rolls towards the white ball.", [a, b])
    {1: Push(heading='left', target=0)}
    >>> pushed("A white ball rests on a shelf, and a cue stick pushes it to the left.", [a, b])
    {0: Push(heading='left', target=-1)}
    >>> pushed("The white ball rolls into the black ball and hits it.", [a, b])  # a collision, not a push
    {}
    """
    out: dict[int, Push] = {}
    previous: list[int] = []
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        named_here = [k for k, blob in enumerate(objects) if refers(sentence, blob)]
        for match in _PUSH_WORDS.finditer(sentence):
            before, after = sentence[: match.start()], sentence[match.end() :]
            clause = _CLAUSE.split(before)[-1]
            if not clause.strip():  # "... and hits it": the sentence's subject does it
                clause = before
            if _PASSIVE.search(before):
                moved = [k for k, blob in enumerate(objects) if refers(clause, blob)]
                rest = after
            else:
                agent = set(words(clause))
                if agent & set(OBJECT_NOUNS) and not agent & TOOL_NOUNS:
                    continue  # a thing hitting a thing
                if match.group(0).lower().startswith("roll") and not agent & TOOL_NOUNS:
                    continue  # "the ball rolls": intransitive, not a push
                end = _OBJECT_END.search(after)
                part = after[: end.start()] if end else after
                moved = [k for k, blob in enumerate(objects) if refers(part, blob)]
                if not moved and re.match(r"\s*(?:it|them)\b", part, re.I):
                    moved = [k for k, blob in enumerate(objects) if refers(before, blob)] or previous
                rest = after[end.start() :] if end else ""
            if len(moved) != 1:
                continue
            k = moved[0]
            goal = _GOAL.search(rest)
            targets = []
            if goal is not None:
                targets = [j for j, blob in enumerate(objects) if j != k and refers(rest[goal.end() :], blob)]
            offset = len(after) - len(rest)
            heading = direction(after[: offset + goal.start()] if goal else after.split(",")[0])
            target = -1
            if targets:
                if heading in ("right", "left"):
                    sign = 1.0 if heading == "right" else -1.0
                    ahead = [j for j in targets if (objects[j].x - objects[k].x) * sign > 0] or targets
                else:
                    ahead = targets
                target = min(ahead, key=lambda j: abs(objects[j].x - objects[k].x))
                if heading is None:
                    heading = "right" if objects[target].x > objects[k].x else "left"
            if heading is not None:
                out[k] = Push(heading, target)
        if named_here:
            previous = named_here
    return out


def detect_objects(frame: np.ndarray, text: str = "") -> tuple[list[Blob], np.ndarray]:
    """The objects of one image that ``text`` names, with the label image (see :func:`perceive`).

    >>> img = np.full((90, 160, 3), (200, 190, 170), np.uint8); img[70:] = (120, 90, 60)
    >>> _ = cv2.circle(img, (60, 60), 9, (40, 40, 44), -1)
    >>> blobs, labels = detect_objects(img, "A black ball rests on a wooden table.")
    >>> [(b.name, round(b.x), round(b.y)) for b in blobs]
    [('the black ball', 60, 60)]
    """
    perception = perceive(frame[None], text)
    return perception.objects, perception.labels


# ---------------------------------------------------------------------------------------------- tracking


@dataclass
class Track:
    """One object followed through a clip.

    Attributes:
        name: The object's name (``"the white ball"``).
        colour: Colour word.
        xy: ``(T, 2)`` centroid per frame, NaN where the object was not found.
        radius: Its radius (px).
        bottoms: ``(T,)`` its lowest point per frame as found (a block lying down reaches less far below its
            centre than standing), or ``None``: the centroid plus ``radius``.
    """

    name: str
    colour: str
    xy: np.ndarray
    radius: float
    bottoms: np.ndarray | None = None

    @property
    def seen(self) -> np.ndarray:
        """Boolean ``(T,)``: frames where the object was found."""
        return ~np.isnan(self.xy[:, 0])


def track_name(index: int, blob: Blob) -> str:
    """The name of the track that follows reference blob ``index`` (the blob's name)."""
    return blob.name or f"object {index + 1} ({blob.colour})"


@dataclass(frozen=True)
class _Template:
    pixels: np.ndarray  # (h, w, 3) float32
    mask: np.ndarray  # (h, w) float32 0/1
    dx: float  # template origin relative to the centroid
    dy: float
    vanish_cost: float  # mean squared difference if the object were replaced by the background


def _template(frame: np.ndarray, mask: np.ndarray, blob: Blob, background: np.ndarray | None) -> _Template:
    x0, y0, w, h = blob.bbox
    pad = 1
    xa, ya = max(0, x0 - pad), max(0, y0 - pad)
    xb, yb = min(frame.shape[1], x0 + w + pad), min(frame.shape[0], y0 + h + pad)
    sub = mask[ya:yb, xa:xb].astype(np.float32)
    pixels = frame[ya:yb, xa:xb].astype(np.float32)
    if background is not None:
        diff = pixels - background[ya:yb, xa:xb].astype(np.float32)
        vanish = float(((diff * diff).sum(axis=-1) * sub).sum() / max(sub.sum(), 1.0))
    else:
        vanish = 3 * 40.0**2
    return _Template(pixels, sub, xa - blob.x, ya - blob.y, max(vanish, 3 * 12.0**2))


def _turned(templ: _Template, degrees: float) -> _Template:
    """The template of the object turned by ``degrees`` (counter-clockwise on screen) about its centroid.

    >>> t = _Template(np.zeros((4, 10, 3), np.float32), np.ones((4, 10), np.float32), -5.0, -2.0, 100.0)
    >>> turned = _turned(t, 90)
    >>> turned.mask.shape, round(-turned.dx), round(-turned.dy)
    ((10, 4), 2, 5)
    """
    h, w = templ.mask.shape
    centre = (-templ.dx, -templ.dy)
    rotation = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64) @ rotation.T
    lo, hi = np.floor(corners.min(axis=0) + 1e-6), np.ceil(corners.max(axis=0) - 1e-6)
    rotation[:, 2] -= lo
    size = (int(hi[0] - lo[0]), int(hi[1] - lo[1]))
    pixels = cv2.warpAffine(templ.pixels, rotation, size, flags=cv2.INTER_LINEAR)
    mask = (cv2.warpAffine(templ.mask, rotation, size, flags=cv2.INTER_LINEAR) > 0.5).astype(np.float32)
    cx, cy = rotation @ np.array([centre[0], centre[1], 1.0])
    return _Template(pixels, mask, -float(cx), -float(cy), templ.vanish_cost)


def _match(
    frame: np.ndarray,
    templ: _Template,
    mask3: np.ndarray,
    n_mask: float,
    predicted: np.ndarray,
    reach: float,
    accept: float = 0.35,
) -> np.ndarray | None:
    """Where the template matches best within ``reach`` of ``predicted`` (centroid px), or ``None`` when the
    best masked squared difference is above ``accept`` times the cost of the object having vanished."""
    height, width = frame.shape[:2]
    h, w = templ.mask.shape
    cx, cy = predicted + np.array([templ.dx, templ.dy])
    xa = int(max(0, math.floor(cx - reach)))
    ya = int(max(0, math.floor(cy - reach)))
    xb = int(min(width, math.ceil(cx + w + reach)))
    yb = int(min(height, math.ceil(cy + h + reach)))
    if xb - xa < w or yb - ya < h:
        return None
    window = frame[ya:yb, xa:xb].astype(np.float32)
    cost = cv2.matchTemplate(window, templ.pixels, cv2.TM_SQDIFF, mask=mask3) / n_mask
    oy, ox = np.mgrid[0 : cost.shape[0], 0 : cost.shape[1]]
    dist2 = (xa + ox - cx) ** 2 + (ya + oy - cy) ** 2
    # The motion prior: a match far from the prediction must be clearly better to win.
    total = cost * (1.0 + dist2 / (reach * reach))
    my, mx = divmod(int(np.argmin(total)), cost.shape[1])
    if cost[my, mx] > accept * templ.vanish_cost:
        return None
    return np.array([xa + mx - templ.dx, ya + my - templ.dy])


def track_objects(
    frames: np.ndarray,
    reference: list[Blob] | None = None,
    labels: np.ndarray | None = None,
    background: np.ndarray | None = None,
    fps: float = 8.0,
) -> list[Track]:
    """Follow objects through a clip whose frame 0 shows them as ``reference`` (with its ``labels``).

    Each object's frame-0 appearance (pixels under its mask) is matched in every frame (masked squared
    difference) inside a window around where a constant-acceleration prior puts it; the match must be much
    closer to the object than the background there is (else: not found, NaN). Without a reference, the
    objects are those :func:`perceive` finds in frame 0 with no description (only what moves... nothing in one
    frame), so callers should pass one.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB; frame 0 shows the reference objects.
        reference: The objects (e.g. :attr:`Perception.objects` of the switch frame).
        labels: Their label image (required with ``reference``).
        background: The scene without the objects (sharpens the found/not-found decision).
        fps: Frame rate (for the motion prior).
    """
    if reference is None or labels is None:
        perception = perceive(frames[:1])
        reference, labels = perception.objects, perception.labels
        background = perception.background if background is None else background
    height, width = frames.shape[1:3]
    tracks = []
    for index, blob in enumerate(reference):
        mask = labels == blob.label
        if not mask.any():
            continue
        upright = _template(frames[0], mask, blob, background)
        # A block or a domino that tips over is the same object lying down: it is looked for turned as well.
        poses = [upright]
        if blob.shape == "box":
            poses += [_turned(upright, a) for a in (-90, 90, -45, 45)]
        looks = [(p, np.repeat(p.mask[..., None], 3, axis=2), max(float(p.mask.sum()), 1.0)) for p in poses]
        below = [p.dy + float(np.nonzero(p.mask.any(axis=1))[0].max()) + 0.5 for p in poses]
        xy = np.full((len(frames), 2), np.nan)
        xy[0] = (blob.x, blob.y)
        # The track's radius is what reaches down to a support: half the height of a block.
        reach_down = blob.radius if blob.shape == "round" else blob.bbox[3] / 2.0
        bottoms = np.full(len(frames), np.nan)
        bottoms[0] = blob.y + reach_down
        last = np.array([blob.x, blob.y])
        velocity = np.zeros(2)
        misses = 0
        pose = 0
        for t in range(1, len(frames)):
            predicted = last + velocity * (1 + misses)
            # A bounce reverses the velocity: the window reaches a little beyond twice a frame's travel.
            reach = 3 * blob.radius + 1.2 * float(np.hypot(*velocity)) + 12.0 + 10.0 * misses
            found_at = None
            for k in (pose, *(k for k in range(len(looks)) if k != pose)):
                found_at = _match(frames[t], *looks[k], predicted, reach)
                if found_at is not None:
                    pose = k
                    break
            if found_at is None:
                # Lost near the prediction (a collision, a fast fall): look in the whole frame, where only a
                # clearly good match counts.
                templ, mask3, n_mask = looks[pose]
                found_at = _match(frames[t], templ, mask3, n_mask, predicted, float(max(width, height)), 0.2)
            if found_at is None:
                misses += 1
                continue
            position = found_at
            xy[t] = position
            bottoms[t] = position[1] + below[pose]
            velocity = (position - last) / (1 + misses)
            last = position
            misses = 0
        tracks.append(
            Track(
                name=track_name(index, blob),
                colour=blob.colour,
                xy=xy,
                radius=reach_down,
                bottoms=bottoms if blob.shape == "box" else None,
            )
        )
    return tracks


# ---------------------------------------------------------------------------------------------- mirror images


def mirror_images(blobs: list[Blob], floor_y: float) -> dict[int, int]:
    """``{image index: object index}`` for the blobs that are mirror images of another blob in the ground
    surface (a glossy table).

    A blob below the ground line is a reflection when a blob of its colour stands above the line at the same
    column and the line lies halfway between them: a solid object cannot be below the surface it rests on,
    and a planar mirror puts the image as far below the surface as the object is above it.

    >>> ball = Blob(94.0, 72.0, 300, "red", (84, 62, 20, 20), 1)
    >>> image = Blob(94.0, 176.0, 110, "red", (88, 170, 12, 12), 2)
    >>> mirror_images([ball, image], floor_y=126.0), mirror_images([ball, image], floor_y=150.0)
    ({1: 0}, {})
    """
    images: dict[int, int] = {}
    for j, low in enumerate(blobs):
        if low.y <= floor_y:
            continue
        for i, high in enumerate(blobs):
            if high is low or high.y >= floor_y:
                continue
            if colour_match(high.colour, low.colour) == 0.0:
                continue
            # Tolerances: half a radius sideways (centroids of a partly hidden image shift), and a radius
            # (at least 6 px) for the mirror line, which the floor detector finds to within a few pixels.
            same_column = abs(high.x - low.x) <= max(3.0, 0.5 * high.radius)
            halfway = abs((high.y + low.y) / 2 - floor_y) <= max(6.0, high.radius)
            if same_column and halfway:
                images[j] = i
                break
    return images


# ---------------------------------------------------------------------------------------------- static geometry


def detect_floor(frame: np.ndarray) -> float:
    """Row of the ground line: the top of the strongest band of long horizontal edges in the lower 60 %.

    "Long" is measured by the median over columns of the vertical colour change, so a shelf, a picture frame
    or a prop (edges across part of the width) do not count. A patterned table front or tablecloth repeats
    such edges every few pixels below the table top: edges less than 8 px apart form one band, and the band's
    top is the ground line. Falls back to the bottom row without a clear edge.

    >>> img = np.full((50, 20, 3), 200, np.uint8); img[40:] = 60
    >>> detect_floor(img)
    40.0
    >>> img[42::4] = 160  # a striped table front below the edge
    >>> detect_floor(img)
    40.0
    """
    lab = cv2.cvtColor(frame, cv2.COLOR_RGB2LAB).astype(np.float32)
    height = frame.shape[0]
    # Change between the rows either side of a row boundary (an anti-aliased edge spreads over two rows).
    jump = np.abs(lab[2:] - lab[:-2]).max(axis=2)
    strength = np.median(jump, axis=1)  # strength[k]: the boundary above row k + 1
    start = int(height * 0.4)
    part = strength[start:]
    if part.size == 0 or part.max() < 8.0:  # 8 Lab units: a clearly visible edge, above texture noise
        return float(height)
    strong = np.flatnonzero(part >= max(8.0, 0.25 * float(part.max())))
    bands: list[list[int]] = [[int(strong[0])]]
    for k in strong[1:]:
        if k - bands[-1][-1] < 8:
            bands[-1].append(int(k))
        else:
            bands.append([int(k)])
    best = max(bands, key=lambda band: float(part[band].max()))
    # The band's first edge: its difference peaks over one or two boundary indices (k, k + 1) of rows
    # k .. k + 2; the first row below the edge is the plateau's middle + 1.5.
    first = last = best[0]
    while last + 1 < len(part) and part[last + 1] >= part[last]:
        if part[last + 1] > part[last]:
            first = last + 1
        last += 1
    return float(start + math.floor((first + last) / 2 + 1.5))


def solid_mask(background: np.ndarray, floor_y: float) -> np.ndarray:
    """``(floor, W)`` bool: what differs clearly in colour (CIELAB distance) from every main colour of the
    backdrop, above the ground line (see :func:`support_surface`)."""
    height, width = background.shape[:2]
    floor = round(min(max(floor_y, 1.0), float(height)))
    top_rows = max(4, int(0.3 * floor))
    if floor <= top_rows + 2:
        return np.zeros((floor, width), bool)
    lab = cv2.cvtColor(background, cv2.COLOR_RGB2LAB).astype(np.float32)
    sample = lab[:top_rows].reshape(-1, 3)
    k = min(6, max(1, len(sample) // 50))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    picked = np.ascontiguousarray(sample[:: max(1, len(sample) // 4000)])
    # k-means++ seeds from OpenCV's per-thread RNG, whose state depends on what the thread ran before: seeded
    # here, the backdrop's colours (and every support found from them) are the same on every call and thread.
    cv2.setRNGSeed(0)
    _, assignment, centres = cv2.kmeans(picked, k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    # The backdrop's main colours: clusters covering at least 8 % of the band and found across most of its
    # width, in at least 6 of 10 vertical slices (a patterned wall has a few, repeated from edge to edge; a
    # picture or a poster in the band covers a stretch of it, and a ramp of the poster's colour is solid).
    share = np.bincount(assignment.ravel(), minlength=k) / max(len(picked), 1)
    nearest = np.argmin(np.linalg.norm(lab[:top_rows, :, None, :] - centres[None, None], axis=-1), axis=-1)
    slices = np.array_split(np.arange(width), 10)
    across = np.array([sum((nearest[:, cols] == c).mean() >= 0.02 for cols in slices) for c in range(k)])
    backdrop = (share >= 0.08) & (across >= 6)
    if not backdrop.any():
        backdrop = share >= share.max()
    # The backdrop's own texture (its pixels' distance to their colour) sets the bar; 14 CIELAB units is a
    # clearly visible colour difference.
    spread = np.linalg.norm(lab[:top_rows] - centres[nearest], axis=-1)[backdrop[nearest]]
    centres = centres[backdrop]
    dist = np.min(np.linalg.norm(lab[:floor, :, None, :] - centres[None, None], axis=-1), axis=-1)
    # A flat, noiseless backdrop (a rendered clip) can leave no pixel of the backdrop's clusters: no texture.
    threshold = max(14.0, 3.0 * float(np.percentile(spread, 75)) if spread.size else 0.0)
    solid = (dist > threshold).astype(np.uint8)
    solid = cv2.morphologyEx(solid, cv2.MORPH_OPEN, np.ones((1, 7), np.uint8))
    return cv2.morphologyEx(solid, cv2.MORPH_OPEN, np.ones((3, 1), np.uint8)).astype(bool)


def _standing_run(column: np.ndarray) -> int:
    """Rows of solid standing on the ground in one column of a solid mask (the ground line last): from the
    ground upwards until the first non-solid row (a gap of up to 2 rows right at the ground line is the
    antialiased edge, not air); 0 for a bump of 1-2 rows (codec noise on the ground line)."""
    above = column[::-1]  # row 0 = the row just above the floor
    if not above[:3].any():
        return 0
    start = int(np.argmax(above[:3]))
    gap = np.flatnonzero(~above[start:])
    run = start + (int(gap[0]) if gap.size else above.size - start)
    return run if run >= 3 else 0


def support_surface(
    background: np.ndarray,
    floor_y: float,
    unknown: np.ndarray | None = None,
    solid: np.ndarray | None = None,
) -> np.ndarray:
    """Per column, the row where a falling object would land: the top of the static solid standing on the
    ground line (a ramp, a step, a post), or the ground line itself where nothing stands on it.

    "Solid" is what differs clearly in colour (CIELAB distance) from every main colour of the backdrop (the
    top 30 % of the space above the ground, clustered: a patterned wall has several, repeated across its
    width; a poster is not one of them), read from that band; thin vertical structures (grabber arms,
    strings: under 7 px wide) are not solid. ``solid`` passes :func:`solid_mask` when it is already known.
    ``unknown`` marks pixels that were not seen (objects inpainted away): a column whose solid top touches
    them takes its height from the neighbouring columns, interpolated across gentle slopes (a ball resting on
    a ramp) and held from the nearer side across cliffs (a ball at the edge of a block).

    >>> img = np.full((60, 40, 3), 60, np.uint8); img[50:] = 170                 # backdrop, floor at row 50
    >>> img[30:50, 30:] = 200; img[10:50, 5:8] = 200                            # a step, and a thin pole
    >>> surface = support_surface(img, floor_y=50.0)
    >>> float(surface[20]), float(surface[35]), float(surface[6])
    (50.0, 30.0, 50.0)
    """
    height, width = background.shape[:2]
    floor = round(min(max(floor_y, 1.0), float(height)))
    if solid is None:
        solid = solid_mask(background, floor_y)
    surface = np.full(width, float(floor))
    for x in range(width):
        surface[x] = floor - _standing_run(solid[:, x])
    if unknown is not None and unknown.any():
        hidden = np.zeros(width, bool)
        for col in range(width):
            top = int(surface[col])
            hidden[col] = unknown[max(0, top - 3) : floor, col].any()
        surface = _fill_hidden(surface, hidden)
    return surface


def _fill_hidden(surface: np.ndarray, hidden: np.ndarray, reach: int = 6) -> np.ndarray:
    """Heights of hidden column runs from their neighbours: a straight line across the run where the surface
    on both sides continues that line (a slope or a flat top running under an object, within 0.25 px/px over
    ``reach`` columns), otherwise each half held from its own side (an edge: a ball at the brink of a block).

    >>> ramp = np.arange(20.0); ramp[8:12] = 0.0
    >>> _fill_hidden(ramp, np.arange(20) // 4 == 2)[7:13].tolist()
    [7.0, 8.0, 9.0, 10.0, 11.0, 12.0]
    >>> step = np.array([5.0] * 10 + [9.0] * 10)
    >>> _fill_hidden(step, np.isin(np.arange(20), [9, 10]))[7:13].tolist()   # hidden at the brink
    [5.0, 5.0, 5.0, 9.0, 9.0, 9.0]
    """
    out = surface.copy()
    width = len(surface)
    x = 0
    while x < width:
        if not hidden[x]:
            x += 1
            continue
        stop = x
        while stop < width and hidden[stop]:
            stop += 1
        if x == 0 and stop == width:
            return out
        if x == 0 or stop == width:
            out[x:stop] = surface[stop] if x == 0 else surface[x - 1]
            x = stop
            continue
        left, right = surface[x - 1], surface[stop]
        across = (right - left) / (stop - x + 1)
        left_slope = (left - surface[max(0, x - 1 - reach)]) / max(1, min(reach, x - 1))
        right_slope = (surface[min(width - 1, stop + reach)] - right) / max(1, min(reach, width - 1 - stop))
        if abs(left_slope - across) <= 0.25 and abs(right_slope - across) <= 0.25:
            out[x:stop] = np.interp(np.arange(x, stop), [x - 1, stop], [left, right])
        else:
            middle = (x + stop) // 2
            out[x:middle], out[middle:stop] = left, right
        x = stop
    return out


# ---------------------------------------------------------------------------------------------- measurements


@dataclass(frozen=True)
class Segment:
    """A free-flight stretch of a track (between bounces), fitted with a parabola in y.

    Attributes:
        start: First frame index.
        stop: One past the last frame index.
        accel: Vertical acceleration (px/s², positive = downwards).
    """

    start: int
    stop: int
    accel: float


@dataclass
class ObjectMotion:
    """Measured motion of one track.

    Attributes:
        name: Track name (the object's name).
        colour: Colour word.
        velocity: ``(vx, vy)`` at the last seen frame (px/s), from a local fit.
        start_velocity: ``(vx, vy)`` at the first frames (px/s).
        gravity: Vertical acceleration in free flight (px/s²), ``None`` if no flight was seen.
        bounces: Frame indices of bounces (vertical velocity flipping from down to up).
        restitution: Mean ratio of rebound to impact vertical speed, ``None`` without a bounce.
        vanished_at: First frame of a run of >= 2 frames where the object is missing, or ``None``.
        stopped_at: First frame after which the object stays still, or ``None``.
        lowest_y: Lowest point reached (largest y + radius), px.
        speed_change: Relative change of horizontal speed per second (negative = slowing), ``None`` if not
            measurable.
        positions: Centroid per frame (gaps filled by interpolation).
    """

    name: str
    colour: str
    velocity: tuple[float, float]
    start_velocity: tuple[float, float]
    gravity: float | None
    bounces: list[int]
    restitution: float | None
    vanished_at: int | None
    stopped_at: int | None
    lowest_y: float
    speed_change: float | None
    positions: list[tuple[float, float]] = field(default_factory=list)
    seen: list[bool] = field(default_factory=list)


def _fill(values: np.ndarray) -> np.ndarray:
    idx = np.arange(len(values))
    good = ~np.isnan(values)
    if good.sum() == 0:
        return values
    return np.interp(idx, idx[good], values[good])


def fit_velocity(xy: np.ndarray, fps: float, at_end: bool, n: int = 3) -> tuple[float, float]:
    """Velocity ``(vx, vy)`` px/s from a straight-line fit to the first or last ``n`` seen positions."""
    part = xy[-n:] if at_end else xy[:n]
    part = part[~np.isnan(part[:, 0])]
    if len(part) < 2:
        return (0.0, 0.0)
    t = np.arange(len(part)) / fps
    vx = float(np.polyfit(t, part[:, 0], 1)[0])
    vy = float(np.polyfit(t, part[:, 1], 1)[0])
    return (vx, vy)


def scale_px_per_m(objects: list[Blob]) -> float | None:
    """Pixels per metre the objects' sizes imply: the median over the kinds of named things of known typical
    size, each kind's own guess the median over its instances (six dominoes are one piece of evidence about the
    scale, not six against one ball).

    >>> ball = Blob(0, 0, 314, "red", (0, 0, 20, 20), 1, "round", "ball", fitted_radius=7.0)
    >>> dominoes = [Blob(0, 0, 200, "white", (0, 0, 6, 34), 2, "box", "domino") for _ in range(5)]
    >>> round(scale_px_per_m([ball, *dominoes]))  # ball 14 px / 0.07 m, domino 34 px / 0.05 m
    440
    """
    guesses: dict[str, list[float]] = {}
    for blob in objects:
        size_m = TYPICAL_SIZE_M.get(blob.noun)
        if size_m is None:
            continue
        _, _, w, h = blob.bbox
        size_px = 2 * blob.radius if blob.shape == "round" else float(max(w, h))
        guesses.setdefault(blob.noun, []).append(size_px / size_m)
    return float(np.median([np.median(g) for g in guesses.values()])) if guesses else None


def end_velocity(xy: np.ndarray, fps: float, n: int = 3) -> tuple[float, float]:
    """Velocity ``(vx, vy)`` px/s at the last seen position: the straight-line fit to the last ``n`` positions
    (:func:`fit_velocity`), unless the last step breaks with the ones before it (struck, bounced or let go
    between the last two frames): then the last step alone, its speed since the blow, not the average across it.

    >>> kicked = np.array([[57.0, 147.0], [57.0, 147.0], [57.0, 147.0], [77.0, 147.0]])
    >>> end_velocity(kicked, 8.0), tuple(round(v) for v in fit_velocity(kicked, 8.0, at_end=True))
    ((160.0, 0.0), (80, 0))
    >>> rolling = np.array([[10.0, 5.0], [20.0, 5.0], [30.5, 5.0]])
    >>> tuple(round(v) for v in end_velocity(rolling, 8.0))
    (82, 0)
    """
    part = xy[-n:]
    part = part[~np.isnan(part[:, 0])]
    if len(part) >= 3:
        steps = np.diff(part, axis=0)
        last, before = steps[-1], steps[:-1].mean(axis=0)
        if math.hypot(*(last - before)) > max(3.0, 0.5 * math.hypot(*last)):
            return (float(last[0] * fps), float(last[1] * fps))
    return fit_velocity(xy, fps, at_end=True, n=n)


def analyse_track(track: Track, fps: float, floor_y: float | None = None) -> ObjectMotion:
    """Measure velocity, free-flight gravity, bounces and restitution of one track."""
    xy = track.xy
    seen = track.seen
    vanished_at = None
    for t in range(1, len(seen) - 1):
        if not seen[t] and not seen[t + 1]:
            vanished_at = t
            break
    filled = np.stack([_fill(xy[:, 0]), _fill(xy[:, 1])], axis=1)
    y = filled[:, 1]
    vy = np.diff(y) * fps
    # A bounce: moving down (> 5 px/s) then up (< -5 px/s); 5 px/s ignores sub-pixel jitter at rest.
    bounces = [t for t in range(1, len(vy)) if vy[t - 1] > 5 and vy[t] < -5]
    cuts = [0, *[b + 1 for b in bounces], len(y)]
    segments: list[Segment] = []
    for a, b in itertools.pairwise(cuts):
        # Drop the frame on each side of a bounce: contact smears the parabola.
        a2, b2 = a + (1 if a > 0 else 0), b - (1 if b < len(y) else 0)
        if b2 - a2 >= 5 and np.all(seen[a2:b2]):
            times = np.arange(a2, b2) / fps
            coeffs = np.polyfit(times, y[a2:b2], 2)
            residual = y[a2:b2] - np.polyval(coeffs, times)
            # A clean parabola only: a short or bumpy stretch (a landing, a roll) says nothing about gravity.
            if float(np.sqrt(np.mean(residual**2))) < 1.5:
                segments.append(Segment(a2, b2, float(2 * coeffs[0])))
    # Only segments that actually move vertically measure gravity (rolling on the floor has accel 0).
    flights = [s for s in segments if np.ptp(y[s.start : s.stop]) > 3]
    gravity = float(np.median([s.accel for s in flights])) if flights else None
    ratios = []
    for b in bounces:
        before, after = y[max(0, b - 2) : b + 1], y[b : b + 3]
        if len(before) >= 2 and len(after) >= 2:
            v_in = (before[-1] - before[0]) / (len(before) - 1) * fps
            v_out = (after[-1] - after[0]) / (len(after) - 1) * fps
            if gravity:  # undo the frame-averaging bias of finite differences around the impact
                v_in += gravity * (len(before) - 1) / (2 * fps)
                v_out -= gravity * (len(after) - 1) / (2 * fps)
            if v_in > 1:
                ratios.append(min(1.5, abs(v_out) / v_in))
    restitution = float(np.mean(ratios)) if ratios else None
    if bounces and gravity and gravity > 0:
        # With gravity known, each arc between bounces is a parabola of known curvature: its apex height
        # above the contact level gives the speed at contact (v = sqrt(2 g h)) better than finite differences
        # of a few samples around the impact, which miss the impact itself at low frame rates.
        contact = float(np.nanmax(y))
        if floor_y is not None and abs(floor_y - track.radius - contact) < 2 * track.radius:
            contact = max(contact, floor_y - track.radius)
        edges = [0, *bounces, len(y) - 1]
        heights: list[float | None] = []
        for a, b in itertools.pairwise(edges):
            lo, hi = (a + 1 if a > 0 else a), b  # the lowest samples belong to either arc: left out
            if hi - lo < 2:
                heights.append(None)
                continue
            times = np.arange(lo, hi) / fps
            slope, offset = (float(v) for v in np.polyfit(times, y[lo:hi] - 0.5 * gravity * times * times, 1))
            apex = offset - slope * slope / (2 * gravity)
            heights.append(contact - apex if contact - apex > 1 else None)
        pairs = [
            math.sqrt(h2 / h1) for h1, h2 in itertools.pairwise(heights) if h1 is not None and h2 is not None
        ]
        if pairs:
            restitution = min(1.5, float(np.mean(pairs)))
    speeds = np.hypot(np.diff(filled[:, 0]), np.diff(filled[:, 1])) * fps
    stopped_at = None
    for t in range(len(speeds)):
        if np.all(speeds[t:] < 3) and len(speeds) - t >= 3:  # 3 px/s: still within codec jitter
            stopped_at = t
            break
    vx = np.diff(filled[:, 0]) * fps
    speed_change = None
    moving = np.abs(vx) > 5
    if moving.sum() >= 4:
        tt = np.nonzero(moving)[0]
        slope = np.polyfit(tt / fps, np.abs(vx[tt]), 1)[0]
        mean_speed = float(np.abs(vx[tt]).mean())
        speed_change = float(slope / mean_speed) if mean_speed > 0 else None
    if not seen.any():
        lowest = float("nan")
    elif track.bottoms is not None:
        lowest = float(np.nanmax(track.bottoms))
    else:
        lowest = float(np.nanmax(xy[:, 1]) + track.radius)
    return ObjectMotion(
        name=track.name,
        colour=track.colour,
        velocity=fit_velocity(xy, fps, at_end=True),
        start_velocity=fit_velocity(xy, fps, at_end=False),
        gravity=gravity,
        bounces=bounces,
        restitution=restitution,
        vanished_at=vanished_at,
        stopped_at=stopped_at,
        lowest_y=lowest,
        speed_change=speed_change,
        positions=[(round(float(p[0]), 1), round(float(p[1]), 1)) for p in filled],
        seen=[bool(s) for s in seen],
    )


def _direction(vx: float, vy: float) -> str:
    parts = []
    if abs(vx) > 5:
        parts.append("right" if vx > 0 else "left")
    if abs(vy) > 5:
        parts.append("down" if vy > 0 else "up")
    return " and ".join(parts) if parts else "still"


@dataclass
class MotionSummary:
    """Motion of every tracked object of one clip.

    Attributes:
        fps: Frame rate of the clip.
        objects: One :class:`ObjectMotion` per object.
        floor_y: Detected ground line (px).
        frame_count: Frames analysed.
    """

    fps: float
    objects: list[ObjectMotion]
    floor_y: float
    frame_count: int

    def grounding_text(self, label: str) -> str:
        """Measured motion for a language model, e.g. ``the white ball: at the end moving right at 40 px/s``."""
        if not self.objects:
            return f"{label}: no objects found."
        lines = [
            f"{label} ({self.frame_count} frames at {self.fps:g} fps, floor at y={self.floor_y:.0f} px):"
        ]
        for m in self.objects:
            vx, vy = m.velocity
            heading = _direction(vx, vy)
            words_ = [f"{m.name}: at the end " + ("still" if heading == "still" else f"moving {heading}")]
            if _direction(vx, vy) != "still":
                words_.append(f"at {math.hypot(vx, vy):.0f} px/s (vx={vx:.0f}, vy={vy:.0f})")
            if m.gravity is not None:
                words_.append(
                    f"accelerating {'down' if m.gravity > 0 else 'up'} at {abs(m.gravity):.0f} px/s²"
                )
            if m.bounces:
                words_.append(f"bounces at frame(s) {', '.join(str(b) for b in m.bounces)}")
                if m.restitution is not None:
                    words_.append(f"keeping {100 * m.restitution:.0f}% of its vertical speed")
            if m.speed_change is not None and abs(m.speed_change) > 0.03:
                verb = "slowing down" if m.speed_change < 0 else "speeding up"
                words_.append(f"{verb} sideways by {100 * abs(m.speed_change):.0f}% per second")
            if m.stopped_at is not None:
                words_.append(f"comes to rest at frame {m.stopped_at}")
            if m.vanished_at is not None:
                words_.append(f"disappears at frame {m.vanished_at}")
            lines.append("- " + ", ".join(words_) + ".")
        return "\n".join(lines)


def summarise(
    frames: np.ndarray,
    fps: float,
    reference: list[Blob] | None = None,
    labels: np.ndarray | None = None,
    background: np.ndarray | None = None,
    floor_y: float | None = None,
) -> MotionSummary:
    """Track and analyse a clip (see :func:`track_objects`, :func:`analyse_track`).

    ``reference`` and ``labels`` are the objects of ``frames[0]``. Without ``labels`` (objects found in one
    frame alone), they are looked up again in the first and in the last frame, whichever shows them; objects of
    the last frame (the switch frame of a prefix) are followed backwards and measured as they moved forwards.
    """
    backwards = False
    if reference is not None and not reference:
        labels = np.zeros(frames.shape[1:3], np.int32)  # nothing to follow
    if reference is not None and labels is None:
        wanted = list(reference)

        def found(p: Perception) -> list[Blob]:
            return [
                b
                for b in p.objects
                if any(math.dist((b.x, b.y), (r.x, r.y)) <= max(4.0, r.radius) for r in wanted)
            ]

        first = perceive(frames[:1])
        last = perceive(frames[-1:]) if len(frames) > 1 else first
        backwards = len(found(last)) > len(found(first))
        use = last if backwards else first
        reference, labels = found(use) or use.objects, use.labels
        background = use.background if background is None else background
    floor = (detect_floor(frames[-1]) if len(frames) else 0.0) if floor_y is None else floor_y
    clip = frames[::-1] if backwards else frames
    tracks = track_objects(clip, reference, labels, background, fps)
    motions = [analyse_track(t, fps, floor) for t in tracks]
    return MotionSummary(
        fps=fps,
        objects=[reverse_motion(m) for m in motions] if backwards else motions,
        floor_y=floor,
        frame_count=len(frames),
    )


def prefix_summary(prefix: np.ndarray, fps: float, perception: Perception) -> MotionSummary:
    """Motion of the perceived objects through the prefix at whose end (the switch frame) they were found:
    followed backwards from there, measured as they moved forwards."""
    summary = summarise(
        prefix[::-1], fps, perception.objects, perception.labels, perception.background, perception.floor_y
    )
    summary.objects = [reverse_motion(m) for m in summary.objects]
    return summary


def reverse_motion(m: ObjectMotion) -> ObjectMotion:
    """A motion measured on a time-reversed clip, as it was forwards (velocities negate and swap ends)."""
    n = len(m.positions)
    return ObjectMotion(
        name=m.name,
        colour=m.colour,
        velocity=(-m.start_velocity[0], -m.start_velocity[1]),
        start_velocity=(-m.velocity[0], -m.velocity[1]),
        gravity=m.gravity,
        bounces=[n - 1 - b for b in m.bounces][::-1],
        restitution=(1.0 / m.restitution) if m.restitution else None,
        vanished_at=None,
        stopped_at=None,
        lowest_y=m.lowest_y,
        speed_change=(-m.speed_change) if m.speed_change is not None else None,
        positions=m.positions[::-1],
        seen=m.seen[::-1],
    )


def switch_velocity_gap(prefix: MotionSummary, continuation: MotionSummary) -> float:
    """How far a continuation's motion jumps at the switch frame: the mean over the prefix's objects of
    ``|start velocity of the continuation - end velocity of the prefix|`` (px/s). Lower is more consistent.

    Objects are matched by track name (both summaries track the switch frame's objects, so names match). No
    objects: 0.

    >>> def obj(name, v, v0):
    ...     return ObjectMotion(name, "red", v, v0, None, [], None, None, None, 0.0, None)
    >>> before = MotionSummary(8.0, [obj("red", (30.0, 0.0), (30.0, 0.0))], 170.0, 8)
    >>> after = MotionSummary(8.0, [obj("red", (0.0, 0.0), (27.0, 4.0))], 170.0, 41)
    >>> switch_velocity_gap(before, after)
    5.0
    """
    starts = {m.name: m.start_velocity for m in continuation.objects}
    gaps = []
    for m in prefix.objects:
        sx, sy = starts.get(m.name, (0.0, 0.0))  # an object the continuation lost counts as stopped
        gaps.append(math.hypot(sx - m.velocity[0], sy - m.velocity[1]))
    return float(np.mean(gaps)) if gaps else 0.0
