"""Looks of the synthetic suite: how the same simulated worlds are filmed and painted.

A look changes only the pictures and the words: the cameras' framing, the room around the table, how objects
are coloured and shaded, shadows, sensor noise, and the description texts that name the objects by their new
colours. The simulation (:mod:`physics_iq.synthetic.scenarios`) never sees the look, so a seed gives the same
physics and the same world-space ground truth in every look; the state files differ only by the camera
projection and the objects' listed colours.

- ``classic``: flat saturated objects on a dark, plain, low-saturation backdrop (the suite's original look).
- ``cluttered``: bright striped and dotted wallpaper with posters and a shelf of ornaments in saturated
  colours, a checked tablecloth, a potted plant, shaded and patterned objects in any colour (white, black,
  grey, brown included), contact shadows, a closer camera and stronger sensor noise.
- ``room``: a living room: painted plaster with white wainscoting, framed pictures, a round wall clock, a
  window and a bookshelf, a dark walnut table seen from higher up with its legs and a tiled floor, other
  objects, colours and patterns, light from the other side, and descriptions worded like the official ones.

The two new looks differ from each other in palette, textures, framing and wording, so that one can be used
to develop against and the other kept for evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from physics_iq.synthetic.world import (
    TABLE_Y,
    Colour,
)

#: Per-camera crops ``(x0, y0, view width)`` in world metres, as :data:`physics_iq.synthetic.render.VIEWS`.
Views = dict[str, tuple[float, float, float]]


@dataclass(frozen=True)
class ObjectLook:
    """How one moving object is painted.

    Attributes:
        colour: The colour word used in descriptions (``"white"``, ``"brown"``...).
        rgb: Its base colour; the state files list it as the object's colour.
        pattern: ``"plain"`` (shaded only), ``"stripes"`` (bands across the object), ``"seam"`` (a curved
            line, like a tennis ball's), ``"pips"`` (dots, like a domino's), ``"grain"`` (wood grain) or
            ``"spots"`` (per-particle shade variation, for beads and liquids).
        accent: The pattern's second colour.
    """

    colour: str
    rgb: Colour
    pattern: str = "plain"
    accent: Colour = (40, 40, 40)


@dataclass(frozen=True)
class StaticLook:
    """How fixed geometry of one muted classic colour is painted in a look (colour and texture)."""

    rgb: Colour
    texture: str = "plain"  # "plain", "grain" (wood), "brushed" (metal), "glass"


@dataclass(frozen=True)
class Look:
    """One look of the suite.

    Attributes:
        name: The ``--style`` name.
        views: Camera crops per perspective.
        objects: Object id -> :class:`ObjectLook` (ids as in the scenarios).
        statics: Classic muted colour name (:data:`~physics_iq.synthetic.world.MUTED`) -> :class:`StaticLook`.
        tool: Colour of tools drawn as lines (grabber arms, cue sticks, rods, cords).
        noise_sigma: Standard deviation of the sensor noise, 8-bit levels.
        light_from: ``-1`` light from the left, ``+1`` from the right (shading, highlights, shadows).
        paint_room: ``(wx, wy, rng) -> (H, W, 3) float32``: the room behind and below the table, painted from
            the world coordinates ``wx``, ``wy`` (metres) of every pixel centre.
        descriptions: Scenario slug -> description text in this look (``{}`` for the classic look, whose
            descriptions are the scenarios' own).
    """

    name: str
    views: Views
    objects: dict[str, ObjectLook] = field(default_factory=dict)
    statics: dict[str, StaticLook] = field(default_factory=dict)
    tool: Colour = (40, 40, 40)
    noise_sigma: float = 1.6
    light_from: float = -1.0
    paint_room: Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray] | None = None
    descriptions: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- painting helpers


def _rgb(colour: Colour | tuple[float, ...]) -> np.ndarray:
    return np.asarray(colour, np.float32)


def _paint(img: np.ndarray, where: np.ndarray, colour: Colour | np.ndarray, alpha: float = 1.0) -> None:
    """Blend ``colour`` into ``img`` where the boolean or 0..1 mask ``where`` says."""
    weight = where.astype(np.float32)[..., None] * alpha
    img += (np.asarray(colour, np.float32) - img) * weight


def _box(wx: np.ndarray, wy: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return (wx >= x0) & (wx < x1) & (wy >= y0) & (wy < y1)


def _disc(wx: np.ndarray, wy: np.ndarray, cx: float, cy: float, r: float) -> np.ndarray:
    return (wx - cx) ** 2 + (wy - cy) ** 2 < r * r


def _smooth_noise(shape: tuple[int, int], cells: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Low-frequency noise in about -1..1 (bicubic upsampling of a coarse random grid)."""
    coarse = rng.normal(0, 1, cells).astype(np.float32)
    return cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def wood_texture(
    wx: np.ndarray, wy: np.ndarray, base: Colour, rng: np.random.Generator, scale: float = 1.0
) -> np.ndarray:
    """Wood grain: bands along x whose phase wanders, in shades of ``base``."""
    wobble = _smooth_noise(wx.shape, (3, 8), rng)
    rings = np.sin((wy * 140.0 / scale + 2.5 * wobble + np.sin(wx * 9.0) * 0.8) * 1.0)
    shade = 1.0 + 0.10 * rings + 0.05 * _smooth_noise(wx.shape, (2, 12), rng)
    return _rgb(base)[None, None, :] * shade[..., None]


def _frame_picture(
    img: np.ndarray, wx: np.ndarray, wy: np.ndarray, box: tuple[float, float, float, float], frame: Colour
) -> np.ndarray:
    """Draw a picture frame; returns the mask of the picture's inside."""
    x0, y0, x1, y1 = box
    _paint(img, _box(wx, wy, x0, y0, x1, y1), frame)
    inset = 0.025
    return _box(wx, wy, x0 + inset, y0 + inset, x1 - inset, y1 - inset)


# ---------------------------------------------------------------------------------------------- the cluttered room


def _paint_cluttered(wx: np.ndarray, wy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    img = np.empty((*wx.shape, 3), np.float32)
    img[:] = (242, 228, 196)  # cream wallpaper
    # Vertical teal stripes every 12 cm, and coral dots between them on a 6 cm lattice.
    stripe = (np.mod(wx, 0.12) < 0.028).astype(np.float32)
    _paint(img, stripe, (38, 150, 152), 0.9)
    dots = _disc(np.mod(wx - 0.06, 0.12), np.mod(wy, 0.06), 0.0, 0.0, 0.008)
    dots |= _disc(np.mod(wx - 0.06, 0.12), np.mod(wy, 0.06), 0.12, 0.0, 0.008)
    dots |= _disc(np.mod(wx - 0.06, 0.12), np.mod(wy, 0.06), 0.0, 0.06, 0.008)
    dots |= _disc(np.mod(wx - 0.06, 0.12), np.mod(wy, 0.06), 0.12, 0.06, 0.008)
    _paint(img, dots & (stripe == 0), (232, 105, 88))
    # A poster: a magenta disc and a yellow triangle on cyan, in a black frame.
    inside = _frame_picture(img, wx, wy, (0.22, 0.58, 0.62, 0.98), (25, 25, 28))
    _paint(img, inside, (60, 192, 212))
    _paint(img, inside & _disc(wx, wy, 0.34, 0.80, 0.075), (222, 40, 160))
    tri = inside & (wy > 0.64) & (wy < 0.64 + 1.2 * (0.16 - np.abs(wx - 0.50)))
    _paint(img, tri, (250, 214, 40))
    # A second picture: an orange sun over green hills and a blue sky.
    inside = _frame_picture(img, wx, wy, (1.32, 0.62, 1.68, 0.98), (240, 240, 236))
    _paint(img, inside, (48, 78, 205))
    _paint(img, inside & _disc(wx, wy, 1.56, 0.86, 0.055), (250, 136, 30))
    _paint(img, inside & (wy < 0.70 + 0.04 * np.sin(wx * 18.0)), (46, 170, 70))
    # A wall shelf with ornaments: a red vase, a blue bowl, three books.
    _paint(img, _box(wx, wy, 0.70, 0.50, 1.10, 0.52), (150, 100, 60))
    _paint(img, _box(wx, wy, 0.74, 0.52, 0.80, 0.60) | _disc(wx, wy, 0.77, 0.61, 0.035), (215, 35, 45))
    _paint(img, _disc(wx, wy, 0.90, 0.52, 0.045) & (wy > 0.52), (40, 70, 220))
    for k, colour in enumerate(((150, 50, 200), (40, 170, 70), (245, 200, 40))):
        _paint(img, _box(wx, wy, 0.98 + 0.035 * k, 0.52, 1.01 + 0.035 * k, 0.63 - 0.015 * k), colour)
    # The table: a pine top edge and a red-and-white checked tablecloth hanging in front.
    top = _box(wx, wy, -10, TABLE_Y - 0.02, 10, TABLE_Y)
    img[top] = wood_texture(wx, wy, (214, 172, 112), rng)[top]
    cloth = wy < TABLE_Y - 0.02
    checks = (np.floor(wx / 0.03) + np.floor(wy / 0.03)) % 2 == 0
    img[cloth] = (246, 244, 240)
    _paint(img, cloth & checks, (205, 38, 45))
    _paint(img, cloth & (np.floor(wx / 0.03) % 2 == 0), (205, 38, 45), 0.35)
    # A potted plant at the table's far left: a terracotta pot and green leaves.
    pot = _box(wx, wy, 0.03, TABLE_Y, 0.13, TABLE_Y + 0.09) & (
        np.abs(wx - 0.08) < 0.05 - (wy - TABLE_Y) * -0.15
    )
    for cx, cy, r in ((0.06, 0.27, 0.045), (0.1, 0.3, 0.05), (0.08, 0.36, 0.04), (0.12, 0.24, 0.035)):
        _paint(img, _disc(wx, wy, cx, cy, r), (50, 160, 60))
    _paint(img, _box(wx, wy, 0.075, TABLE_Y + 0.09, 0.085, 0.26), (40, 120, 40))
    _paint(img, pot, (192, 92, 52))
    texture = (
        1.0
        + 0.03 * _smooth_noise(wx.shape, (5, 9), rng)
        + 0.02 * rng.normal(0, 1, wx.shape).astype(np.float32)
    )
    return img * texture[..., None]


# ---------------------------------------------------------------------------------------------- the living room


def _paint_room(wx: np.ndarray, wy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    img = np.empty((*wx.shape, 3), np.float32)
    img[:] = (226, 214, 190)  # warm painted plaster
    img *= (1.0 + 0.06 * _smooth_noise(wx.shape, (7, 12), rng))[..., None]
    # White wainscoting with vertical grooves, and its top rail.
    wainscot = wy < 0.34
    _paint(img, wainscot, (236, 236, 228))
    _paint(img, wainscot & (np.mod(wx, 0.2) < 0.008), (170, 170, 160))
    _paint(img, _box(wx, wy, -10, 0.33, 10, 0.36), (250, 250, 246))
    _paint(img, _box(wx, wy, -10, 0.325, 10, 0.332), (150, 146, 136))
    # A landscape in a gold frame.
    inside = _frame_picture(img, wx, wy, (0.12, 0.56, 0.56, 0.92), (196, 160, 60))
    _paint(img, inside, (150, 200, 240))
    _paint(img, inside & (wy < 0.70 + 0.05 * np.sin(wx * 14.0 + 1.0)), (90, 150, 60))
    _paint(img, inside & (wy < 0.64 + 0.03 * np.sin(wx * 22.0)), (200, 180, 60))
    _paint(img, inside & _disc(wx, wy, 0.45, 0.84, 0.03), (250, 240, 200))
    # A round wall clock: black rim, white face, two hands.
    _paint(img, _disc(wx, wy, 1.2, 0.78, 0.095), (20, 20, 22))
    _paint(img, _disc(wx, wy, 1.2, 0.78, 0.082), (248, 248, 244))
    _paint(img, _box(wx, wy, 1.196, 0.78, 1.204, 0.845), (20, 20, 22))
    _paint(img, _box(wx, wy, 1.2, 0.776, 1.25, 0.784), (20, 20, 22))
    # A window with a bright sky and white bars.
    window = _box(wx, wy, 1.55, 0.5, 2.0, 1.2)
    _paint(img, window, (250, 250, 250))
    glass = _box(wx, wy, 1.58, 0.53, 1.97, 1.17)
    _paint(img, glass, (196, 224, 252))
    _paint(img, glass & (np.abs(wx - 1.775) < 0.01), (250, 250, 250))
    _paint(img, glass & (np.abs(wy - 0.85) < 0.01), (250, 250, 250))
    # A bookshelf with coloured books.
    _paint(img, _box(wx, wy, 0.62, 0.92, 1.02, 0.945), (120, 80, 50))
    books = ((200, 40, 40), (40, 90, 190), (240, 190, 40), (30, 140, 80), (230, 110, 30), (120, 60, 160))
    for k, colour in enumerate(books):
        height = 0.1 + 0.02 * ((k * 7) % 3)
        _paint(img, _box(wx, wy, 0.64 + 0.05 * k, 0.945, 0.68 + 0.05 * k, 0.945 + height), colour)
    # The walnut table: a lighter top edge, a dark apron, legs, and a tiled floor below.
    wood = wood_texture(wx, wy, (112, 72, 46), rng)
    table = (wy < TABLE_Y) & (wy >= -0.04)
    img[table] = wood[table]
    _paint(img, _box(wx, wy, -10, TABLE_Y - 0.012, 10, TABLE_Y), (150, 104, 70))
    under = wy < -0.04
    _paint(img, under, (205, 196, 180))
    skirting = _box(wx, wy, -10, -0.2, 10, -0.16)
    _paint(img, skirting, (245, 245, 240))
    floor = wy < -0.2
    tiles = (np.floor(wx / 0.12) + np.floor(wy / 0.06)) % 2 == 0
    _paint(img, floor, (130, 126, 120))
    _paint(img, floor & tiles, (176, 170, 160))
    for leg in (0.06, 1.94):
        leg_mask = _box(wx, wy, leg - 0.03, -10, leg + 0.03, -0.04)
        img[leg_mask] = wood[leg_mask] * 0.8
    # A stack of books on the table's far right and a mug on its far left.
    for k, colour in enumerate(((40, 60, 150), (190, 40, 40), (230, 200, 80))):
        _paint(img, _box(wx, wy, 1.96 + 0.01 * k, TABLE_Y + 0.03 * k, 2.2, TABLE_Y + 0.03 * (k + 1)), colour)
    _paint(img, _box(wx, wy, -0.04, TABLE_Y, 0.04, TABLE_Y + 0.08), (30, 170, 160))
    texture = 1.0 + 0.02 * rng.normal(0, 1, wx.shape).astype(np.float32)
    return img * texture[..., None]


# ---------------------------------------------------------------------------------------------- the looks

_CLASSIC_VIEWS: Views = {
    "perspective-left": (0.0, 0.0, 1.8),
    "perspective-center": (0.0, 0.0, 2.0),
    "perspective-right": (0.25, 0.03, 1.7),
}

_TABLE = "a table with a checked tablecloth"

CLASSIC = Look(name="classic", views=_CLASSIC_VIEWS)

CLUTTERED = Look(
    name="cluttered",
    # Closer than classic and a little lower: the tablecloth hangs below the table's edge.
    views={
        "perspective-left": (0.04, -0.03, 1.76),
        "perspective-center": (0.08, -0.02, 1.88),
        "perspective-right": (0.22, -0.035, 1.72),
    },
    objects={
        "ball-red": ObjectLook("white", (236, 234, 226), "seam", (150, 150, 156)),
        "ball-blue": ObjectLook("black", (38, 38, 42)),
        "block-blue": ObjectLook("brown", (128, 82, 46), "grain", (96, 60, 32)),
        **{f"domino-{k}": ObjectLook("white", (240, 238, 232), "pips", (25, 25, 25)) for k in range(1, 7)},
        "bob-orange": ObjectLook("grey", (140, 142, 148)),
        "liquid-blue": ObjectLook("red", (205, 40, 40), "spots", (150, 20, 20)),
        "liquid-cyan": ObjectLook("green", (70, 175, 80), "spots", (40, 130, 50)),
        "block-red": ObjectLook("yellow", (240, 205, 40), "stripes", (200, 150, 20)),
        "lamp-yellow": ObjectLook("white", (246, 246, 238)),
        "ice-cyan": ObjectLook("white", (225, 236, 242)),
        "water-blue": ObjectLook("pale blue", (150, 190, 230), "spots", (120, 160, 210)),
        "balloon-red": ObjectLook("pink", (242, 130, 172)),
        "ball-green": ObjectLook("grey", (150, 152, 158)),
        "puck-magenta": ObjectLook("black", (32, 32, 36), "stripes", (90, 90, 96)),
    },
    statics={
        "wall": StaticLook((200, 150, 95), "grain"),
        "rod": StaticLook((60, 60, 64)),
        "steel": StaticLook((40, 110, 210)),  # a blue-painted ramp and funnel
        "wood": StaticLook((176, 120, 70), "grain"),
        "glass": StaticLook((190, 215, 225), "glass"),
        "heater": StaticLook((70, 60, 58), "brushed"),
        "magnet_n": StaticLook((215, 40, 40)),
        "magnet_s": StaticLook((40, 70, 215)),
        "mirror": StaticLook((28, 28, 34)),
    },
    tool=(45, 45, 50),
    noise_sigma=2.4,
    light_from=-1.0,
    paint_room=_paint_cluttered,
    descriptions={
        "synthetic-ball-bounce": "A white rubber ball and a black clay-like ball hang side by side from two "
        f"grabber arms above {_TABLE} in front of a wall with striped wallpaper, posters and a shelf. The "
        "grabbers let go of both balls at the same time.",
        "synthetic-two-ball-collision": f"A white ball and a black ball rest on {_TABLE} with a wooden block "
        "standing at the right edge, in front of a wall with striped wallpaper and posters. A cue stick "
        "pushes the white ball to the right towards the black ball.",
        "synthetic-domino-chain": f"Six thin white dominoes stand in a row on {_TABLE}. A cue stick pushes a "
        "white ball to the right towards the first domino.",
        "synthetic-ramp-roll-slide": f"A blue ramp stands on {_TABLE} sloping down to the right. Two grabber "
        "arms hold a brown wooden block near the top of the ramp and a white ball further down the slope, and "
        "let go of both at the same time.",
        "synthetic-pendulum-strike": "A grey metal pendulum bob on a thin rod is held up to the left of its "
        f"pivot above {_TABLE}. A brown wooden block rests on the table just right of the point below the "
        "pivot. The bob is let go.",
        "synthetic-granular-pour": f"A blue funnel above an empty glass on {_TABLE} is filled with small red "
        "beads, held in by a gate at the funnel's narrow end. The gate slides away.",
        "synthetic-block-splash": f"A clear tank on {_TABLE} is two-thirds full of a green liquid. A grabber "
        "arm holds a yellow block above the middle of the tank and lets go of it.",
        "synthetic-swinging-lamp-shadow": "A small white lamp hangs on a cord in front of a wall with striped "
        "wallpaper, held up to the right, and a black ball hangs on a string between the lamp and the wall, "
        "casting a shadow on the wall. The lamp is let go and swings.",
        "synthetic-mirror-table-bounce": "A glossy black table top reflects the scene like a mirror. A white "
        "ball rests on a wooden shelf standing on the left of the table, and a cue stick pushes it to the "
        "right over the shelf's edge.",
        "synthetic-ice-melting": f"A white block of ice sits in the middle of a dark hot plate on {_TABLE}, "
        "with a few drops of pale blue melt water at its foot. The hot plate is switched on and heats up.",
        "synthetic-balloon-heating": f"A sealed pink balloon rests on a dark electric heater on {_TABLE}, below "
        "a wooden shelf. The heater is switched on and warms the air inside the balloon.",
        "synthetic-magnet-attract": f"A strong magnet painted red and blue sits on the right of {_TABLE}. A "
        "grabber arm holds a grey steel ball on the table some distance to the left of the magnet and lets go "
        "of it.",
        "synthetic-magnet-repel": "A black magnetic puck sits on a smooth track with a wooden bumper at the "
        "left end and a strong red and blue magnet at the right end facing the puck with the same pole. A cue "
        "stick pushes the puck to the right towards the magnet.",
    },
)

ROOM = Look(
    name="room",
    # Wider, and from higher up: the table's legs and the floor are in view.
    views={
        "perspective-left": (-0.12, -0.19, 2.02),
        "perspective-center": (-0.06, -0.24, 2.2),
        "perspective-right": (0.14, -0.16, 1.92),
    },
    objects={
        "ball-red": ObjectLook("brown", (150, 104, 62), "seam", (226, 214, 190)),
        "ball-blue": ObjectLook("orange", (236, 118, 34), "stripes", (40, 28, 20)),
        "block-blue": ObjectLook("green", (58, 140, 72), "stripes", (36, 100, 48)),
        **{f"domino-{k}": ObjectLook("black", (30, 30, 32), "pips", (240, 240, 240)) for k in range(1, 7)},
        "bob-orange": ObjectLook("silver", (186, 188, 194)),
        "liquid-blue": ObjectLook("yellow", (240, 205, 45), "spots", (205, 165, 25)),
        "liquid-cyan": ObjectLook("blue", (70, 112, 205), "spots", (50, 90, 180)),
        "block-red": ObjectLook("white", (238, 238, 234), "grain", (200, 196, 186)),
        "lamp-yellow": ObjectLook("white", (250, 248, 240)),
        "ice-cyan": ObjectLook("white", (230, 240, 246)),
        "water-blue": ObjectLook("light blue", (160, 200, 236), "spots", (130, 170, 215)),
        "balloon-red": ObjectLook("purple", (130, 60, 175)),
        "ball-green": ObjectLook("silver", (120, 122, 128)),
        "puck-magenta": ObjectLook("red", (200, 36, 36)),
    },
    statics={
        "wall": StaticLook((160, 120, 80), "grain"),
        "rod": StaticLook((60, 90, 160)),
        "steel": StaticLook((210, 180, 130), "grain"),  # a light wooden ramp, funnel
        "wood": StaticLook((150, 110, 70), "grain"),
        "glass": StaticLook((200, 225, 235), "glass"),
        "heater": StaticLook((150, 150, 156), "brushed"),
        "magnet_n": StaticLook((100, 100, 106), "brushed"),
        "magnet_s": StaticLook((100, 100, 106), "brushed"),
        "mirror": StaticLook((22, 22, 26)),
    },
    tool=(50, 85, 160),  # blue-handled grabber tools and sticks
    noise_sigma=2.0,
    light_from=1.0,
    paint_room=_paint_room,
    descriptions={
        "synthetic-ball-bounce": "Two grabber tools hold a brown tennis ball and an orange soft clay ball above "
        "a dark wooden table in a living room. The grabber tools release both balls at the same time.",
        "synthetic-two-ball-collision": "A brown tennis ball and an orange ball lie on a dark wooden table, "
        "with a wooden block at the right end of the table. A stick hits the tennis ball, which rolls towards "
        "the orange ball.",
        "synthetic-domino-chain": "Six black dominoes stand upright in a line on a dark wooden table. A stick "
        "sends a brown tennis ball rolling into the first domino.",
        "synthetic-ramp-roll-slide": "A light wooden ramp is set up on a dark wooden table, going down to the "
        "right. Grabber tools hold a green block near the top of the ramp and a brown tennis ball lower on the "
        "ramp, and release them together.",
        "synthetic-pendulum-strike": "A silver pendulum ball on a thin rod is pulled back to the left. A green "
        "block sits on the dark wooden table near the bottom of the swing. The pendulum is released.",
        "synthetic-granular-pour": "Small yellow beads fill a wooden funnel that is closed at the bottom, above "
        "an empty glass on a dark wooden table. The funnel is opened and the beads pour out.",
        "synthetic-block-splash": "A glass tank filled with blue water stands on a dark wooden table. A white "
        "block is held by a grabber tool above the water and then dropped.",
        "synthetic-swinging-lamp-shadow": "A white lamp on a cord is pulled to the right, with an orange ball "
        "hanging on a string between the lamp and the wall so that it casts a shadow on the wall. The lamp is "
        "released and swings.",
        "synthetic-mirror-table-bounce": "A brown tennis ball is pushed by a stick off the edge of a small "
        "wooden step onto a shiny black table that reflects it like a mirror.",
        "synthetic-ice-melting": "An ice cube sits on an electric hot plate on a dark wooden table, with a "
        "little water around it. The hot plate is turned on.",
        "synthetic-balloon-heating": "A purple balloon sits on top of a heater on a dark wooden table, under a "
        "shelf. The heater is turned on.",
        "synthetic-magnet-attract": "A powerful magnet is placed on the right side of a dark wooden table. A "
        "grabber tool holds a small silver steel ball on the table to the left of the magnet and then releases "
        "it.",
        "synthetic-magnet-repel": "A red magnetic puck is pushed with a stick along a smooth track towards a "
        "strong magnet at the right end, which faces it with the same pole so that they repel. A wooden "
        "stopper sits at the left end of the track.",
    },
)

#: The looks by ``--style`` name; ``classic`` is the default.
LOOKS: dict[str, Look] = {look.name: look for look in (CLASSIC, CLUTTERED, ROOM)}
DEFAULT_STYLE = "classic"
STATIC_SHOT = "Static shot with no camera movement."


def get_look(style: str) -> Look:
    """The look named ``style``.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    try:
        return LOOKS[style]
    except KeyError:
        raise KeyError(f"unknown style {style!r}; known: {', '.join(LOOKS)}") from None


def describe(style: str, scenario: str, classic: str) -> str:
    """The description of ``scenario`` in a look (``classic``: the scenario's own text).

    >>> describe("classic", "synthetic-ball-bounce", "A ball.") == "A ball."
    True
    >>> describe("room", "synthetic-ball-bounce", "").endswith("Static shot with no camera movement.")
    True
    """
    look = get_look(style)
    if not look.descriptions:
        return classic
    return f"{look.descriptions[scenario]} {STATIC_SHOT}"


# ---------------------------------------------------------------------------------------------- the renderer


def world_grid(x0: float, y0: float, scale: float, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """World coordinates ``(wx, wy)`` in metres of every pixel centre of a camera (the inverse of its ``to_px``).

    >>> wx, wy = world_grid(0.0, 0.0, 10.0, 2, 3)
    >>> wx[0].tolist(), wy[:, 0].tolist()
    ([0.05000000074505806, 0.15000000596046448, 0.25], [0.15000000596046448, 0.05000000074505806])
    """
    cols = (np.arange(width, dtype=np.float32) + 0.5) / scale + x0
    rows = (height - np.arange(height, dtype=np.float32) - 0.5) / scale + y0
    return np.broadcast_to(cols[None, :], (height, width)), np.broadcast_to(rows[:, None], (height, width))


__all__ = [
    "DEFAULT_STYLE",
    "LOOKS",
    "Look",
    "ObjectLook",
    "StaticLook",
    "describe",
    "get_look",
    "wood_texture",
    "world_grid",
]
