#!/usr/bin/env python3
"""Reference values for the verdict statistics of cacherate (src/analysis),
computed outside the crate: mpmath at 50 significant digits, with SciPy's
Student t as a second opinion on every quantile and tail.

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install mpmath scipy
    /tmp/ref/bin/python scripts/reference/verdict_reference.py

tests/verdict_reference.rs pins the crate to what this prints (its output
is pasted at the end of that file). Nothing here calls the crate: the
inputs are rebuilt from the formulas of tests/verdict_fixture/mod.rs and
the model is written from SPEC §5 and the doc comments of
src/analysis/{effect,verdict,holm}.rs:

  d      = mean log(current) - mean over runs of mean log(baseline run)
  Var d  = s2_c/m + s2_b * sum(1/k_r)/R^2 + s2_run * (1 + 1/R)
  s2_run = max(floor^2, one-way ANOVA estimate from the baseline's runs)
  df     = Welch-Satterthwaite over the three terms (m-1, sum(k_r-1), and
           the floor's 50 df, or floor^4/50 + excess^2/(R-1) above it)
  bounds = d -/+ t_{conf}(df) * SE, MDE = (t_{1-a/n}(df) + t_{0.8}(df)) * SE
  p      = one-sided t tail in the direction of the effect, Holm-adjusted
           per direction across the curve's tested points
"""

import math

import mpmath as mp
from scipy import stats

mp.mp.dps = 50
FLOOR = mp.mpf("0.02")
FLOOR_DF = mp.mpf(50)
CONFIDENCE = mp.mpf("0.99")
ALPHA = 1 - CONFIDENCE
MDE_POWER = mp.mpf("0.8")


# --- Student t from the regularized incomplete beta function -------------


def t_sf(t, df):
    """P(T > t), T ~ t(df)."""
    t, df = mp.mpf(t), mp.mpf(df)
    tail = mp.betainc(df / 2, mp.mpf(1) / 2, 0, df / (df + t * t), regularized=True) / 2
    return tail if t >= 0 else 1 - tail


def t_ppf(p, df):
    """The p quantile of t(df), by root finding on the CDF."""
    p, df = mp.mpf(p), mp.mpf(df)
    if p == mp.mpf("0.5"):
        return mp.mpf(0)
    start = float(stats.t.ppf(float(p), float(df)))
    return mp.findroot(lambda t: (1 - t_sf(t, df)) - p, mp.mpf(start), tol=mp.mpf(10) ** -45)


def check_scipy(value, p, df):
    """SciPy's quantile agrees (its own double precision)."""
    theirs = stats.t.ppf(float(p), float(df))
    assert abs(theirs - float(value)) <= 1e-9 * abs(float(value)), (p, df, theirs, value)


# --- The effect of one point and metric --------------------------------


def mean(values):
    return mp.fsum(values) / len(values)


def ss(values):
    m = mean(values)
    return mp.fsum((v - m) ** 2 for v in values)


def satterthwaite(terms):
    total = mp.fsum(v for v, _ in terms)
    denominator = mp.fsum(v * v / df for v, df in terms if v > 0 and mp.isfinite(df))
    return total * total / denominator if denominator > 0 else mp.inf


def effect(baseline_runs, current):
    current = [mp.log(mp.mpf(v)) for v in current]
    runs = [[mp.log(mp.mpf(v)) for v in run] for run in baseline_runs]
    m, n_runs = len(current), len(runs)
    s2_c = ss(current) / (m - 1)
    run_means = [mean(r) for r in runs]
    within_df = sum(len(r) - 1 for r in runs)
    inverse_k = mp.fsum(mp.mpf(1) / len(r) for r in runs)
    if within_df > 0:
        s2_b, s2_b_df = mp.fsum(ss(r) for r in runs) / within_df, mp.mpf(within_df)
    else:  # single-sample runs borrow the current run's spread
        s2_b, s2_b_df = s2_c, mp.mpf(m - 1)
    floor2 = FLOOR**2
    source, s2_run, run_df = "floor", floor2, FLOOR_DF
    if n_runs >= 2:
        estimate = max(ss(run_means) / (n_runs - 1) - s2_b * inverse_k / n_runs, 0)
        if estimate > floor2:
            excess = estimate - floor2
            source, s2_run = "baseline_runs", estimate
            run_df = estimate**2 / (floor2**2 / FLOOR_DF + excess**2 / (n_runs - 1))
    terms = [
        (s2_c / m, mp.mpf(m - 1)),
        (s2_b * inverse_k / n_runs**2, s2_b_df),
        (s2_run * (1 + mp.mpf(1) / n_runs), run_df),
    ]
    return {
        "log_ratio": mean(current) - mean(run_means),
        "terms": terms,
        "variance": mp.fsum(v for v, _ in terms),
        "df": satterthwaite(terms),
        "run_noise": mp.sqrt(s2_run),
        "run_df": run_df,
        "source": source,
    }


def pct(log):
    return 100 * mp.expm1(log)


def bounds(log_ratio, se, df, family):
    t_conf = t_ppf(CONFIDENCE, df)
    t_mde = t_ppf(1 - ALPHA / family, df)
    t_power = t_ppf(MDE_POWER, df)
    for p, t in [(CONFIDENCE, t_conf), (1 - ALPHA / family, t_mde), (MDE_POWER, t_power)]:
        check_scipy(t, p, df)
    mde = (t_mde + t_power) * se
    return {
        "t_conf": t_conf,
        "low_pct": pct(log_ratio - t_conf * se),
        "high_pct": pct(log_ratio + t_conf * se),
        "mde_pct": pct(mde),
        "p_value": t_sf(abs(log_ratio) / se, df),
    }


def holm(p_values):
    n = len(p_values)
    order = sorted(range(n), key=lambda i: p_values[i])
    adjusted, running = [None] * n, mp.mpf(0)
    for rank, i in enumerate(order):
        running = max(running, min(1, (n - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


# --- Inputs: the verdict fixture (tests/verdict_fixture/mod.rs) --------


def base_values(context, rate):
    speedup = 1.0 + rate / 25.0
    inp = 4000.0 * speedup * math.sqrt(8000.0 / context)
    ttft = 0.2 * context / 2048.0 / speedup
    return [inp, inp / 30.0, ttft, ttft * 1.4]


def fixture_baseline(context, rate, metric):
    base = base_values(context, rate)[metric]
    return [
        [
            base * (1.0 + 0.003 * ((r % 3) - 1.0)) * (1.0 + 0.004 * (((r + k) % 3) - 1.0))
            for k in range(3)
        ]
        for r in range(5)
    ]


def fixture_current(context, rate, metric, factor, noisy):
    base = base_values(context, rate)[metric]
    spread = 0.13 if noisy else 0.004
    return [base * factor * (1.0 + spread * (k - 1.0)) for k in range(3)]


def f64(value):
    """The double nearest the reference, written shortest (as Rust reads it)."""
    return repr(float(value))


def show(name, value):
    print(f"{name:<34} {f64(value)}")


def point_case(name, baseline_runs, current, family, worse_sign=-1):
    e = effect(baseline_runs, current)
    se = mp.sqrt(e["variance"])
    b = bounds(e["log_ratio"], se, e["df"], family)
    print(f"## {name}  (run noise from {e['source']}, MDE at alpha/{family})")
    show("log_ratio", e["log_ratio"])
    show("change_pct", pct(e["log_ratio"]))
    show("std_error", se)
    show("df", e["df"])
    show("run_noise", e["run_noise"])
    show("run_df", e["run_df"])
    show("t_0.99(df)", b["t_conf"])
    show("low_pct", b["low_pct"])
    show("high_pct", b["high_pct"])
    show("mde_pct", b["mde_pct"])
    show("p_value", b["p_value"])
    print()
    return e, se


def curve_case():
    """ctx2048 output_tps of the fixture's mixed(): cache50 20 % slower,
    cache0 and cache100 unchanged (the throughput of the 100 % point
    changes only for input tok/s)."""
    rates, factors = [0, 50, 100], [1.0, 0.8, 1.0]
    effects, ps_worse, ps_better = [], [], []
    for rate, factor in zip(rates, factors):
        e = effect(fixture_baseline(2048, rate, 1), fixture_current(2048, rate, 1, factor, False))
        se = mp.sqrt(e["variance"])
        t = -e["log_ratio"] / se  # badness: throughput lower is worse
        p_worse = t_sf(t, e["df"])
        effects.append((rate, e, se, p_worse))
        ps_worse.append(p_worse)
        ps_better.append(1 - p_worse)
    worse_adj, better_adj = holm(ps_worse), holm(ps_better)
    print("## fixture mixed() ctx2048 output_tps: points and Holm across the curve")
    for j, (rate, e, se, p_worse) in enumerate(effects):
        worse = -e["log_ratio"] >= 0
        p = p_worse if worse else 1 - p_worse
        adjusted = worse_adj[j] if worse else better_adj[j]
        show(f"cache{rate} p_value", p)
        show(f"cache{rate} p_adjusted", adjusted)
    # The curve: weights 1/(sample variance), run term shared whole, its df
    # as if the points' run-noise estimates were perfectly correlated.
    sample_vars = [e["terms"][0][0] + e["terms"][1][0] for _, e, _, _ in effects]
    raw = [1 / v for v in sample_vars]
    weights = [w / mp.fsum(raw) for w in raw]
    log_ratio = mp.fsum(w * e["log_ratio"] for w, (_, e, _, _) in zip(weights, effects))
    shared = mp.fsum(w * e["terms"][2][0] for w, (_, e, _, _) in zip(weights, effects))
    run_sd = mp.fsum(
        w * e["terms"][2][0] / mp.sqrt(e["terms"][2][1]) for w, (_, e, _, _) in zip(weights, effects)
    )
    terms = []
    for w, (_, e, _, _) in zip(weights, effects):
        terms += [(w * w * e["terms"][0][0], e["terms"][0][1]), (w * w * e["terms"][1][0], e["terms"][1][1])]
    terms.append((shared, (shared / run_sd) ** 2))
    variance = mp.fsum(v for v, _ in terms)
    df = satterthwaite(terms)
    se = mp.sqrt(variance)
    b = bounds(log_ratio, se, df, 1)
    show("curve change_pct", pct(log_ratio))
    show("curve std_error", se)
    show("curve df", df)
    show("curve low_pct", b["low_pct"])
    show("curve high_pct", b["high_pct"])
    show("curve mde_pct", b["mde_pct"])
    show("curve p_value", b["p_value"])
    print()


def main():
    print(f"mpmath {mp.__version__}, {mp.mp.dps} digits; scipy {__import__('scipy').__version__}\n")
    point_case(
        "fixture ctx2048/cache0 input_tps (unchanged)",
        fixture_baseline(2048, 0, 0),
        fixture_current(2048, 0, 0, 1.0, False),
        family=3,
    )
    point_case(
        "fixture ctx8000/cache0 input_tps (-7 %, samples +-13 %)",
        fixture_baseline(8000, 0, 0),
        fixture_current(8000, 0, 0, 0.93, True),
        family=2,
    )
    point_case(
        "three baseline runs 10 % apart (src/analysis/effect.rs)",
        [[100.0, 100.5, 99.5], [110.0, 110.5, 109.5], [90.0, 90.5, 89.5]],
        [100.0, 100.5, 99.5],
        family=1,
    )
    point_case(
        "single-sample baseline runs borrow the current spread",
        [[1000.0], [1012.0], [991.0]],
        [990.0, 1003.0, 1011.0, 985.0],
        family=1,
    )
    curve_case()

    print("## holm_adjust")
    p = [mp.mpf(x) for x in ["0.004", "0.03", "0.0101", "0.2", "0.0005", "0.03"]]
    print("in      ", [f64(x) for x in p])
    print("adjusted", [f64(x) for x in holm(p)])
    print()

    print("## satterthwaite_df")
    for terms in [
        [(mp.mpf("1e-4"), mp.mpf(2)), (mp.mpf("4e-5"), mp.mpf(14)), (mp.mpf("5.3333e-4"), mp.mpf(50))],
        [(mp.mpf("0.3"), mp.mpf("1.5")), (mp.mpf("0.1"), mp.mpf("7.25"))],
    ]:
        show(str([(float(v), float(d)) for v, d in terms]), satterthwaite(terms))
    print()

    print("## t quantiles (df, p, value) and upper tails (t, df, P(T > t))")
    for df in ["1", "2.351", "3.7", "10", "17.3", "29.9", "30", "31.7", "51.18", "120.5", "5000"]:
        for p in ["0.8", "0.95", "0.99", "0.995", "0.999", "0.9995", "0.9999", "0.99999"]:
            q = t_ppf(p, df)
            check_scipy(q, p, df)
            print(f"    ({float(df)!r}, {p}, {f64(q)}),")
    for t, df in [("0.5", "2.351"), ("2.4", "51.18"), ("3.1", "4.5"), ("5", "30"), ("8", "120.5")]:
        tail = t_sf(t, df)
        theirs = stats.t.sf(float(t), float(df))
        assert abs(theirs - float(tail)) <= 1e-9 * float(tail), (t, df)
        print(f"    ({float(t)!r}, {float(df)!r}, {f64(tail)}),")
    expansion_error()


def cornish_fisher(p, df):
    """The expansion src/analysis/dist.rs uses from 30 df (Abramowitz &
    Stegun 26.7.5, to df^-4), in double precision as the crate does."""
    x = float(mp.sqrt(2) * mp.erfinv(2 * mp.mpf(p) - 1))
    x2 = x * x
    g1 = x * (x2 + 1) / 4
    g2 = x * ((5 * x2 + 16) * x2 + 3) / 96
    g3 = x * (((3 * x2 + 19) * x2 + 17) * x2 - 15) / 384
    g4 = x * ((((79 * x2 + 776) * x2 + 1482) * x2 - 1920) * x2 - 945) / 92160
    return x + (g1 + (g2 + (g3 + g4 / df) / df) / df) / df


def expansion_error():
    print("\n## Cornish-Fisher relative error against the quantile (rows df, columns p)")
    ps = ["0.8", "0.95", "0.99", "0.999", "0.9995", "0.9999", "0.99999"]
    print("df      " + " ".join(f"{p:>8}" for p in ps))
    for df in [30, 31.7, 40, 51.18, 100, 1000]:
        errors = []
        for p in ps:
            exact = t_ppf(p, df)
            errors.append(abs((cornish_fisher(p, df) - exact) / exact))
        print(f"{df:<7} " + " ".join(f"{float(e):8.1e}" for e in errors))


if __name__ == "__main__":
    main()
