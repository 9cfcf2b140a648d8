"""The refinement agent: the LangGraph graph, VLM backends and the ``physrefine`` CLI."""
