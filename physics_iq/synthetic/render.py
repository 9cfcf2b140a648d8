"""Rendering a simulated world through a static camera: textured background, objects, lighting, sensor noise.

Three cameras per scenario (``perspective-left|center|right``) look at the same world with a different crop,
zoom and offset. Everything static (wall texture, table, ramps, containers) is drawn once into a per-camera
background in muted colours; moving objects are flat saturated colours (one per object id) so they can be
found by colour; a mild lighting field and per-frame sensor noise are applied last so that a motion mask sees
the objects and the shadows, not the background.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from physics_iq.synthetic.world import (
    MUTED,
    TABLE_Y,
    Circle,
    Colour,
    Decor,
    Glow,
    Line,
    Particles,
    Reflection,
    Shadow,
    Shape,
    StaticItem,
    WorldFrame,
)

_SHIFT = 4  # OpenCV fixed-point bits: shapes are placed with 1/16 px precision
_ONE = 1 << _SHIFT
#: Standard deviation of the additive sensor noise, in 8-bit levels.
NOISE_SIGMA = 1.6
_NOISE_BANK = 6


@dataclass(frozen=True)
class Camera:
    """An orthographic static camera: the world rectangle ``[x0, x0 + view_w] x [y0, y0 + view_h]`` fills the frame.

    Pixel ``(col, row)`` has its centre at pixel coordinate ``(col, row)``; ``y`` grows downwards.
    """

    x0: float
    y0: float
    view_w: float
    width: int
    height: int

    @property
    def scale(self) -> float:
        """Pixels per metre."""
        return self.width / self.view_w

    def to_px(self, points: np.ndarray) -> np.ndarray:
        """World points ``(..., 2)`` in metres to pixel coordinates ``(..., 2)``.

        >>> Camera(0.0, 0.0, 2.0, 200, 100).to_px(np.array([[0.0, 0.0], [1.0, 0.5]])).tolist()
        [[-0.5, 99.5], [99.5, 49.5]]
        """
        points = np.asarray(points, dtype=np.float64)
        s = self.scale
        x = (points[..., 0] - self.x0) * s - 0.5
        y = self.height - (points[..., 1] - self.y0) * s - 0.5
        return np.stack([x, y], axis=-1)

    def vel_to_px(self, velocity: tuple[float, float]) -> tuple[float, float]:
        """A world velocity (m/s, y up) in pixels per second (y down)."""
        return (velocity[0] * self.scale, -velocity[1] * self.scale)

    def contains(self, shape: Shape) -> bool:
        """Whether the whole shape lies inside the frame."""
        lo, hi = shape_bounds(shape)
        corners = self.to_px(np.array([lo, hi]))
        xs, ys = corners[:, 0], corners[:, 1]
        return bool(
            xs.min() >= -0.5
            and xs.max() <= self.width - 0.5
            and ys.min() >= -0.5
            and ys.max() <= self.height - 0.5
        )


#: Crop of each perspective in world metres ``(x0, y0, view width)``; the centre view sees the whole scene.
VIEWS: dict[str, tuple[float, float, float]] = {
    "perspective-left": (0.0, 0.0, 1.8),
    "perspective-center": (0.0, 0.0, 2.0),
    "perspective-right": (0.25, 0.03, 1.7),
}


def camera_for(perspective: str, size: tuple[int, int]) -> Camera:
    """The camera of one perspective at frame size ``(width, height)``."""
    x0, y0, view_w = VIEWS[perspective]
    return Camera(x0, y0, view_w, size[0], size[1])


def shape_bounds(shape: Shape) -> tuple[tuple[float, float], tuple[float, float]]:
    """Axis-aligned world bounds ``((xmin, ymin), (xmax, ymax))``."""
    if isinstance(shape, Circle):
        (x, y), r = shape.centre, shape.radius
        return (x - r, y - r), (x + r, y + r)
    if isinstance(shape, Particles):
        c, r = shape.centres, shape.radius
        return (float(c[:, 0].min() - r), float(c[:, 1].min() - r)), (
            float(c[:, 0].max() + r),
            float(c[:, 1].max() + r),
        )
    pts = np.asarray(shape.points)
    return (float(pts[:, 0].min()), float(pts[:, 1].min())), (float(pts[:, 0].max()), float(pts[:, 1].max()))


def _fixed(points_px: np.ndarray) -> np.ndarray:
    return np.round(points_px * _ONE).astype(np.int32)


def draw_shape(img: np.ndarray, cam: Camera, shape: Shape, colour: tuple[float, ...]) -> None:
    """Fill a world shape into ``img`` (uint8 or float32, any channel count matching ``colour``)."""
    colour = tuple(float(c) for c in colour)
    if isinstance(shape, Circle):
        centre = _fixed(cam.to_px(np.array(shape.centre)))
        radius = max(round(shape.radius * cam.scale * _ONE), _ONE // 2)
        cv2.circle(img, (int(centre[0]), int(centre[1])), radius, colour, -1, cv2.LINE_AA, _SHIFT)
    elif isinstance(shape, Particles):
        centres = _fixed(cam.to_px(shape.centres))
        radius = max(round(shape.radius * cam.scale * _ONE), _ONE // 2)
        for x, y in centres:
            cv2.circle(img, (int(x), int(y)), radius, colour, -1, cv2.LINE_AA, _SHIFT)
    else:
        pts = _fixed(cam.to_px(np.asarray(shape.points)))
        cv2.fillPoly(img, [pts.reshape(-1, 1, 2)], colour, cv2.LINE_AA, _SHIFT)


def _mask(cam: Camera, shape: Shape) -> np.ndarray:
    mask = np.zeros((cam.height, cam.width), np.float32)
    draw_shape(mask, cam, shape, (1.0,))
    return mask


def _draw_decor(img: np.ndarray, cam: Camera, item: Decor) -> None:
    """Draw one untracked item into a float32 image."""
    if isinstance(item, Line):
        a, b = _fixed(cam.to_px(np.array([item.a, item.b])))
        thickness = max(1, round(item.width * cam.scale))
        cv2.line(
            img,
            (int(a[0]), int(a[1])),
            (int(b[0]), int(b[1])),
            tuple(float(c) for c in item.colour),
            thickness,
            cv2.LINE_AA,
            _SHIFT,
        )
    elif isinstance(item, Shadow):
        mask = _mask(cam, item.shape)
        if item.soft:
            mask = cv2.GaussianBlur(mask, (0, 0), 1.5)  # a penumbra of ~1.5 px
        img *= (1.0 + (item.factor - 1.0) * mask)[..., None]
    elif isinstance(item, Reflection):
        weight = _mask(cam, item.shape) * _mask(cam, item.clip) * item.alpha
        img += (np.asarray(item.colour, np.float32) - img) * weight[..., None]
    elif isinstance(item, Glow):
        mask = _mask(cam, Circle(item.centre, item.radius))
        mask = cv2.GaussianBlur(mask, (0, 0), max(item.radius * cam.scale / 3, 0.8)) * 0.7
        img += (np.asarray(item.colour, np.float32) - img) * mask[..., None]
    else:  # pragma: no cover - the Decor union is closed
        raise TypeError(f"unknown decor item {item!r}")


def background(cam: Camera, statics: list[StaticItem], rng: np.random.Generator) -> np.ndarray:
    """The static, unlit background of one camera: a textured wall, a wooden table, muted fixed geometry.

    Returns:
        ``(H, W, 3)`` float32 RGB in 0..255.
    """
    h, w = cam.height, cam.width
    img = np.empty((h, w, 3), np.float32)
    img[:] = MUTED["wall"]
    table_row = float(cam.to_px(np.array([0.0, TABLE_Y]))[1])
    rows = np.arange(h, dtype=np.float32)[:, None]
    # Low-frequency blotches (plaster) plus fine grain; horizontal streaks below the table line (wood).
    blotch = cv2.resize(rng.normal(0, 1, (6, 10)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0, 1, (h, w)).astype(np.float32)
    streak = np.sin(rows * 2.1 + 3 * cv2.resize(rng.normal(0, 1, (h // 4 + 1, 3)).astype(np.float32), (w, h)))
    wood = (rows > table_row).astype(np.float32) * np.ones((1, w), np.float32)
    img[:] = np.where(wood[..., None] > 0, np.asarray(MUTED["wood"], np.float32), img)
    for item in statics:
        draw_shape(img, cam, item.shape, item.colour)
    texture = 1.0 + 0.05 * blotch + 0.02 * grain + 0.04 * streak * wood
    img *= texture[..., None]
    # A faint tint keeps the background from being perfectly grey without making it colourful.
    img += np.asarray((3, 1, -2), np.float32)
    return np.clip(img, 0, 255)


def lighting(cam: Camera, perspective_index: int) -> np.ndarray:
    """A mild multiplicative light field (0.94-1.03): a vignette plus a gradient from a side lamp."""
    h, w = cam.height, cam.width
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = xs / w - 0.5, ys / h - 0.5
    direction = (-0.6, 0.0, 0.6)[perspective_index % 3]
    field = 1.0 + 0.04 * direction * u - 0.03 * v - 0.08 * (u * u + v * v)
    return field[..., None].astype(np.float32)


class FrameRenderer:
    """Renders the frames of one take seen by one camera.

    Args:
        cam: The camera.
        statics: The fixed geometry.
        colours: Object id -> colour.
        scene_rng: Seeds the background texture (shared by both takes of a view).
        noise_rng: Seeds the sensor noise (differs between takes).
        perspective_index: 0, 1, 2 for left, center, right (sets the light direction).
    """

    def __init__(
        self,
        cam: Camera,
        statics: list[StaticItem],
        colours: dict[str, Colour],
        scene_rng: np.random.Generator,
        noise_rng: np.random.Generator,
        perspective_index: int,
    ) -> None:
        self.cam = cam
        self.colours = colours
        self.bg = background(cam, statics, scene_rng)
        self.light = lighting(cam, perspective_index)
        # A bank of noise fields, picked and flipped per frame: per-frame fresh noise at a fraction of the cost.
        self.noise = noise_rng.normal(0, NOISE_SIGMA, (_NOISE_BANK, cam.height, cam.width, 3)).astype(
            np.float32
        )
        self.noise_rng = noise_rng

    def render(self, frame: WorldFrame) -> np.ndarray:
        """One ``(H, W, 3)`` uint8 RGB frame."""
        img = self.bg.copy()
        for item in frame.decor_below:
            _draw_decor(img, self.cam, item)
        for obj in frame.objects:
            draw_shape(img, self.cam, obj.shape, self.colours[obj.id])
        for item in frame.decor_above:
            _draw_decor(img, self.cam, item)
        pick = int(self.noise_rng.integers(0, _NOISE_BANK * 4))
        noise = self.noise[pick // 4]
        if pick & 1:
            noise = noise[::-1]
        if pick & 2:
            noise = noise[:, ::-1]
        img *= self.light
        img += noise
        return np.clip(img + 0.5, 0, 255).astype(np.uint8)
