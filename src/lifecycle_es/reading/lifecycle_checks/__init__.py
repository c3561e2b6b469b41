"""Checks over the lifecycle as of any time: gaps between teams and the health score."""

from lifecycle_es.reading.lifecycle_checks.gaps import KINDS, Gap, find_gaps
from lifecycle_es.reading.lifecycle_checks.health import FactorScore, Health, health_scores

__all__ = ["KINDS", "FactorScore", "Gap", "Health", "find_gaps", "health_scores"]
