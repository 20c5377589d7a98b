"""The clean, evolving population behind the vendor files: RIA firms and their advisors.

State is column arrays (one row per firm / rep). ``evolve_*`` moves it forward one quarter:
AUM grows, growth rates drift, reps leave, join, move firm and gain licences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from leadscore.synthetic import vocab

YEAR_D = 365.25
FIRM_SHARE_COLS = ("s_ind", "s_hnw", "s_mf", "s_pf", "s_etf")


@dataclass
class Population:
    """Column arrays of equal length; ``cols`` is the clean truth of one entity kind."""

    cols: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(next(iter(self.cols.values())))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name]

    def subset(self, rows: np.ndarray) -> Population:
        """Rows selected by a mask or an index array."""
        return Population({k: v[rows] for k, v in self.cols.items()})

    def extend(self, other: Population) -> Population:
        """This population followed by ``other``."""
        return Population({k: np.concatenate([v, other.cols[k]]) for k, v in self.cols.items()})


def city_weights() -> np.ndarray:
    """Sampling weights of ``vocab.CITIES``."""
    w = np.array([c[5] for c in vocab.CITIES])
    return w / w.sum()


def init_firms(rng: np.random.Generator, n: int, crds: np.ndarray) -> Population:
    """``n`` firms; TotalAssets lognormal: ~45% < $100M, ~35% $100-500M, ~20% > $500M."""
    total = np.exp(rng.normal(4.81, 1.66, n)).clip(1.0, 2.0e6)
    size = np.log10(total)
    employees = np.maximum(1, np.round(10 ** (0.45 * size - 0.2 + rng.normal(0, 0.3, n))))
    ia_reps = np.maximum(1, np.round(employees * rng.uniform(0.3, 1.0, n)))
    avg_account = np.exp(rng.normal(np.log(1.2e6), 0.9, n)).clip(5e4, 5e8)
    s_ind = rng.beta(2, 3, n)
    s_hnw = (1 - s_ind) * rng.beta(3, 2, n)
    s_mf = rng.beta(2, 5, n)
    s_pf = (1 - s_mf) * rng.beta(0.6, 6, n)
    s_etf = (1 - s_mf - s_pf) * rng.beta(2, 4, n)
    g_mu = rng.normal(7.0, 6.0, n)
    return Population(
        {
            "crd": crds,
            "name": rng.integers(0, 10**9, n),
            "state": rng.integers(0, len(vocab.STATES), n),
            "total": total,
            "employees": employees,
            "ia_reps": ia_reps,
            "clients": np.maximum(1.0, np.round(total * 1e6 / avg_account)),
            "indiv_share": rng.beta(6, 2, n),
            "hnw_client_share": rng.beta(2, 5, n),
            "s_ind": s_ind,
            "s_hnw": s_hnw,
            "s_mf": s_mf,
            "s_pf": s_pf,
            "s_etf": s_etf,
            "pct_us": np.where(rng.random(n) < 0.85, 100.0, rng.uniform(40, 99.9, n)),
            "g_mu": g_mu,
            # an asset base cannot shrink by 100% or more: growth rates stay above -95%
            "g1": np.maximum(g_mu + rng.normal(0, 14.0, n), -95.0),
            "g5": np.maximum(5 * g_mu + rng.normal(0, 15.0, n), -95.0),
            "growth_null": rng.random(n) < 0.10,
        }
    )


def evolve_firms(rng: np.random.Generator, firms: Population) -> None:
    """One quarter: growth rates drift (AR(1)), assets and clients follow, shares jitter."""
    c, n = firms.cols, len(firms)
    c["g1"] = np.maximum(c["g_mu"] + 0.45 * (c["g1"] - c["g_mu"]) + rng.normal(0, 12.5, n), -95.0)
    c["g5"] = np.maximum(0.9 * c["g5"] + 0.1 * 5 * c["g1"] + rng.normal(0, 2.0, n), -95.0)
    growth = (1 + np.clip(c["g1"], -60, 200) / 100) ** 0.25 * np.exp(rng.normal(0, 0.03, n))
    c["total"] = (c["total"] * growth).clip(1.0, 3.0e6)
    c["clients"] = np.maximum(1.0, np.round(c["clients"] * growth ** rng.uniform(0.3, 1.0, n)))
    hires = rng.random(n) < 0.1
    c["employees"] = np.where(
        hires, np.maximum(1, c["employees"] + rng.integers(-1, 3, n)), c["employees"]
    )
    c["ia_reps"] = np.minimum(c["ia_reps"], c["employees"])
    for col in FIRM_SHARE_COLS:
        c[col] = (c[col] * np.exp(rng.normal(0, 0.04, n))).clip(0, 1)
    c["s_hnw"] = np.minimum(c["s_hnw"], 1 - c["s_ind"])
    c["s_pf"] = np.minimum(c["s_pf"], 1 - c["s_mf"])
    c["s_etf"] = np.minimum(c["s_etf"], 1 - c["s_mf"] - c["s_pf"])
    flip = rng.random(n) < 0.01
    c["growth_null"] = np.where(flip, ~c["growth_null"], c["growth_null"])


def firm_weights(firms: Population) -> np.ndarray:
    """Probability that a rep works at each firm (bigger firms employ more reps)."""
    w = firms["total"] ** 0.3
    return w / w.sum()


def init_reps(
    rng: np.random.Generator, n: int, firms: Population, day: int, crds: np.ndarray, new: bool
) -> Population:
    """``n`` reps as of ``day``; ``new`` reps joined the industry recently."""
    yrs_rep = rng.uniform(0, 0.25, n) if new else rng.gamma(2.2, 7.0, n).clip(0.3, 50)
    yrs_firm = yrs_rep * (1.0 if new else rng.beta(1.2, 1.6, n))
    became = day - np.round(yrs_rep * YEAR_D).astype(np.int64)
    hire = np.maximum(became, day - np.round(yrs_firm * YEAR_D).astype(np.int64))
    n_prior = np.minimum(4, rng.poisson((yrs_rep - yrs_firm) / 5.0))
    prior = np.round(rng.uniform(0.5, 9.0, (n, 4)), 1)
    prior[np.arange(4)[None, :] >= n_prior[:, None]] = np.nan
    bits = np.zeros(n, dtype=np.int64)
    for bit, share in enumerate((0.55, 0.5, 0.45, 0.25, 0.2)):
        bits |= (rng.random(n) < share * (0.4 if new else 1.0)).astype(np.int64) << bit
    branch_city = rng.choice(len(vocab.CITIES), n, p=city_weights())
    home_city = np.where(
        rng.random(n) < 0.8, branch_city, rng.choice(len(vocab.CITIES), n, p=city_weights())
    )
    edu = rng.integers(0, len(vocab.EDUCATION), n)
    notes = rng.integers(0, len(vocab.NOTES), n)
    miles = np.round(np.exp(rng.normal(2.4, 1.0, n)), 1)
    return Population(
        {
            "crd": crds,
            "firm": rng.choice(len(firms), n, p=firm_weights(firms)),
            "first": rng.integers(0, len(vocab.FIRST_NAMES), n),
            "last": rng.integers(0, len(vocab.LAST_NAMES), n),
            "title": np.where(rng.random(n) < 0.05, -1, rng.integers(0, len(vocab.TITLES), n)),
            "branch_city": branch_city,
            "branch_zip": rng.integers(0, 100, n),
            "home_city": home_city,
            "home_zip": rng.integers(0, 100, n),
            "metro_blank": rng.random(n) < 0.10,
            "edu": np.where(rng.random(n) < 0.2, -1, edu),
            "licences": bits,
            "became": became,
            "hire": hire,
            **{f"py{j + 1}": prior[:, j] for j in range(4)},
            "n_firm_assoc": n_prior + 1 + rng.poisson(0.3, n),
            "n_ria_assoc": 1 + (rng.random(n) < 0.14) + (rng.random(n) < 0.04),
            "primary": rng.random(n) < 0.85,
            "non_advisor": rng.random(n) < 0.03,
            "dual": rng.random(n) < 0.35,
            "indep": rng.random(n) < 0.3,
            "miles": np.where(rng.random(n) < 0.15, np.nan, miles),
            "branch_adv": 1 + rng.geometric(0.15, n),
            "linkedin": rng.random(n) < 0.6,
            "web": rng.random(n) < 0.3,
            "notes": np.where(rng.random(n) < 0.85, -1, notes),
        }
    )


def evolve_reps(
    rng: np.random.Generator,
    reps: Population,
    firms: Population,
    prev_day: int,
    day: int,
    new_crds: np.ndarray,
) -> Population:
    """One quarter: ~2% leave, ~2% join, ~3% move firm, some gain licences or relationships."""
    n = len(reps)
    reps = reps.subset(rng.random(n) >= 0.02)
    c, n = reps.cols, len(reps)
    move = rng.random(n) < 0.03
    m = int(move.sum())
    c["py4"][move], c["py3"][move], c["py2"][move] = c["py3"][move], c["py2"][move], c["py1"][move]
    c["py1"][move] = np.round((day - c["hire"][move]) / YEAR_D, 1).clip(0.1)
    c["hire"][move] = rng.integers(prev_day + 1, day + 1, m)
    c["firm"][move] = rng.choice(len(firms), m, p=firm_weights(firms))
    c["n_firm_assoc"][move] += 1
    c["n_ria_assoc"][move] = 1 + (rng.random(m) < 0.25) + (rng.random(m) < 0.06)
    c["miles"][move] = np.where(
        rng.random(m) < 0.15, np.nan, np.round(np.exp(rng.normal(2.4, 1.0, m)), 1)
    )
    c["indep"][move] = rng.random(m) < 0.45
    for bit, share in enumerate((0.004, 0.004, 0.012, 0.008, 0.006)):
        c["licences"] |= (rng.random(n) < share).astype(np.int64) << bit
    ria_change = rng.random(n) < 0.02
    c["n_ria_assoc"] = np.where(
        ria_change, np.maximum(1, c["n_ria_assoc"] + rng.choice([-1, 1], n)), c["n_ria_assoc"]
    )
    jitter = rng.random(n) < 0.03
    c["miles"] = np.where(jitter, np.round(c["miles"] * rng.uniform(0.5, 1.5, n), 1), c["miles"])
    c["branch_adv"] = np.maximum(
        1, c["branch_adv"] + (rng.random(n) < 0.05) * rng.integers(-2, 3, n)
    )
    joiners = init_reps(rng, len(new_crds), firms, day, new_crds, new=True)
    return reps.extend(joiners)
