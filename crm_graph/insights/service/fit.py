"""The BG/NBD purchase model and the Gamma-Gamma spend model: likelihoods, fits, predictions.

Pure numerics over numpy arrays (no database, no GraphQL): ``summary.py`` reads the inputs from
the orders in SQL, ``runs.py`` stores what comes out.

BG/NBD (Fader, Hardie and Lee 2005, "Counting your customers the easy way"). While alive, a
customer buys as a Poisson process of rate lambda ~ Gamma(r, alpha); after each purchase they
drop out with probability p ~ Beta(a, b). A customer is summarised by ``x`` repeat purchases,
the time ``t_x`` of the last one and their age ``T`` (both measured from the first purchase).
The likelihood of one customer (the paper's equation 6) is

    L = B(a, b+x)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+T)^(r+x))
      + [x > 0] B(a+1, b+x-1)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x))

computed here in log space (``logaddexp`` of the two terms), so customers with many purchases
neither overflow nor underflow.

Gamma-Gamma (Fader, Hardie and Lee 2005, "RFM and CLV: using iso-value curves"; the spend
part as in Fader and Hardie's note "The Gamma-Gamma model of monetary value"). The value of
each transaction is Gamma(p, nu) with nu ~ Gamma(q, gamma) across customers, so the mean
``m`` of a customer's ``x`` repeat transactions has the density

    f(m | x) = G(px+q) / (G(px) G(q)) * gamma^q m^(px-1) x^(px) / (gamma + m x)^(px+q)

Both are fitted by maximum likelihood with scipy's L-BFGS-B on the logarithms of the
parameters (they are all positive), with the analytic gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import betaincinv, betaln, expit, gammaln, hyp2f1, psi

Array = NDArray[np.float64]


class FitFailed(ValueError):
    """The optimiser found no maximum (the data cannot pin the parameters down)."""


@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    gamma: float
    log_likelihood: float

    @property
    def population_mean(self) -> float:
        """The mean transaction value across customers, p gamma / (q - 1); finite only for q > 1."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else float("inf")


def _arrays(*values: ArrayLike) -> list[Array]:
    return [np.asarray(v, dtype=np.float64) for v in values]


# --- BG/NBD ------------------------------------------------------------------------------------


def bgnbd_log_likelihood(
    params: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, weights: ArrayLike | None = None
) -> tuple[float, Array]:
    """The log-likelihood of (r, alpha, a, b) and its gradient with respect to them."""
    r, alpha, a, b = (float(v) for v in np.asarray(params, dtype=np.float64))
    x, t_x, T = _arrays(x, t_x, T)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    repeat = x > 0
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    base = betaln(a, b)
    term1 = betaln(a, b + x) - base - (r + x) * np.log(alpha + T)
    # The second term exists only for repeat buyers; b + x - 1 >= b there, so it is defined.
    xr = np.where(repeat, x, 1.0)
    term2 = np.where(repeat, betaln(a + 1, b + xr - 1) - base - (r + x) * np.log(alpha + t_x), -np.inf)
    mixed = np.logaddexp(term1, term2)
    ll = float(np.sum(w * (common + mixed)))

    share1 = np.exp(term1 - mixed)  # each term's share of the customer's likelihood
    share2 = 1.0 - share1
    d_r = psi(r + x) - psi(r) + np.log(alpha) - share1 * np.log(alpha + T) - share2 * np.log(alpha + t_x)
    d_alpha = r / alpha - share1 * (r + x) / (alpha + T) - share2 * (r + x) / (alpha + t_x)
    d_base_a, d_base_b = psi(a) - psi(a + b), psi(b) - psi(a + b)
    d1_a = psi(a) - psi(a + b + x) - d_base_a
    d1_b = psi(b + x) - psi(a + b + x) - d_base_b
    d2_a = psi(a + 1) - psi(a + b + xr) - d_base_a
    d2_b = psi(b + xr - 1) - psi(a + b + xr) - d_base_b
    d_a = share1 * d1_a + np.where(repeat, share2 * d2_a, 0.0)
    d_b = share1 * d1_b + np.where(repeat, share2 * d2_b, 0.0)
    grad = np.array([np.sum(w * d) for d in (d_r, d_alpha, d_a, d_b)])
    return ll, grad


def fit_bgnbd(x: ArrayLike, t_x: ArrayLike, T: ArrayLike, weights: ArrayLike | None = None) -> BgNbd:
    """Maximum-likelihood (r, alpha, a, b). ``weights`` counts customers sharing one (x, t_x, T)."""
    x, t_x, T = _arrays(x, t_x, T)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    total = float(np.sum(w))
    # Time is measured in units of the average age while fitting, so the optimiser sees the
    # same numbers whether the run counts days or weeks (alpha, a time scale, is rescaled
    # after). Where the likelihood is nearly flat, a run in days and one in weeks then still
    # stop at the same point.
    scale = max(float(np.sum(w * T) / total), 1e-3)
    t_s, T_s = t_x / scale, T / scale
    start = np.zeros(4)

    def objective(theta: Array) -> tuple[float, Array]:
        params = np.exp(theta)
        ll, grad = bgnbd_log_likelihood(params, x, t_s, T_s, w)
        return -ll / total, -grad * params / total

    result = _minimise(objective, start)
    r, alpha, a, b = np.exp(result.x)
    alpha *= scale
    ll, _ = bgnbd_log_likelihood((r, alpha, a, b), x, t_x, T, w)
    return BgNbd(float(r), float(alpha), float(a), float(b), ll)


def probability_alive(model: BgNbd, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """P(alive | x, t_x, T) = 1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))."""
    x, t_x, T = _arrays(x, t_x, T)
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    xr = np.where(x > 0, x, 1.0)
    log_odds_dead = np.log(a) - np.log(b + xr - 1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(x > 0, expit(-log_odds_dead), 1.0)


def expected_purchases(model: BgNbd, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """E[purchases in (T, T+t] | x, t_x, T], the paper's equation 10: P(alive) times the
    purchases expected of a customer who is alive (``_expected_if_alive``)."""
    t, x, t_x, T = np.broadcast_arrays(*_arrays(t, x, t_x, T))
    return _expected_if_alive(model, t, x, T) * probability_alive(model, x, t_x, T)


def expected_purchases_new(model: BgNbd, t: ArrayLike) -> Array:
    """E[X(t)] for a customer just acquired (the paper's equation 9)."""
    (t,) = _arrays(t)
    zero = np.zeros_like(t)
    return _expected_if_alive(model, t, zero, zero)


def _expected_if_alive(model: BgNbd, t: Array, x: Array, T: Array) -> Array:
    """(a+b+x-1)/(a-1) [1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)], z = t/(alpha+T+t).

    The paper writes the factor as (1-z)^(r+x) 2F1(r+x, b+x; a+b+x-1; z); Euler's transformation
    gives the form above, whose terms do not grow with x. scipy's hyp2f1 still returns inf or
    nan in parts of the parameter space (large a or b, z near 1), and there the value is the
    same expectation integrated numerically (``_by_quadrature``). Both are checked against the
    bounds every answer obeys: 0 <= E <= E[rate] t = (r+x) t / (alpha+T).
    """
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    z = t / (alpha + T + t)
    with np.errstate(all="ignore"):
        series = np.exp((a - 1) * np.log1p(-z)) * hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
        value = (a + b + x - 1) / (a - 1) * (1 - series)
    bound = (r + x) * t / (alpha + T)
    bad = ~np.isfinite(value) | (value < -1e-12) | (value > bound * (1 + 1e-9) + 1e-12)
    if np.any(bad):
        value = np.array(value, dtype=np.float64, copy=True)
        value[bad] = _by_quadrature(model, t[bad], x[bad], T[bad])
    return np.clip(value, 0.0, bound)


# Composite Gauss-Legendre over the quantiles of the dropout probability: panels shrink
# geometrically towards both ends, where a Beta with a or b below 1 puts its weight.
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(16)
_EDGES = np.concatenate([[0.0], np.geomspace(1e-12, 0.5, 25), 1 - np.geomspace(0.5, 1e-12, 25)[1:], [1.0]])
_LOW, _HIGH = _EDGES[:-1, None], _EDGES[1:, None]
QUANTILES = (_LOW + (_HIGH - _LOW) * (_NODES + 1) / 2).ravel()
QUANTILE_WEIGHTS = ((_HIGH - _LOW) / 2 * _WEIGHTS).ravel()


def _by_quadrature(model: BgNbd, t: Array, x: Array, T: Array) -> Array:
    """The same expectation as E over p ~ Beta(a, b+x) of (1 - (1 + p t/(alpha+T))^-(r+x)) / p
    (the purchase rate, Gamma(r+x, alpha+T) for a customer alive at T, integrated out),
    integrated over the quantiles of p, which the Beta's shape cannot make hard to resolve."""
    out = np.empty_like(t)
    for value in np.unique(x):
        rows = x == value
        p = betaincinv(model.a, model.b + value, QUANTILES)[None, :]
        s = (t[rows] / (model.alpha + T[rows]))[:, None]
        k = model.r + value
        with np.errstate(all="ignore"):
            h = np.where(p > 0, -np.expm1(-k * np.log1p(p * s)) / np.where(p > 0, p, 1.0), k * s)
        out[rows] = h @ QUANTILE_WEIGHTS
    return out


# --- Gamma-Gamma -------------------------------------------------------------------------------


def gamma_gamma_log_likelihood(params: ArrayLike, x: ArrayLike, m: ArrayLike) -> tuple[float, Array]:
    """The log-likelihood of (p, q, gamma) over repeat buyers (x > 0, m > 0) and its gradient."""
    p, q, g = (float(v) for v in np.asarray(params, dtype=np.float64))
    x, m = _arrays(x, m)
    px = p * x
    log_gm = np.log(g + m * x)
    ll = gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(g) + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * log_gm
    d_p = x * (psi(px + q) - psi(px) + np.log(m) + np.log(x) - log_gm)
    d_q = psi(px + q) - psi(q) + np.log(g) - log_gm
    d_g = q / g - (px + q) / (g + m * x)
    return float(np.sum(ll)), np.array([np.sum(d_p), np.sum(d_q), np.sum(d_g)])


def fit_gamma_gamma(x: ArrayLike, m: ArrayLike) -> GammaGamma:
    """Maximum-likelihood (p, q, gamma) from each repeat buyer's repeat purchases and mean spend."""
    x, m = _arrays(x, m)
    n = len(x)
    start = np.log([1.0, 1.0, max(float(np.mean(m)), 1e-6)])

    def objective(theta: Array) -> tuple[float, Array]:
        params = np.exp(theta)
        ll, grad = gamma_gamma_log_likelihood(params, x, m)
        return -ll / n, -grad * params / n

    result = _minimise(objective, start)
    p, q, g = np.exp(result.x)
    ll, _ = gamma_gamma_log_likelihood((p, q, g), x, m)
    return GammaGamma(float(p), float(q), float(g), ll)


def expected_spend(model: GammaGamma, x: ArrayLike, m: ArrayLike) -> Array:
    """E[value of a transaction | x, m]: a weighted mean of the population mean and the
    customer's own mean, ((q-1) * p gamma/(q-1) + p x * m) / (p x + q - 1). For customers
    without repeat purchases (x = 0) it is the population mean."""
    x, m = _arrays(x, m)
    p, q, g = model.p, model.q, model.gamma
    return (p * g + p * x * np.where(x > 0, m, 0.0)) / (p * x + q - 1)


# --- lifetime value ------------------------------------------------------------------------------

STEP_DAYS = 30  # CLV adds up expected purchases period by period; each period is discounted at its end


def clv(
    purchases: BgNbd, spend: GammaGamma, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, m: ArrayLike,
    *, horizon_days: int, discount_rate: float, days_per_unit: float,
) -> Array:
    """Discounted expected revenue over the next ``horizon_days``.

    The horizon is cut into 30-day periods (the last may be shorter); the purchases expected in
    each, times the expected spend per purchase, are discounted at the annual ``discount_rate``
    to the end of the period: sum_k spend * (E[Y(t_k)] - E[Y(t_k-1)]) / (1 + d)^(t_k / 365).
    """
    x, t_x, T, m = _arrays(x, t_x, T, m)
    value = expected_spend(spend, x, m)
    total = np.zeros_like(x)
    before = np.zeros_like(x)
    ends = list(range(STEP_DAYS, horizon_days, STEP_DAYS)) + [horizon_days]
    for end in ends:
        upto = expected_purchases(purchases, end / days_per_unit, x, t_x, T)
        total += value * (upto - before) / (1 + discount_rate) ** (end / 365)
        before = upto
    return total


# Parameters stay within [e^-12, e^12] (6e-6 to 1.6e5). When the data show no spread in how
# quickly customers drop out, the likelihood keeps rising as a and b grow together (a fixed
# dropout probability a/(a+b) for everyone); the fit then stops at the bound, where the model
# is that limit to any precision the data can tell.
LOG_BOUND = 12.0


def _minimise(objective, start: Array):  # type: ignore[no-untyped-def]
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(start)
    with np.errstate(all="ignore"):
        result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds,
                          options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9})
    if not np.all(np.isfinite(result.x)) or not np.isfinite(result.fun):
        raise FitFailed("the likelihood has no maximum for these customers")
    return result
