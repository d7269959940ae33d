"""Spec -> flat layer graph (pure Python)."""

from kbuilder.graph.expand import expand
from kbuilder.graph.graph import Graph, Node

__all__ = ["Graph", "Node", "expand"]
