"""Maximum likelihood for the prediction models: the positive parameters are optimised on
the log scale with ``scipy.optimize.minimize`` (L-BFGS-B, to its default tolerance)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize

P = TypeVar("P")


@dataclass(frozen=True)
class Fit(Generic[P]):
    """A model's fitted parameters, its maximised log-likelihood, the customers it was
    fitted on and whether the optimiser converged."""

    params: P
    log_likelihood: float
    customers: int
    converged: bool


def maximise(log_likelihood: Callable[[NDArray[np.float64]], float], n: int,
             build: Callable[[NDArray[np.float64]], P], customers: int) -> Fit[P]:
    """The ``n`` positive parameters maximising ``log_likelihood``, built by ``build``;
    started at 1 each, as ``lifetimes`` starts."""

    def loss(log_params: NDArray[np.float64]) -> float:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            value = -log_likelihood(np.exp(log_params))
        return value if np.isfinite(value) else 1e300

    result = minimize(loss, np.zeros(n), method="L-BFGS-B",
                      options={"maxiter": 5_000, "ftol": 1e-12, "gtol": 1e-8})
    params = np.exp(result.x)
    return Fit(build(params), -float(result.fun), customers,
               bool(result.success) and bool(np.isfinite(result.fun)))
