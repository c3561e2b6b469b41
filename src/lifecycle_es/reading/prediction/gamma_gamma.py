"""The Gamma-Gamma model of monetary value (Fader, Hardie & Lee, "RFM and CLV: Using
Iso-Value Curves for Customer Base Analysis", JMR 2005; the note "The Gamma-Gamma Model of
Monetary Value", 2013): a customer's spend per transaction is Gamma(p, nu), nu ~ Gamma(q, gamma),
independent of the purchase process. Fitted on the customers with at least one repeat
transaction, on the mean of their repeat transactions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

from lifecycle_es.reading.prediction.fitting import Array, Fit, maximise


@dataclass(frozen=True)
class GammaGamma:
    """Fitted Gamma-Gamma parameters."""

    p: float
    q: float
    gamma: float

    def expected_spend(self, x: Array, m_x: Array) -> Array:
        """E[spend per transaction | x, m_x]: the population mean p * gamma/(q-1) shrunk towards
        the customer's own mean ``m_x`` as x grows (the population mean for x = 0)."""
        p, q, g = self.p, self.q, self.gamma
        out: Array = p * (g + x * m_x) / (p * x + q - 1)
        return out


def log_likelihood(params: Array, x: Array, m_x: Array) -> float:
    """The Gamma-Gamma log-likelihood of (p, q, gamma) for customers with x >= 1 repeat
    transactions of mean value m_x > 0."""
    p, q, g = params
    px = p * x
    return float(np.sum(gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(g)
                        + (px - 1) * np.log(m_x) + px * np.log(x)
                        - (px + q) * np.log(x * m_x + g)))


def fit(x: Array, m_x: Array) -> Fit[GammaGamma]:
    """(p, q, gamma) by maximum likelihood on customers with x >= 1 and m_x > 0."""
    return maximise(lambda params: log_likelihood(params, x, m_x), 3,
                    lambda params: GammaGamma(*(float(v) for v in params)), len(x))
