"""The mermaid drawing of the refinement graph in docs/architecture.md is the compiled graph's own drawing.

When the graph changes, regenerate the block with ``PHYSREFINE_UPDATE_DOCS=1 python -m pytest
tests/test_graph_drawing.py`` and review the diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from agent.graph import build_graph

PAGE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
BLOCK = re.compile(r"(<!-- graph: generated -->\n```mermaid\n)(.*?)(```)", re.S)


def drawing() -> str:
    """The compiled graph's mermaid text without its styling lines (they carry no structure)."""
    text = build_graph().get_graph().draw_mermaid()
    lines = [line.rstrip() for line in text.splitlines() if not line.lstrip().startswith(("classDef", "%%"))]
    return "\n".join(line for line in lines if line.strip()) + "\n"


def test_the_documented_graph_is_the_compiled_graph() -> None:
    page = PAGE.read_text(encoding="utf-8")
    match = BLOCK.search(page)
    assert match, f"{PAGE}: no '<!-- graph: generated -->' mermaid block"
    if os.environ.get("PHYSREFINE_UPDATE_DOCS") == "1":
        PAGE.write_text(page[: match.start(2)] + drawing() + page[match.end(2) :], encoding="utf-8")
        return
    assert match.group(2) == drawing(), (
        "docs/architecture.md's graph drawing is out of date: rerun with PHYSREFINE_UPDATE_DOCS=1 and review"
    )


def test_the_drawing_shows_every_node_and_the_loop() -> None:
    text = drawing()
    for node in ("predict", "generate", "critique", "converge", "rewrite", "ensemble", "score"):
        assert f"\t{node}({node})" in text
    assert "rewrite -.-> generate;" in text and "converge -.-> ensemble;" in text
