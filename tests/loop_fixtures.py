"""Running the refinement graph on one in-memory scene, for graph-level tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.graph import LoopContext, LoopSettings, build_graph
from agent.pool import LocalGeneratorPool
from agent.reasoning import Reasoner, Scene
from agent.selection import build_selector
from generators.base import Generator


@dataclass
class OneScene:
    """The same scene and folder for every take-1 ID."""

    scene_: Scene
    folder: Path

    def scene(self, take1_id: int) -> Scene:
        return self.scene_

    def scenario_dir(self, take1_id: int) -> Path:
        return self.folder

    def context(self, take1_id: int) -> dict[str, Any]:
        return {}


def loop_context(
    reasoner: Reasoner,
    generator: Generator,
    scene: Scene,
    folder: Path,
    trace: Any = None,
    selector: str = "critic",
    **settings: Any,
) -> LoopContext:
    """A context for ``build_graph().invoke({"take1_id": 1}, context=...)``."""
    return LoopContext(
        reasoner=reasoner,
        generators=LocalGeneratorPool.of(generator),
        generator_id="fake",
        scenes=OneScene(scene, folder),
        settings=LoopSettings(**settings),
        selector=build_selector(selector),
        trace=trace,
    )


def run_loop(context: LoopContext) -> dict[str, Any]:
    """Run the whole graph for one scenario, without a checkpointer; return the final state."""
    return dict(build_graph().invoke({"take1_id": 1}, context=context))
