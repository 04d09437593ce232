#!/usr/bin/env python3
"""Makes scipy-reference.json: inputs and SciPy's answers for the drift statistics, so git-ml's own
implementations are checked against a reference nobody here wrote.

Run:  python3 -m venv /tmp/scipy-venv && /tmp/scipy-venv/bin/pip install scipy numpy
      /tmp/scipy-venv/bin/python Tests/GitMLDriftTests/Fixtures/make_fixtures.py
"""
import json, os
import numpy as np
import scipy
from scipy import stats
from scipy.spatial import distance

rng = np.random.RandomState(20261123)
cases = []
for name, a, b in [
    ("normal, shifted", rng.normal(0, 1, 500), rng.normal(0.3, 1.2, 700)),
    ("same distribution", rng.normal(5, 2, 800), rng.normal(5, 2, 600)),
    ("ties and integers", rng.randint(0, 10, 400).astype(float), rng.randint(1, 12, 300).astype(float)),
    ("exponential vs uniform", rng.exponential(2, 1000), rng.uniform(0, 6, 1000)),
]:
    a = [float(x) for x in a]
    b = [float(x) for x in b]
    d = stats.ks_2samp(a, b).statistic
    en = len(a) * len(b) / (len(a) + len(b))
    cases.append({
        "name": name, "a": a, "b": b,
        "ks_statistic": float(d),
        "ks_pvalue_asymptotic": float(stats.kstwobign.sf(d * np.sqrt(en))),
        "ks_pvalue_scipy_auto": float(stats.ks_2samp(a, b).pvalue),
        "wasserstein": float(stats.wasserstein_distance(a, b)),
    })

distributions = []
for p, q in [
    ([10, 20, 30, 40], [15, 25, 25, 35]),
    ([1, 0, 3, 6], [2, 2, 2, 4]),
    ([0.1, 0.2, 0.7], [0.7, 0.2, 0.1]),
    ([5, 5, 5, 5, 5], [5, 5, 5, 5, 5]),
]:
    observed = np.array(q, dtype=float)
    expected = np.array(p, dtype=float) / np.sum(p) * np.sum(q)
    statistic, pvalue = stats.chisquare(observed, expected) if np.all(expected > 0) else (None, None)
    distributions.append({
        "p": [float(x) for x in p], "q": [float(x) for x in q],
        "jensenshannon": float(distance.jensenshannon(p, q)),
        "chisquare_statistic": None if statistic is None else float(statistic),
        "chisquare_pvalue": None if pvalue is None else float(pvalue),
    })

chi2_tail = [{"x": x, "df": k, "sf": float(stats.chi2.sf(x, k))} for x, k in [(0.5, 1), (3.84, 1), (10, 4), (100, 80), (250, 200), (40, 3)]]

# Two-sample KS p-values for larger samples, as (d, n1, n2, p): ks_2samp's exact method (both sizes at most 10,000),
# including the unchanged 5,000 vs 4,000 case the asymptotic formula got wrong (1.0 instead of about 0.55).
ks_rng = np.random.RandomState(20261201)
ks_pvalues = []
# Past 10,000 values ks_2samp uses kstwo.sf(d, round(n1*n2/(n1+n2))).
for n1, n2, shift in [(5000, 4000, 0.0), (5000, 4000, 0.05), (5000, 4000, 0.2), (3000, 3000, 0.0), (3000, 3000, 0.1),
                      (10000, 10000, 0.02), (10000, 7, 1.0), (1, 1, 0.0), (250, 4000, 0.3), (9999, 10000, 0.03),
                      (20000, 15000, 0.0), (20000, 15000, 0.03), (100000, 100000, 0.0), (100000, 100000, 0.01),
                      (50000, 120, 0.1), (12000, 30, 0.5), (300000, 250000, 0.0), (10001, 10001, 0.05)]:
    a = ks_rng.normal(0, 1, n1)
    b = ks_rng.normal(shift, 1, n2)
    result = stats.ks_2samp(a, b)
    ks_pvalues.append({"n1": n1, "n2": n2, "d": float(result.statistic), "p": float(result.pvalue)})

# kstwo.sf(d, n) over its methods' regions: n up to 140, the Durbin matrix, Pelz-Good, the Smirnov tail.
kstwo_sf = []
for n in [3, 50, 141, 500, 5000, 8571, 49995, 100001, 500000]:
    for nx2 in [0.0005, 0.01, 0.1, 0.3, 0.5, 0.754, 1.0, 1.5, 2.19, 2.21, 3, 4.5, 10]:
        d = float(np.sqrt(nx2 / n))
        if d < 1:
            kstwo_sf.append({"n": n, "d": d, "sf": float(stats.kstwo.sf(d, n))})

out = {"scipy_version": scipy.__version__, "numpy_version": np.__version__, "samples": cases,
       "distributions": distributions, "chi2_survival": chi2_tail, "ks_pvalues": ks_pvalues, "kstwo_sf": kstwo_sf}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scipy-reference.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1, sort_keys=True)
print("wrote", path)
