"""Maximum likelihood for the prediction models: the positive parameters are optimised on
the log scale with ``scipy.optimize.minimize`` (L-BFGS-B), each within [1e-6, 1e6]. A
parameter that ends at a bound means the likelihood has no maximum inside (a history that
does not look like the model: nobody seems to stop buying, say): not converged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize

P = TypeVar("P")
#: the models' vectors: one number per customer
Array = NDArray[np.float64]
#: the bounds of every parameter's logarithm
_BOUNDS = (-np.log(1e6), np.log(1e6))


@dataclass(frozen=True)
class Fit(Generic[P]):
    """A model's fitted parameters, its maximised log-likelihood, the customers it was
    fitted on and whether the optimiser converged."""

    params: P
    log_likelihood: float  # at the parameters
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

    result = minimize(loss, np.zeros(n), method="L-BFGS-B", bounds=[_BOUNDS] * n,
                      options={"maxiter": 5_000, "ftol": 1e-12, "gtol": 1e-8})
    params = np.exp(result.x)
    inside = bool(np.all(np.abs(result.x) < _BOUNDS[1] - 1e-3))
    return Fit(build(params), -float(result.fun), customers,
               bool(result.success) and result.fun < 1e300 and inside)
