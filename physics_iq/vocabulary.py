"""Words that the perception, the offline critic and the physics prior must agree on.

The offline critic writes sentences that the physics-prior generator reads back; both name objects by the
colour words of :mod:`physics_iq.motion` and directions by the image axes. Keeping the words here means a
change on one side cannot silently break the other.
"""

from __future__ import annotations

#: Colour names the tracker gives objects, in hue order (OpenCV hue bins, see :func:`physics_iq.motion.colour_name`).
COLOURS: tuple[str, ...] = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "magenta")

#: Image directions as unit vectors ``(dx, dy)``, rows growing downwards.
DIRECTIONS: dict[str, tuple[float, float]] = {
    "right": (1.0, 0.0),
    "left": (-1.0, 0.0),
    "down": (0.0, 1.0),
    "up": (0.0, -1.0),
}

__all__ = ["COLOURS", "DIRECTIONS"]
