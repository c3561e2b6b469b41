"""The BG/NBD model (Fader, Hardie & Lee, "Counting Your Customers the Easy Way", Marketing
Science 24(2), 2005): while alive a customer buys at a Poisson rate lambda ~ Gamma(r, alpha); after
each purchase they die with probability p ~ Beta(a, b).

The likelihood, the probability alive and the expected purchases are the paper's equations
(6), (13) and (10), in log space with ``scipy.special`` as the ``lifetimes`` package computes
them. Time is in whatever unit ``recency`` and ``T`` are given in; alpha is in that unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, gammaln, hyp2f1

from lifecycle_es.reading.prediction.fitting import Array, Fit, maximise


@dataclass(frozen=True)
class BgNbd:
    """Fitted BG/NBD parameters."""

    r: float
    alpha: float
    a: float
    b: float

    def p_alive(self, x: Array, t_x: Array, T: Array) -> Array:
        """P(alive at T | x, t_x, T), eq. (13): 1 for a customer with no repeat purchase."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        log_odds_dead = ((r + x) * np.log((alpha + T) / (alpha + t_x))
                         + np.log(a / (b + np.maximum(x, 1) - 1)))
        return np.where(x == 0, 1.0, expit(-log_odds_dead))

    def expected_purchases(self, t: float | Array, x: Array, t_x: Array, T: Array) -> Array:
        """E[purchases in (T, T + t] | x, t_x, T], eq. (10)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        first = (a + b + x - 1) / (a - 1)
        hyp = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
        second = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp
        with np.errstate(over="ignore"):  # long silent after many purchases: dead = inf
            dead = np.where(x > 0, a / (b + np.maximum(x, 1) - 1)
                            * ((alpha + T) / (alpha + t_x)) ** (r + x), 0.0)
        out: Array = first * second / (1 + dead)
        return out

    def time_p_alive_falls_to(self, p: float, x: Array, t_x: Array) -> Array:
        """The T at which :meth:`p_alive` falls to ``p`` (0 < p < 1) for customers with a
        repeat purchase (NaN for the others: their p_alive stays 1), eq. (13) solved for T."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        odds = (1 / p - 1) * (b + np.maximum(x, 1) - 1) / a
        t = (alpha + t_x) * odds ** (1 / (r + x)) - alpha
        return np.where(x > 0, np.maximum(t, t_x), np.nan)


def log_likelihood(params: Array, x: Array, t_x: Array, T: Array, weights: Array) -> float:
    """The BG/NBD log-likelihood, eq. (6), of (r, alpha, a, b) summed over the customers."""
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(b + np.maximum(x, 1) - 1)
                      - (r + x) * np.log(alpha + t_x), -np.inf)
    return float(np.sum(weights * (a1 + a2 + np.logaddexp(a3, a4))))


def fit(x: Array, t_x: Array, T: Array) -> Fit[BgNbd]:
    """(r, alpha, a, b) by maximum likelihood: the customers' (x, t_x, T), equal triples
    weighed once."""
    triples, weights = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
    fx, ftx, fT = triples.T
    w = weights.astype(np.float64)
    return maximise(lambda p: log_likelihood(p, fx, ftx, fT, w), 4,
                    lambda p: BgNbd(*(float(v) for v in p)), len(x))
