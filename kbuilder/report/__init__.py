"""Report: per-layer rows and totals, renderers, and the `expect` checker."""

from kbuilder.report.check import compare
from kbuilder.report.render import RENDERERS
from kbuilder.report.rows import Report, Row, make_report

__all__ = ["RENDERERS", "Report", "Row", "compare", "make_report"]
