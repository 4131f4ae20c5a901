"""The lane fit's one model-order criterion: does one more (or one fewer) source pay?

Every step of the fit (`acquisition.dsp.fitstages`) that adds, splits,
replaces or drops a source compares two nested models on the same samples
with one information criterion, the Bayesian one (BIC): the drop in misfit
a change buys, minus ``k log n`` for the ``k`` parameters it adds (a point
source: 3 position and 3 moment parameters, and 1 for the offset when it is
judged against no source at all), must exceed a bar (`FitConfig.bic_gain`,
or a stricter one where a step says so). The misfit is one of two:

* `rss_drop`: the Gaussian log-likelihood ratio with an unknown sigma,
  ``n log(RSS_old / RSS_new)``, where every sample is judged alike;
* `chi2_drop`: the drop of a chi-square with a sigma per sample (what a
  right model still misfits, `fitcore.misfit_sigma`), Huber-capped on
  magnetic ground.

Physics constraints on a pair of sources (`acquisition.dsp.plausibility`)
and the named drop rules are not model-order criteria; they decide what a
model may hold, this decides how many sources it needs.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["chi2_drop", "information_gain", "pays", "penalised", "prefers", "rss_drop"]


def rss_drop(rss_old: float, rss_new: float, n: int) -> float:
    """Gaussian log-likelihood gain (x 2) from ``rss_old`` to ``rss_new`` on ``n``
    samples with an unknown, common sigma."""
    return n * math.log(max(rss_old, 1e-12) / max(rss_new, 1e-12))


def chi2_drop(r_before: np.ndarray, r_after: np.ndarray, sig2: np.ndarray | float,
              robust: bool, c: float = 2.0) -> float:
    """Drop of the (weighted) misfit from ``r_before`` to ``r_after``.

    Robust (magnetic ground): Huber's loss, quadratic to ``c`` sigma and linear
    beyond, so a few soil grains under the sensor cannot buy a model change.
    """
    def loss(r: np.ndarray) -> float:
        u2 = r * r / sig2
        if not robust:
            return float(np.sum(u2))
        u = np.sqrt(u2)
        return float(np.sum(np.where(u <= c, u2, 2 * c * u - c * c)))

    return loss(r_before) - loss(r_after)


def penalised(drop: float, n: int, k: float) -> float:
    """BIC gain: a misfit ``drop`` less ``k log n`` for ``k`` more parameters
    on ``n`` samples (``k`` < 0 when the larger model has fewer)."""
    return drop - k * math.log(n)


def information_gain(rss_old: float, rss_new: float, n: int, k: int = 7) -> float:
    """BIC gain of a model with ``k`` more parameters (a point source: 3
    position + 3 moment + 1 for the offset it shares) on ``n`` samples,
    judged on the residual sums of squares (`rss_drop`)."""
    return penalised(rss_drop(rss_old, rss_new, n), n, k)


def pays(gain: float, bar: float) -> bool:
    """The criterion: the larger model is preferred when its gain exceeds the bar.
    A NaN gain never pays."""
    return gain > bar


def prefers(drop: float, n: int, k: float, bar: float) -> bool:
    """Whether a model with ``k`` more parameters, whose misfit is ``drop``
    lower on ``n`` samples, is preferred (`penalised`, `pays`)."""
    return pays(penalised(drop, n, k), bar)
