"""A program that stands in for a GPU video model by its latency, for the ``command`` generator in tests.

``python slow_clip.py IMAGE OUTPUT SEED FRAMES FPS SLEEP MARKERS``: first touches
``MARKERS/started-<parent pid>-<pid>-<seed>`` (the parent is the process that runs the generator, e.g. a Ray
actor, so a test can tell which one is generating), sleeps ``SLEEP`` seconds, then writes ``FRAMES`` frames
at ``FPS``: the switch frame ``IMAGE`` rolled sideways by ``seed + 1`` pixels per frame. The same arguments
always give the same video.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> None:
    image, output, seed, frames, fps, sleep, markers = argv
    folder = Path(markers)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"started-{os.getppid()}-{os.getpid()}-{seed}").touch()
    time.sleep(float(sleep))

    import cv2
    import numpy as np

    from physics_iq.video import write_video

    frame = cv2.cvtColor(cv2.imread(image), cv2.COLOR_BGR2RGB)
    step = int(seed) + 1
    clip = np.stack([np.roll(frame, step * t, axis=1) for t in range(1, int(frames) + 1)])
    write_video(output, clip, float(fps))


if __name__ == "__main__":
    main(sys.argv[1:])
