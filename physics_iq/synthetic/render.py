"""Rendering a simulated world through a static camera: textured background, objects, lighting, sensor noise.

Three cameras per scenario (``perspective-left|center|right``) look at the same world with a different crop,
zoom and offset. Everything static (wall texture, table, ramps, containers) is drawn once into a per-camera
background in muted colours; moving objects are flat saturated colours (one per object id) so they can be
found by colour; a mild lighting field and per-frame sensor noise are applied last so that a motion mask sees
the objects and the shadows, not the background.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from physics_iq.synthetic.looks import (
    CLASSIC,
    DEFAULT_STYLE,
    Look,
    ObjectLook,
    StaticLook,
    get_look,
    wood_texture,
    world_grid,
)
from physics_iq.synthetic.world import (
    MUTED,
    TABLE_Y,
    Circle,
    Colour,
    Decor,
    Glow,
    Line,
    ObjectFrame,
    Particles,
    Polygon,
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


#: Crop of each perspective in world metres ``(x0, y0, view width)`` in the classic look; the centre view sees
#: the whole scene. Other looks frame the scene their own way (:attr:`physics_iq.synthetic.looks.Look.views`).
VIEWS: dict[str, tuple[float, float, float]] = CLASSIC.views


def camera_for(perspective: str, size: tuple[int, int], style: str = DEFAULT_STYLE) -> Camera:
    """The camera of one perspective at frame size ``(width, height)`` in the look ``style``."""
    x0, y0, view_w = get_look(style).views[perspective]
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
        return finish(img, self.light, self.noise, self.noise_rng)


def finish(img: np.ndarray, light: Any, noise_bank: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Light falloff, then one of the bank's sensor-noise fields (flipped by the draw, so 4x as many differ),
    rounded to uint8. ``img`` (float32) is changed in place. The draw comes from ``rng`` alone, so a frame's
    noise does not depend on what else was rendered."""
    pick = int(rng.integers(0, len(noise_bank) * 4))
    noise = noise_bank[pick // 4]
    if pick & 1:
        noise = noise[::-1]
    if pick & 2:
        noise = noise[:, ::-1]
    img *= light
    img += noise
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


_MUTED_NAMES = {colour: name for name, colour in MUTED.items()}


def _support_top(statics: list[StaticItem], x: float, below: float) -> float:
    """Height of the highest fixed surface at ``x`` that lies below ``below`` (the table top at least)."""
    best = TABLE_Y
    for item in statics:
        if not item.surface or not isinstance(item.shape, Polygon):
            continue
        pts = item.shape.points
        for (ax, ay), (bx, by) in zip(pts, pts[1:] + pts[:1], strict=True):
            if min(ax, bx) <= x <= max(ax, bx) and ax != bx:
                y = ay + (by - ay) * (x - ax) / (bx - ax)
                if best < y <= below + 1e-3:
                    best = y
    return best


class StyledRenderer:
    """Renders one take seen by one camera in a non-classic look (same interface as ``FrameRenderer``).

    Args:
        look: The look.
        cam: The camera (a :class:`physics_iq.synthetic.render.Camera`).
        statics: The fixed geometry.
        colours: Object id -> classic colour (used to tell which object a reflection shows).
        scene_rng: Seeds the room's textures (shared by both takes of a view).
        noise_rng: Seeds the sensor noise (differs between takes).
    """

    def __init__(
        self,
        look: Look,
        cam: Camera,
        statics: list[StaticItem],
        colours: dict[str, Colour],
        scene_rng: np.random.Generator,
        noise_rng: np.random.Generator,
    ) -> None:
        if look.paint_room is None:
            raise ValueError(f"look {look.name!r} has no room painter; the classic look uses FrameRenderer")
        self.look, self.cam = look, cam
        self.statics = statics
        h, w = cam.height, cam.width
        self.wx, self.wy = world_grid(cam.x0, cam.y0, cam.scale, h, w)
        self.by_colour = {colour: oid for oid, colour in colours.items()}
        img = look.paint_room(self.wx, self.wy, scene_rng)
        for item in statics:
            if item.name != "table":  # the look paints its own table over the same box (below TABLE_Y)
                self._static(img, item, scene_rng)
        self.bg = img
        u = self.wx / max(float(self.wx.max() - self.wx.min()), 1e-6)
        v = (self.wy - float(self.wy.min())) / max(float(self.wy.max() - self.wy.min()), 1e-6)
        u = u - float(u.mean())
        light = 1.0 + 0.07 * look.light_from * u + 0.05 * (v - 0.5) - 0.1 * (u * u + (v - 0.5) ** 2)
        self.light = light[..., None].astype(np.float32)
        self.noise = noise_rng.normal(0, look.noise_sigma, (6, h, w, 3)).astype(np.float32)
        self.noise_rng = noise_rng

    # -- fixed geometry
    def _static(self, img: np.ndarray, item: StaticItem, rng: np.random.Generator) -> None:
        name = _MUTED_NAMES.get(item.colour)
        if name is None:  # a scenario-specific shade (the shelf's reflection): darken the look's wood
            wood = self.look.statics["wood"].rgb
            style = StaticLook((int(wood[0] * 0.55), int(wood[1] * 0.55), int(wood[2] * 0.55)), "grain")
        else:
            style = self.look.statics[name]
        mask = np.zeros(img.shape[:2], np.float32)
        draw_shape(mask, self.cam, item.shape, (1.0,))
        if style.texture == "grain":
            paint = wood_texture(self.wx, self.wy, style.rgb, rng, scale=0.7)
        elif style.texture == "brushed":
            paint = (
                np.asarray(style.rgb, np.float32)[None, None, :]
                * (1.0 + 0.05 * np.sin(self.wx * 400.0))[..., None]
            )
        elif style.texture == "glass":
            paint = img * 0.6 + np.asarray(style.rgb, np.float32) * 0.4
        else:
            paint = np.broadcast_to(np.asarray(style.rgb, np.float32), img.shape)
        img += (paint - img) * mask[..., None]

    # -- moving things
    def _object_mask(self, shape: Shape) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
        mask = np.zeros(self.wx.shape, np.float32)
        draw_shape(mask, self.cam, shape, (1.0,))
        rows, cols = np.nonzero(mask > 0)
        if rows.size == 0:
            return None
        return mask, (int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1)

    def _paint_object(self, img: np.ndarray, obj: ObjectFrame, style: ObjectLook) -> None:
        shape = obj.shape
        if isinstance(shape, Particles):
            for k, centre in enumerate(shape.centres):
                tone = 0.85 + 0.3 * ((k * 37) % 11) / 10.0 if style.pattern == "spots" else 1.0
                tint = tuple(float(min(255.0, c * tone)) for c in style.rgb)
                draw_shape(img, self.cam, Circle((float(centre[0]), float(centre[1])), shape.radius), tint)
            return
        found = self._object_mask(shape)
        if found is None:
            return
        mask, (r0, r1, c0, c1) = found
        wx, wy = self.wx[r0:r1, c0:c1], self.wy[r0:r1, c0:c1]
        cx, cy = obj.centroid
        base = np.asarray(style.rgb, np.float32)
        side = self.look.light_from
        if isinstance(shape, Circle):
            r = shape.radius
            dx, dy = (wx - cx) / r, (wy - cy) / r
            nz = np.sqrt(np.clip(1.0 - dx * dx - dy * dy, 0.0, 1.0))
            lx, ly, lz = 0.45 * side, 0.55, 0.7
            lambert = np.clip(dx * lx + dy * ly + nz * lz, 0.0, 1.0)
            colour = base * (0.45 + 0.65 * lambert)[..., None]
            if style.pattern == "seam":
                seam = np.abs(dy - 0.35 * np.sin(dx * 3.0 + 1.0)) < 0.09
                colour[seam] = np.asarray(style.accent, np.float32) * (0.5 + 0.5 * lambert[seam])[..., None]
            elif style.pattern == "stripes":
                bands = (np.abs(dx) < 0.07) | (np.abs(dy) < 0.07)
                colour[bands] = np.asarray(style.accent, np.float32)
            spec = np.clip(dx * lx + dy * ly + nz * lz, 0.0, 1.0) ** 24
            colour += 150.0 * spec[..., None]
        else:
            pts = np.asarray(shape.points)
            axis = pts[1] - pts[0]
            axis = axis / max(float(np.hypot(*axis)), 1e-9)
            u = (wx - cx) * axis[0] + (wy - cy) * axis[1]
            v = -(wx - cx) * axis[1] + (wy - cy) * axis[0]
            half = max(float(np.abs(v[mask[r0:r1, c0:c1] > 0.5]).max(initial=1e-3)), 1e-3)
            colour = base * (0.85 + 0.2 * np.clip(v / half, -1, 1))[..., None]
            if style.pattern == "stripes":
                colour[np.mod(u, 0.04) < 0.012] = np.asarray(style.accent, np.float32)
            elif style.pattern == "grain":
                colour *= (1.0 + 0.12 * np.sin(u * 90.0 + 2.0 * np.sin(v * 60.0)))[..., None]
            elif style.pattern == "pips":
                long_axis = np.abs(u).max() < np.abs(v).max()
                along, across = (v, u) if long_axis else (u, v)
                for k in (-1, 1):
                    pip = (along - k * half * 0.45) ** 2 + across**2 < (0.006 + 0.05 * half) ** 2
                    colour[pip] = np.asarray(style.accent, np.float32)
            # A darker rim: edges of real objects catch less light.
            inner = cv2.erode((mask[r0:r1, c0:c1] > 0.5).astype(np.uint8), np.ones((3, 3), np.uint8))
            colour[(inner == 0)] *= 0.8
        alpha = mask[r0:r1, c0:c1, None]
        patch = img[r0:r1, c0:c1]
        patch += (colour - patch) * alpha

    def _shadow(self, img: np.ndarray, obj: ObjectFrame) -> None:
        """A soft contact shadow on the surface below a solid object, fainter and wider the higher it is."""
        if isinstance(obj.shape, Particles):
            return
        (lo_x, lo_y), (hi_x, _) = shape_bounds(obj.shape)
        x = obj.centroid[0]
        top = _support_top(self.statics, x, lo_y)
        height = max(lo_y - top, 0.0)
        strength = 0.45 * math.exp(-height / 0.25)
        if strength < 0.03:
            return
        half_w = (hi_x - lo_x) / 2 * (1.0 + 1.5 * height) + 0.01
        offset = -self.look.light_from * 0.3 * height
        ellipse = ((self.wx - x - offset) / half_w) ** 2 + ((self.wy - top) / 0.012) ** 2
        shade = np.clip(1.0 - ellipse, 0.0, 1.0) * strength
        img *= (1.0 - shade)[..., None]

    def _decor(self, img: np.ndarray, item: Decor) -> None:
        if isinstance(item, Line):
            item = Line(item.a, item.b, item.width, self.look.tool)
        elif isinstance(item, Reflection):
            oid = self.by_colour.get(item.colour)
            rgb = self.look.objects[oid].rgb if oid is not None and oid in self.look.objects else item.colour
            item = Reflection(item.shape, rgb, item.alpha, item.clip)
        elif isinstance(item, Glow) and item.colour == MUTED["rod"]:
            item = Glow(item.centre, item.radius, self.look.tool)
        _draw_decor(img, self.cam, item)

    def render(self, frame: WorldFrame) -> np.ndarray:
        """One ``(H, W, 3)`` uint8 RGB frame."""
        img = self.bg.copy()
        for item in frame.decor_below:
            self._decor(img, item)
        for obj in frame.objects:
            self._shadow(img, obj)
        for obj in frame.objects:
            self._paint_object(img, obj, self.look.objects[obj.id])
        for item in frame.decor_above:
            self._decor(img, item)
        return finish(img, self.light, self.noise, self.noise_rng)


def make_renderer(
    style: str,
    cam: Camera,
    statics: list[StaticItem],
    colours: dict[str, Colour],
    scene_rng: np.random.Generator,
    noise_rng: np.random.Generator,
    perspective_index: int,
) -> FrameRenderer | StyledRenderer:
    """The renderer of one take and camera in the look ``style`` (the classic look keeps its own renderer, so
    its frames stay exactly what they always were)."""
    look = get_look(style)
    if look.paint_room is None:
        return FrameRenderer(cam, statics, colours, scene_rng, noise_rng, perspective_index)
    return StyledRenderer(look, cam, statics, colours, scene_rng, noise_rng)


def object_colours(style: str, colours: dict[str, Colour]) -> dict[str, Colour]:
    """Object id -> the colour it is painted in under ``style`` (the base colour for shaded objects)."""
    look = get_look(style)
    return {oid: look.objects[oid].rgb if oid in look.objects else colour for oid, colour in colours.items()}
