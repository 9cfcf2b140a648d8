"""An offline, ground-truth Physics-IQ-style benchmark simulated with a real 2D physics engine (pymunk).

This is a *synthetic stand-in* for the real Physics-IQ recordings, not a recording of the real world: small
worlds simulated with Chipmunk2D (through pymunk), with simple explicit models on top where a rigid-body engine
is not enough (Newton heating and melting, Charles's-law expansion with buoyancy, point-pole magnetic forces,
geometric point-light shadows, planar mirror images). Each scenario is rendered by three static cameras
(``perspective-left|center|right``: different crop, zoom and offset) in two takes (take 2 adds a small
physical perturbation), and written in exactly the official layout (see :mod:`physics_iq.layout`)::

    OUT/descriptions.csv                                   take-1 IDs first, then their take-2 twins
    OUT/split-videos/testing-videos/{fps}FPS/*.mp4          5 s after the switch frame
    OUT/split-videos/conditioning-videos/{fps}FPS/*.mp4     3 s ending at the switch frame
    OUT/switch-frames/*.jpg                                 the last conditioning frame
    OUT/split-videos/*/{fps}FPS/*.state.json                ground truth next to each video
    OUT/synthetic_suite.json                                manifest: arguments, version, SHA-256 per file

Pixels are honest: everything is found from the frames alone, as on real video. The look (``style``, see
:mod:`physics_iq.synthetic.looks`) decides how the same simulated world is filmed: ``classic`` paints flat,
saturated objects (one colour per object id, listed in the state file) on a dark, textured, low-saturation
backdrop under mild lighting with sensor noise; ``cluttered`` and ``room`` put the scene in bright, textured
rooms with decorations and props in saturated colours that never move, paint objects shaded and patterned in
any colour (the state file lists their base colour), add contact shadows and stronger noise, and frame the
scene differently. A seed gives the same physics in every look.

Ground-truth state schema (``physrefine.synthetic.state/1``), one JSON object per video::

    schema                    "physrefine.synthetic.state/1"
    scenario, category        as in descriptions.csv
    perspective, take         "perspective-left|center|right", 1 or 2
    video                     "testing" or "conditioning"
    fps, size, frame_count    frame rate, [width, height], number of frames of the video
    first_frame_index_in_take index of the video's first frame in the 8 s take (0 or 3*fps)
    switch_time_s             time of the switch frame (3 - 1/fps) since the take started
    px_per_m                  scale of this perspective (it depends on the look's framing)
    gravity_px_s2             [0, g * px_per_m]: gravity in this perspective's pixels (y points down)
    objects                   [{id, colour: [r, g, b]}]: every tracked object and its one colour
    static_surfaces           [{name, kind: "polygon", points_px: [[x, y], ...]}] (or kind "circle")
    events                    [{type: "contact", frame, time_s, objects: [a, b]}]: contacts that begin in
                              this video (frame: the first frame showing it; at most one per pair per 0.1 s)
    metric_valid_from_frame   for collisions, the first frame after the contact the scenario declares in
                              ScenarioSpec.metric_from_contact (the trajectory metric is judged from there);
                              null where the whole clip is judged
    frames                    [{index, time_s, objects: [{id, colour, position_px: [x, y],
                                velocity_px_s: [vx, vy], in_view}]}]

Positions are the object's area centroid (the mean of the particle centres for liquids) in pixel coordinates
of that perspective (pixel centres at integers, y down); velocities are the simulator's, in px/s; ``in_view``
is true when the whole object lies inside the frame. Time ``time_s`` counts from the take's first frame.

Example:
    >>> sorted({spec.category for spec in SCENARIOS.values()})
    ['Fluid Dynamics', 'Magnetism', 'Optics', 'Solid Mechanics', 'Thermodynamics']
"""

from physics_iq.synthetic.build import MANIFEST_NAME, STATE_SCHEMA, SuiteError, build_suite, suite_rows
from physics_iq.synthetic.scenarios import SCENARIOS, ScenarioSpec

__all__ = [
    "MANIFEST_NAME",
    "SCENARIOS",
    "STATE_SCHEMA",
    "ScenarioSpec",
    "SuiteError",
    "build_suite",
    "suite_rows",
]
