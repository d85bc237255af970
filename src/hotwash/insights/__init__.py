"""Insights: MTTD / MTTC / MTTR, recurrences and the growth of the safety net, with their charts."""

from hotwash.insights.metrics import compute

__all__ = ["compute"]
