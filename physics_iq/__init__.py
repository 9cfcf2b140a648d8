"""Physics-IQ data layout, video I/O and evaluator (imports no torch and nothing else of ours).

The evaluator's public names are re-exported lazily, so ``import physics_iq.layout`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Evaluator": "physics_iq.evaluate",
    "FolderResults": "physics_iq.evaluate",
    "compare_clips": "physics_iq.evaluate",
    "MetricValues": "physics_iq.scoring",
    "ViewResult": "physics_iq.scoring",
    "physics_iq_score": "physics_iq.scoring",
    "aggregate": "physics_iq.scoring",
    "motion_masks": "physics_iq.metrics",
    "spatial_iou": "physics_iq.metrics",
    "spatiotemporal_iou": "physics_iq.metrics",
    "weighted_spatial_iou": "physics_iq.metrics",
    "mse": "physics_iq.metrics",
    "validate_generated_folder": "physics_iq.validation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'physics_iq' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
