"""Architecture diagrams: layer graph -> boxes and groups -> DOT -> SVG, PNG or PDF."""

from kbuilder.diagram.structure import Box, Diagram, make_diagram

__all__ = ["Box", "Diagram", "make_diagram"]
