"""Motion grounding (shared by the agent and the generators): find and track coloured objects in frames, and describe their motion in words and numbers.

This is classical image processing (HSV saturation threshold + connected components, colour-and-distance
association), not a neural model. It works for scenes whose moving objects have saturated colours on a
low-saturation background (the synthetic suite); on real footage it finds only strongly coloured objects, and
says so by finding none.

The same summary serves three consumers: the offline critic (which checks physics on the tracks), the
physics-prior generator (which estimates the state to extrapolate), and real VLMs, which receive
:meth:`MotionSummary.grounding_text` in their critique prompt (the MASS idea: motion signals in language).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from physics_iq.vocabulary import COLOURS

# Saturation/value floors for "an object pixel": the suite's objects are fully saturated colours while its
# textured background stays below ~60 saturation; 90 leaves margin for H.264 chroma smearing at edges.
SATURATION_MIN = 90
VALUE_MIN = 60
MIN_AREA = 20  # px; smaller blobs are codec fringes at the suite scale (a ball of radius 6 has 113)

_HUE_NAMES = (  # OpenCV hue is 0..179; bins by centre hue
    (8, "red"),
    (20, "orange"),
    (34, "yellow"),
    (80, "green"),
    (100, "cyan"),
    (130, "blue"),
    (150, "purple"),
    (170, "magenta"),
    (180, "red"),
)


def colour_name(hue: float) -> str:
    """Name of an OpenCV hue (0..179).

    >>> colour_name(2), colour_name(60), colour_name(118)
    ('red', 'green', 'blue')
    """
    for upper, name in _HUE_NAMES:
        if hue < upper:
            return name
    return "red"


@dataclass(frozen=True)
class Blob:
    """One coloured object seen in one frame.

    Attributes:
        x: Centroid column (px).
        y: Centroid row (px, downwards).
        area: Pixel count.
        hue: Circular-mean OpenCV hue.
        colour: Colour name of ``hue``.
        bbox: ``(x0, y0, width, height)``.
        label: Index into the frame's label image (for masks).
    """

    x: float
    y: float
    area: int
    hue: float
    colour: str
    bbox: tuple[int, int, int, int]
    label: int

    @property
    def radius(self) -> float:
        """Radius of the disc with the blob's area."""
        return math.sqrt(self.area / math.pi)


# Hue (0..179) -> index into _CLASS_NAMES, precomputed once: comparing small integers per pixel is far
# cheaper than comparing colour-name strings (this runs on every frame of every attempt).
_CLASS_NAMES: tuple[str, ...] = COLOURS
_HUE_CLASS = np.array([_CLASS_NAMES.index(colour_name(h)) for h in range(180)], np.uint8)


def object_mask(frame: np.ndarray, hsv: np.ndarray | None = None) -> np.ndarray:
    """Boolean ``(H, W)`` mask of saturated-colour pixels (candidate object pixels).

    ``hsv`` may pass the frame's OpenCV HSV conversion when the caller has it already.
    """
    if hsv is None:
        hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
    mask = (hsv[..., 1] >= SATURATION_MIN) & (hsv[..., 2] >= VALUE_MIN)
    # Opening removes single-pixel chroma speckles the codec leaves around edges.
    kernel = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))  # symmetric: keeps centroids in place
    opened = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, kernel)
    return opened.astype(bool)


def detect_objects(frame: np.ndarray, min_area: int = MIN_AREA) -> tuple[list[Blob], np.ndarray]:
    """Coloured blobs of one RGB frame, largest first, with the label image.

    >>> img = np.full((40, 40, 3), 128, np.uint8)
    >>> _ = cv2.circle(img, (10, 20), 5, (255, 0, 0), -1)
    >>> blobs, labels = detect_objects(img)
    >>> [(b.colour, round(b.x), round(b.y)) for b in blobs]
    [('red', 10, 20)]
    """
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
    mask = object_mask(frame, hsv)
    hue_px = hsv[..., 0]
    # Components per colour class, so that two touching objects of different colours stay two objects.
    pixel_class = np.where(mask, _HUE_CLASS[hue_px], 255)
    labels = np.zeros(mask.shape, np.int32)
    blobs = []
    next_label = 1
    for index in np.unique(pixel_class).tolist():
        if index == 255:
            continue
        name = _CLASS_NAMES[index]
        part = (pixel_class == index).astype(np.uint8)
        count, comp, stats, centroids = cv2.connectedComponentsWithStats(part, connectivity=8)
        for label in range(1, count):
            area = int(stats[label, cv2.CC_STAT_AREA])
            if area < min_area:
                continue
            inside = comp == label
            hues = hue_px[inside].astype(np.float64) * (2 * math.pi / 180.0)
            # Circular mean: red straddles hue 0/179.
            hue = (math.atan2(np.sin(hues).mean(), np.cos(hues).mean()) % (2 * math.pi)) * 90.0 / math.pi
            x0, y0, w, h = (int(v) for v in stats[label, :4])
            labels[inside] = next_label
            blobs.append(
                Blob(
                    x=float(centroids[label, 0]),
                    y=float(centroids[label, 1]),
                    area=area,
                    hue=float(hue),
                    colour=name,
                    bbox=(x0, y0, w, h),
                    label=next_label,
                )
            )
            next_label += 1
    blobs.sort(key=lambda b: -b.area)
    return blobs, labels


@dataclass
class Track:
    """One object followed through a clip.

    Attributes:
        name: ``"object N (colour)"``.
        colour: Colour name.
        xy: ``(T, 2)`` centroid per frame, NaN where the object was not found.
        radius: Median radius over the frames it was seen in.
    """

    name: str
    colour: str
    xy: np.ndarray
    radius: float

    @property
    def seen(self) -> np.ndarray:
        """Boolean ``(T,)``: frames where the object was found."""
        return ~np.isnan(self.xy[:, 0])


def track_name(index: int, blob: Blob) -> str:
    """The name of the track that follows reference blob ``index`` (``"object 1 (red)"``)."""
    return f"object {index + 1} ({blob.colour})"


def track_objects(frames: np.ndarray, reference: list[Blob] | None = None) -> list[Track]:
    """Follow the coloured objects of a clip.

    Objects are the blobs of ``reference`` (default: the first frame's); in each frame every object takes the
    nearest unclaimed blob of its colour. Distinct colours per object make this unambiguous in the suite.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB.
        reference: The objects to follow (e.g. the switch frame's blobs, so that prefix and continuation
            tracks share names).
    """
    per_frame = [detect_objects(frame)[0] for frame in frames]
    if reference is None:
        reference = per_frame[0] if per_frame else []
    tracks = []
    for index, ref in enumerate(reference):
        tracks.append(
            Track(
                name=track_name(index, ref),
                colour=ref.colour,
                xy=np.full((len(frames), 2), np.nan),
                radius=ref.radius,
            )
        )
    last = [(ref.x, ref.y) for ref in reference]
    for t, blobs in enumerate(per_frame):
        claimed: set[int] = set()
        for k, ref in enumerate(reference):
            best, best_d = None, math.inf
            for j, blob in enumerate(blobs):
                if j in claimed or blob.colour != ref.colour:
                    continue
                d = math.hypot(blob.x - last[k][0], blob.y - last[k][1])
                if d < best_d:
                    best, best_d = j, d
            if best is not None:
                claimed.add(best)
                tracks[k].xy[t] = (blobs[best].x, blobs[best].y)
                last[k] = (blobs[best].x, blobs[best].y)
    return tracks


def mirror_images(blobs: list[Blob], floor_y: float) -> dict[int, int]:
    """``{image index: object index}`` for the blobs that are mirror images of another blob in the ground
    surface (a glossy table).

    A blob below the ground line is a reflection when a blob of its colour stands above the line at the same
    column and the line lies halfway between them: a solid object cannot be below the surface it rests on,
    and a planar mirror puts the image as far below the surface as the object is above it.

    >>> ball = Blob(94.0, 72.0, 300, 0.0, "red", (84, 62, 20, 20), 1)
    >>> image = Blob(94.0, 176.0, 110, 0.0, "red", (88, 170, 12, 12), 2)
    >>> mirror_images([ball, image], floor_y=126.0), mirror_images([ball, image], floor_y=150.0)
    ({1: 0}, {})
    """
    images: dict[int, int] = {}
    for j, low in enumerate(blobs):
        if low.y <= floor_y:
            continue
        for i, high in enumerate(blobs):
            if high is low or high.colour != low.colour or high.y >= floor_y:
                continue
            # Tolerances: half a radius sideways (centroids of a partly hidden image shift), and a radius
            # (at least 6 px) for the mirror line, which the floor detector finds to within a few pixels.
            same_column = abs(high.x - low.x) <= max(3.0, 0.5 * high.radius)
            halfway = abs((high.y + low.y) / 2 - floor_y) <= max(6.0, high.radius)
            if same_column and halfway:
                images[j] = i
                break
    return images


def detect_floor(frame: np.ndarray) -> float:
    """Row of the ground line: the strongest horizontal brightness edge in the lower 40 % of a frame.

    Falls back to the bottom row when no clear edge exists.

    >>> img = np.full((50, 20, 3), 200, np.uint8); img[40:] = 60
    >>> detect_floor(img)
    40.0
    """
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float64)
    rows = gray.mean(axis=1)
    start = int(len(rows) * 0.6)
    jumps = np.abs(np.diff(rows[start:]))
    if jumps.size == 0 or jumps.max() < 12.0:  # 12 grey levels: well above texture noise of a row mean
        return float(len(rows))
    return float(start + int(np.argmax(jumps)) + 1)


def support_surface(background: np.ndarray, floor_y: float, unknown: np.ndarray | None = None) -> np.ndarray:
    """Per column, the row where a falling object would land: the top of the static solid standing on the
    ground line (a ramp, a step, a post), or the ground line itself where nothing stands on it.

    "Solid" is what differs clearly in colour (CIELAB distance) from the backdrop, read from the top 30 % of
    the space above the ground; thin vertical structures (grabber arms, strings: under 7 px wide) are not
    solid. ``unknown`` marks pixels that were not seen (objects inpainted away): a column whose solid top
    touches them takes its height from the neighbouring columns, interpolated across gentle slopes (a ball
    resting on a ramp) and held from the nearer side across cliffs (a ball at the edge of a block).

    >>> img = np.full((60, 40, 3), 60, np.uint8); img[50:] = 170                 # backdrop, floor at row 50
    >>> img[30:50, 30:] = 200; img[10:50, 5:8] = 200                            # a step, and a thin pole
    >>> surface = support_surface(img, floor_y=50.0)
    >>> float(surface[20]), float(surface[35]), float(surface[6])
    (50.0, 30.0, 50.0)
    """
    height, width = background.shape[:2]
    floor = round(min(max(floor_y, 1.0), float(height)))
    surface = np.full(width, float(floor))
    top_rows = max(4, int(0.3 * floor))
    if floor <= top_rows + 2:
        return surface
    lab = cv2.cvtColor(background, cv2.COLOR_RGB2LAB).astype(np.float32)
    backdrop = np.median(lab[:top_rows].reshape(-1, 3), axis=0)
    spread = np.linalg.norm(lab[:top_rows] - backdrop, axis=2)
    # The backdrop's own texture sets the bar; 14 CIELAB units is a clearly visible colour difference.
    threshold = max(14.0, 4.0 * float(np.percentile(spread, 75)))
    solid = (np.linalg.norm(lab[:floor] - backdrop, axis=2) > threshold).astype(np.uint8)
    solid = cv2.morphologyEx(solid, cv2.MORPH_OPEN, np.ones((1, 7), np.uint8))
    solid = cv2.morphologyEx(solid, cv2.MORPH_OPEN, np.ones((3, 1), np.uint8)).astype(bool)
    # The solid run standing on the ground: rows from the floor upwards until the first non-solid row
    # (a gap of up to 2 rows right at the ground line is the antialiased edge, not air).
    above = solid[::-1]  # row 0 = the row just above the floor
    start = np.argmax(above[:3], axis=0)
    starts_solid = above[:3].any(axis=0)
    run = np.zeros(width, int)
    for x in np.flatnonzero(starts_solid):
        column = above[start[x] :, x]
        gap = np.flatnonzero(~column)
        run[x] = start[x] + (gap[0] if gap.size else column.size)
    raised = run >= 3  # a bump of 1-2 rows is codec noise on the ground line
    surface[raised] = floor - run[raised]
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
        name: Track name.
        colour: Colour name.
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


def _fill(values: np.ndarray) -> np.ndarray:
    idx = np.arange(len(values))
    good = ~np.isnan(values)
    if good.sum() == 0:
        return values
    return np.interp(idx, idx[good], values[good])


def fit_velocity(xy: np.ndarray, fps: float, at_end: bool, n: int = 3) -> tuple[float, float]:
    part = xy[-n:] if at_end else xy[:n]
    part = part[~np.isnan(part[:, 0])]
    if len(part) < 2:
        return (0.0, 0.0)
    t = np.arange(len(part)) / fps
    vx = float(np.polyfit(t, part[:, 0], 1)[0])
    vy = float(np.polyfit(t, part[:, 1], 1)[0])
    return (vx, vy)


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
        if b2 - a2 >= 4 and np.all(seen[a2:b2]):
            times = np.arange(a2, b2) / fps
            coeffs = np.polyfit(times, y[a2:b2], 2)
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
    lowest = float(np.nanmax(xy[:, 1]) + track.radius) if seen.any() else float("nan")
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
        """Plain sentences a language model can use, e.g. ``object 1 (red): moving right at 40 px/s ...``."""
        if not self.objects:
            return f"{label}: no saturated-colour objects found by the tracker."
        lines = [
            f"{label} ({self.frame_count} frames at {self.fps:g} fps, floor at y={self.floor_y:.0f} px):"
        ]
        for m in self.objects:
            vx, vy = m.velocity
            words = [f"{m.name}: at the end moving {_direction(vx, vy)}"]
            if _direction(vx, vy) != "still":
                words.append(f"at {math.hypot(vx, vy):.0f} px/s (vx={vx:.0f}, vy={vy:.0f})")
            if m.gravity is not None:
                words.append(
                    f"accelerating {'down' if m.gravity > 0 else 'up'} at {abs(m.gravity):.0f} px/s²"
                )
            if m.bounces:
                frames = ", ".join(str(b) for b in m.bounces)
                words.append(f"bounces at frame(s) {frames}")
                if m.restitution is not None:
                    words.append(f"keeping {100 * m.restitution:.0f}% of its vertical speed")
            if m.speed_change is not None and abs(m.speed_change) > 0.03:
                verb = "slowing down" if m.speed_change < 0 else "speeding up"
                words.append(f"{verb} sideways by {100 * abs(m.speed_change):.0f}% per second")
            if m.stopped_at is not None:
                words.append(f"comes to rest at frame {m.stopped_at}")
            if m.vanished_at is not None:
                words.append(f"disappears at frame {m.vanished_at}")
            lines.append("- " + ", ".join(words) + ".")
        return "\n".join(lines)


def summarise(frames: np.ndarray, fps: float, reference: list[Blob] | None = None) -> MotionSummary:
    """Track and analyse a clip (see :func:`track_objects`, :func:`analyse_track`)."""
    floor_y = detect_floor(frames[-1]) if len(frames) else 0.0
    tracks = track_objects(frames, reference)
    return MotionSummary(
        fps=fps,
        objects=[analyse_track(t, fps, floor_y) for t in tracks],
        floor_y=floor_y,
        frame_count=len(frames),
    )


def switch_velocity_gap(prefix: MotionSummary, continuation: MotionSummary) -> float:
    """How far a continuation's motion jumps at the switch frame: the mean over the prefix's objects of
    ``|start velocity of the continuation - end velocity of the prefix|`` (px/s). Lower is more consistent.

    Objects are matched by track name (both summaries track the switch frame's objects, so names match). The
    velocities are the same local fits the offline critic's velocity-continuity check uses. No objects: 0.

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
