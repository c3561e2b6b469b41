"""Buy-till-you-die prediction for customers without a contract: BG/NBD (probability alive,
expected purchases) and Gamma-Gamma (value per purchase), fitted on the event log as of a
date: ``engine.predict(...)``. Definitions: docs/metrics.md, "Predictive CLV".
"""

from lifecycle_es.reading.prediction.results import (
    CustomerPrediction,
    ModelFit,
    ModelNotFitted,
    MonetaryFit,
    Prediction,
)

__all__ = ["CustomerPrediction", "ModelFit", "ModelNotFitted", "MonetaryFit", "Prediction"]
