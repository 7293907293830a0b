"""The models against the papers: the published CDNOW estimates, and the per-customer
expectations against the closed forms written out again here, independently of the code (the
hypergeometric function as its plain series, in the form the paper prints it)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crm_graph.insights.service import fit
from tests.insights import cdnow

# Fader, Hardie and Lee (2005), "Counting your customers the easy way", CDNOW sample, weeks.
PAPER_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PAPER_LOG_LIKELIHOOD = -9582.4
# The Gamma-Gamma estimates on the same sample (Fader and Hardie's note on the model).
PAPER_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def hyp2f1(a: float, b: float, c: float, z: float) -> float:
    total = term = 1.0
    for n in range(100_000):
        term *= (a + n) * (b + n) / ((c + n) * (n + 1)) * z
        total += term
        if abs(term) < 1e-17 * abs(total):
            return total
    raise AssertionError("series did not converge")


def by_hand_alive(m: fit.BgNbd, x: int, t_x: float, T: float) -> float:
    if x == 0:
        return 1.0
    return 1 / (1 + m.a / (m.b + x - 1) * ((m.alpha + T) / (m.alpha + t_x)) ** (m.r + x))


def by_hand_expected(m: fit.BgNbd, t: float, x: int, t_x: float, T: float) -> float:
    """Equation 10 as printed."""
    r, alpha, a, b = m.r, m.alpha, m.a, m.b
    z = t / (alpha + T + t)
    bracket = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z)
    return (a + b + x - 1) / (a - 1) * bracket * by_hand_alive(m, x, t_x, T)


def by_hand_new(m: fit.BgNbd, t: float) -> float:
    """Equation 9: a customer just acquired."""
    r, alpha, a, b = m.r, m.alpha, m.a, m.b
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))


def by_hand_log_likelihood(m: fit.BgNbd, x: int, t_x: float, T: float) -> float:
    """Equation 6, in plain floating point (fine for small x)."""
    r, alpha, a, b = m.r, m.alpha, m.a, m.b

    def beta(u: float, v: float) -> float:
        return math.exp(math.lgamma(u) + math.lgamma(v) - math.lgamma(u + v))

    rate = math.exp(math.lgamma(r + x) - math.lgamma(r)) * alpha**r
    value = beta(a, b + x) / beta(a, b) * rate / (alpha + T) ** (r + x)
    if x > 0:
        value += beta(a + 1, b + x - 1) / beta(a, b) * rate / (alpha + t_x) ** (r + x)
    return math.log(value)


def _summary(wheel):
    rows = cdnow.read_csv(wheel, cdnow.SUMMARY)
    return (np.array([float(r[k]) for r in rows]) for k in ("frequency", "recency", "T"))


def test_bgnbd_reproduces_the_papers_cdnow_estimates(cdnow_wheel):
    x, t_x, T = _summary(cdnow_wheel)
    assert len(x) == 2357  # the paper's cohort
    model = fit.fit_bgnbd(x, t_x, T)
    for name, published in PAPER_BGNBD.items():
        assert getattr(model, name) == pytest.approx(published, abs=0.005), name
    assert model.log_likelihood == pytest.approx(PAPER_LOG_LIKELIHOOD, abs=0.05)


def test_grouped_fit_equals_the_fit_over_every_customer(cdnow_wheel):
    x, t_x, T = _summary(cdnow_wheel)
    triples, counts = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
    assert len(triples) < len(x)
    grouped = fit.fit_bgnbd(triples[:, 0], triples[:, 1], triples[:, 2], counts)
    whole = fit.fit_bgnbd(x, t_x, T)
    for name in ("r", "alpha", "a", "b", "log_likelihood"):
        assert getattr(grouped, name) == pytest.approx(getattr(whole, name), rel=1e-6), name


def test_gamma_gamma_reproduces_the_published_cdnow_estimates(cdnow_wheel):
    rows = cdnow.read_csv(cdnow_wheel, cdnow.WITH_SPEND)
    x = np.array([float(r["x"]) for r in rows])
    m = np.array([float(r["zbar"]) for r in rows])
    repeat = x > 0
    assert repeat.sum() == 946
    model = fit.fit_gamma_gamma(x[repeat], m[repeat])
    # The file's mean spends are rounded to cents, which moves gamma by under 0.01.
    for name, published in PAPER_GAMMA_GAMMA.items():
        assert getattr(model, name) == pytest.approx(published, abs=0.01), name


PAPER_MODEL = fit.BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426, log_likelihood=0.0)
POINTS = [(0, 0.0, 38.86), (1, 1.71, 38.86), (2, 30.43, 38.86), (7, 29.43, 38.86), (10, 34.14, 38.86), (3, 5.0, 27.0)]


def test_the_papers_worked_example():
    # Section 5: a customer with 2 repeat purchases, the last at week 30.43 of 38.86, is expected
    # to make 1.226 purchases in the next 39 weeks.
    assert float(fit.expected_purchases(PAPER_MODEL, 39, 2, 30.43, 38.86)) == pytest.approx(1.226, abs=0.0005)


@pytest.mark.parametrize("t", [1.0, 13.0, 39.0, 78.0])
@pytest.mark.parametrize(("x", "t_x", "T"), POINTS)
def test_conditional_expectations_match_the_closed_forms(x, t_x, T, t):
    assert float(fit.probability_alive(PAPER_MODEL, x, t_x, T)) == pytest.approx(by_hand_alive(PAPER_MODEL, x, t_x, T), rel=1e-12)
    got = float(fit.expected_purchases(PAPER_MODEL, t, x, t_x, T))
    assert got == pytest.approx(by_hand_expected(PAPER_MODEL, t, x, t_x, T), rel=1e-9)


def test_a_dropout_needs_purchases_to_be_seen_and_recency_keeps_customers_alive():
    alive = [float(fit.probability_alive(PAPER_MODEL, x, t_x, 38.86)) for x, t_x in ((0, 0), (3, 5.0), (3, 20.0), (3, 38.0))]
    assert alive[0] == 1.0  # no repeat purchase: no dropout could have been observed
    assert alive[1] < alive[2] < alive[3] < 1.0


@pytest.mark.parametrize("t", [1.0, 39.0, 78.0])
def test_a_new_customers_expectation_matches_equation_9(t):
    assert float(fit.expected_purchases_new(PAPER_MODEL, t)) == pytest.approx(by_hand_new(PAPER_MODEL, t), rel=1e-9)
    # A customer of age 0 with no repeat purchase is exactly a new customer.
    assert float(fit.expected_purchases(PAPER_MODEL, t, 0, 0.0, 0.0)) == pytest.approx(by_hand_new(PAPER_MODEL, t), rel=1e-9)


def test_log_likelihood_matches_equation_6():
    x, t_x, T = (np.array(v, dtype=float) for v in zip(*POINTS, strict=True))
    got, _ = fit.bgnbd_log_likelihood((PAPER_MODEL.r, PAPER_MODEL.alpha, PAPER_MODEL.a, PAPER_MODEL.b), x, t_x, T)
    assert got == pytest.approx(sum(by_hand_log_likelihood(PAPER_MODEL, *p) for p in POINTS), rel=1e-12)


def test_expected_spend_and_clv_match_their_definitions():
    spend = fit.GammaGamma(p=6.25, q=3.74, gamma=15.44, log_likelihood=0.0)
    purchases = PAPER_MODEL
    for x, t_x, T, m in ((0, 0.0, 38.86, 0.0), (2, 30.43, 38.86, 22.35), (7, 29.43, 38.86, 73.74)):
        population = spend.p * spend.gamma / (spend.q - 1)
        weight = spend.p * x / (spend.p * x + spend.q - 1)
        value = (1 - weight) * population + weight * m
        assert float(fit.expected_spend(spend, x, m)) == pytest.approx(value, rel=1e-12)
        # 400 days in weeks, discounted at 10% a year at the end of each 30-day period.
        expected, before = 0.0, 0.0
        for end in [*range(30, 400, 30), 400]:
            upto = by_hand_expected(purchases, end / 7, x, t_x, T)
            expected += value * (upto - before) / 1.1 ** (end / 365)
            before = upto
        got = float(fit.clv(purchases, spend, x, t_x, T, m, horizon_days=400, discount_rate=0.1, days_per_unit=7))
        assert got == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(("x", "t_x", "T"), POINTS)
def test_the_numerical_integral_agrees_with_the_closed_form(x, t_x, T):
    # Where scipy's hypergeometric function gives up, predictions come from integrating the
    # same expectation numerically; where both work they must agree.
    t = np.array([13.0, 39.0])
    alive = by_hand_alive(PAPER_MODEL, x, t_x, T)
    got = fit._by_quadrature(PAPER_MODEL, t, np.full(2, float(x)), np.full(2, T)) * alive
    want = [by_hand_expected(PAPER_MODEL, float(v), x, t_x, T) for v in t]
    assert got == pytest.approx(want, rel=1e-5)


def test_predictions_stay_finite_when_dropout_shows_no_spread():
    # a and b large together: everyone drops out with one probability, pi = a/(a+b), after each
    # purchase. E[Y | alive] is then E over the rate of (1 - e^(-rate pi t)) / pi.
    model = fit.BgNbd(r=0.9, alpha=8.0, a=6e4, b=1.4e5, log_likelihood=0.0)
    pi = model.a / (model.a + model.b)
    x, t_x, T = np.array([0.0, 2.0, 5.0, 40.0]), np.array([0.0, 10.0, 30.0, 60.0]), np.array([20.0, 40.0, 60.0, 61.0])
    for t in (7.0, 365.0, 3650.0):
        got = fit.expected_purchases(model, t, x, t_x, T)
        limit = (1 - (1 + pi * t / (model.alpha + T)) ** -(model.r + x)) / pi * fit.probability_alive(model, x, t_x, T)
        assert np.all(np.isfinite(got))
        assert got == pytest.approx(limit, rel=1e-3)
