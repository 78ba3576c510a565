"""Interventional ground truth: what re-drawing factors costs a model, with honest intervals.

"Model M relies on factor F" is answered by intervention (the product's decision): on
held-out items from M's training distribution that M classifies correctly, re-draw F
independently of the label and measure the accuracy it costs. MoSIP (Sec. 4, Fig. 3b)
validates its Morris ranking the same way, re-drawing factors one after another in
order of importance and in the reverse order.

Design
------
* **Items.** A pool of held-out items with their own factor values (the Biased-MNIST
  audit uses ``test_aligned``: the training distribution), in a seeded random order;
  only items the model classifies correctly are kept, so accuracy before any
  intervention is 1. A budget of ``n`` items means the first ``n`` correct ones: a
  larger budget extends a smaller one.
* **Re-draws.** ``do(F)``: every item gets a new value of F drawn independently
  (uniform over the factor's intervention values, :meth:`Factor.draw`). Repetition
  ``r`` draws, for every factor, one value per pool position from a generator seeded
  by ``(seed, r)``, so an item's draws depend only on the seed, the repetition and its
  pool position -- never on the budget or the batch size.
* **Common random numbers.** Every non-empty subset of factors is re-drawn in each
  repetition with the same new values, so orders, single drops, Shapley shares and the
  interaction reading differ only by *which* factors are re-drawn.
* **Cells.** ``correct[S][i, r]`` records whether item ``i`` is still classified
  correctly when subset ``S`` is re-drawn in repetition ``r`` (``correct[()] = 1``).

Statistics and their intervals
------------------------------
Every statistic is a mean over items and repetitions of a per-cell quantity (an
accuracy, a drop, a Shapley contribution). Each item's draws are independent across
repetitions and of every other item's, so the cells of one item share only the item
itself: the per-item means over repetitions are independent and identically
distributed draws from the population of held-out items *and* re-draws. A percentile
bootstrap over items of these per-item means (``n_resamples`` resamples, the same
resampled items for every statistic of a model so comparisons stay paired) therefore
covers both sources of randomness -- the sample of items and the re-draws -- with no
separate resampling of repetitions (which would count the re-draw noise twice).
Coverage is checked by simulation in the tests.

Shapley share of the drop (the verdict statistic): with ``v(S) = 1 - acc(S)`` the
accuracy that re-drawing ``S`` costs,

.. math:: \\phi_f = \\sum_{S \\subseteq F \\setminus \\{f\\}}
          \\frac{|S|!\\,(d - |S| - 1)!}{d!}\\,[acc(S) - acc(S \\cup \\{f\\})]

(Shapley 1953), computed per cell; the values sum to the drop of re-drawing every
factor. Unlike the single-factor drop (the cost at the all-aligned state only) it
counts a cue that is redundant with others.

Adaptive budget
---------------
A verdict is ``relied_on`` when the lower 95 % bound of ``phi_f`` reaches the
threshold, ``not_relied_on`` when the upper bound is below it, ``inconclusive``
otherwise. While some factor is inconclusive the budget doubles -- first the items
(each new item adds information on both sources of variance), the repetitions once
the pool is exhausted -- up to ``max_doublings`` times; what remains inconclusive is
reported so.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from shortcut_audit.distributed.shards import Shard
from shortcut_audit.factors.scene import ProbabilityReader, Scene

__all__ = [
    "ORDERS",
    "STATES",
    "Budget",
    "CellSampler",
    "InterventionResult",
    "ItemBootstrap",
    "canonical",
    "correctly_classified",
    "importance_order",
    "run_interventions",
    "shapley_weights",
    "verdict_state",
]

ORDERS = ("most_to_least", "least_to_most")
STATES = ("relied_on", "not_relied_on", "inconclusive")
Subset = tuple[str, ...]


def canonical(subset: Sequence[str], factors: Sequence[str]) -> Subset:
    """A subset of ``factors`` in the order of ``factors`` (the key of subset cells)."""
    return tuple(f for f in factors if f in subset)


def importance_order(mu_star: Mapping[str, float], factors: Sequence[str]) -> tuple[str, ...]:
    """Factors sorted from the largest to the smallest ``mu*`` (ties keep ``factors`` order)."""
    factors = tuple(factors)
    missing = [f for f in factors if f not in mu_star]
    if missing:
        raise ValueError(f"no mu* given for factor(s) {missing}")
    return tuple(sorted(factors, key=lambda f: (-float(mu_star[f]), factors.index(f))))


def verdict_state(ci_low: float, ci_high: float, threshold: float) -> str:
    """``relied_on`` (lower bound >= threshold), ``not_relied_on`` (upper < threshold) or ``inconclusive``."""
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        raise ValueError(f"a verdict needs a finite interval, got [{ci_low}, {ci_high}]")
    if ci_low >= threshold:
        return "relied_on"
    if ci_high < threshold:
        return "not_relied_on"
    return "inconclusive"


def shapley_weights(d: int) -> dict[int, float]:
    """Weight ``|S|! (d - |S| - 1)! / d!`` of a coalition of size ``|S|``."""
    return {size: math.factorial(size) * math.factorial(d - size - 1) / math.factorial(d) for size in range(d)}


def correctly_classified(reader: ProbabilityReader, pool: Scene, shard: Shard | None = None) -> torch.Tensor:
    """Pool positions (in pool order) of the items the model classifies correctly with their own values.

    With ``shard`` each process classifies its share of the pool and every process gets all positions.

    Raises
    ------
    ValueError
        When no item is classified correctly: accuracy losses are then undefined.
    """
    if shard is None or not shard.distributed:
        predicted = reader.predict(pool.render_own())
    else:
        mine = reader.predict(pool.select(shard.items(len(pool))).render_own())
        predicted = shard.gather_items(mine, len(pool)).to(pool.device)
    correct = torch.nonzero(predicted == pool.labels).squeeze(1)
    if correct.numel() == 0:
        raise ValueError(
            f"the model classifies none of the {len(pool)} items correctly on its training "
            "distribution; interventional accuracy drops are undefined"
        )
    return correct


def _repetition_seed(seed: int, repetition: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(repetition)]).generate_state(1, dtype=np.uint64)[0] >> 1)


class CellSampler:
    """Evaluates ``correct[S][i, r]`` for every subset, growing the budget without recomputing.

    Parameters
    ----------
    reader : ProbabilityReader
        The model; its ``batch_size`` bounds every forward pass.
    pool : Scene
        Candidate items in their (seeded) pool order.
    positions : torch.Tensor
        Pool positions of the correctly classified items, in pool order.
    factors : sequence of str
        The factors that may be re-drawn.
    seed : int
    shard : Shard, optional
        A process of a sharded run: it evaluates the items at positions ``j`` with
        ``j % world_size == rank`` and receives the others' cells, so every process holds
        every cell (and takes the same budget decisions).
    """

    def __init__(
        self,
        reader: ProbabilityReader,
        pool: Scene,
        positions: torch.Tensor,
        factors: Sequence[str],
        seed: int,
        shard: Shard | None = None,
    ) -> None:
        self.reader, self.pool, self.seed, self.shard = reader, pool, int(seed), shard
        self.factors = pool.check(factors)
        self.positions = positions.to(pool.device)
        self.columns = pool.columns(self.factors)
        self.subsets = [
            canonical(s, self.factors)
            for k in range(1, len(self.factors) + 1)
            for s in itertools.combinations(self.factors, k)
        ]
        self.cells: dict[Subset, np.ndarray] = {s: np.zeros((0, 0), dtype=bool) for s in self.subsets}
        self._draws: dict[int, torch.Tensor] = {}

    @property
    def n_available(self) -> int:
        return int(self.positions.numel())

    @property
    def shape(self) -> tuple[int, int]:
        return self.cells[self.subsets[0]].shape

    def draws(self, repetition: int) -> torch.Tensor:
        """New values ``(len(pool), d)`` of every factor for one repetition (pool positions)."""
        if repetition not in self._draws:
            generator = torch.Generator().manual_seed(_repetition_seed(self.seed, repetition))
            values = [self.pool.factor(f).draw(generator, len(self.pool)) for f in self.factors]
            self._draws[repetition] = torch.stack(values, dim=1).to(self.pool.device)
        return self._draws[repetition]

    def grow(self, n_items: int, repetitions: int) -> None:
        """Make the cells cover the first ``n_items`` correct items and ``repetitions`` repetitions."""
        if not 1 <= n_items <= self.n_available:
            raise ValueError(f"n_items must be in [1, {self.n_available}], got {n_items}")
        n_old, r_old = self.shape
        n_new, r_new = max(n_old, n_items), max(r_old, repetitions)
        grown = {s: np.zeros((n_new, r_new), dtype=bool) for s in self.subsets}
        for s in self.subsets:
            grown[s][:n_old, :r_old] = self.cells[s]
        blocks = [(range(n_old, n_new), range(r_new)), (range(n_old), range(r_old, r_new))]
        for items, reps in blocks:
            if len(items) and len(reps):
                self._evaluate(grown, items, reps)
        self.cells = grown

    def _evaluate(self, out: dict[Subset, np.ndarray], items: range, reps: range) -> None:
        index = torch.arange(items.start, items.stop)
        if self.shard is not None and self.shard.distributed:
            index = index[index % self.shard.world_size == self.shard.rank]
        cells = self._cells(index.to(self.pool.device), reps)
        parts = [(index, cells)] if self.shard is None else self.shard.all_gather((index, cells))
        columns = np.asarray(list(reps))
        for rows, part in parts:
            for subset in self.subsets:
                out[subset][np.ix_(rows.numpy(), columns)] = part[subset]

    def _cells(self, index: torch.Tensor, reps: range) -> dict[Subset, np.ndarray]:
        """``correct[S]`` of the items at ``index`` for the repetitions ``reps``, ``(len(index), len(reps))`` each."""
        cells = {s: np.zeros((len(index), len(reps)), dtype=bool) for s in self.subsets}
        masks = torch.tensor([[f in s for f in self.factors] for s in self.subsets], device=self.pool.device)
        per_batch = max(1, self.reader.batch_size // len(self.subsets))
        rows = torch.arange(len(index))
        for rep_column, r in enumerate(reps):
            draws = self.draws(r)
            for chunk, chunk_rows in zip(index.split(per_batch), rows.split(per_batch)):
                positions = self.positions[chunk]
                own = self.pool.own_values[positions]  # (m, D)
                new = draws[positions]  # (m, d)
                values = own[None].repeat(len(self.subsets), 1, 1)  # (S, m, D)
                for j, column in enumerate(self.columns):
                    values[:, :, column] = torch.where(masks[:, j, None], new[None, :, j], values[:, :, column])
                items_flat = positions.repeat(len(self.subsets))
                predicted = self.reader.predict(self.pool.render(items_flat, values.reshape(-1, values.shape[-1])))
                correct = (predicted.view(len(self.subsets), -1) == self.pool.labels[positions][None]).cpu().numpy()
                for k, subset in enumerate(self.subsets):
                    cells[subset][chunk_rows.numpy(), rep_column] = correct[k]
        return cells

    def accuracy_cells(self) -> dict[Subset, np.ndarray]:
        """``{subset: (n, R) float}``, including the empty subset (all ones)."""
        cells = {s: c.astype(np.float64) for s, c in self.cells.items()}
        cells[()] = np.ones(self.shape)
        return cells


class ItemBootstrap:
    """Percentile bootstrap over items of per-item means (module docstring).

    Parameters
    ----------
    n_items : int
    n_resamples : int
    conf_level : float
    seed : int
        The resampled items depend only on ``(n_items, n_resamples, seed)``, so every
        statistic of one model is resampled with the same items.
    """

    def __init__(self, n_items: int, n_resamples: int = 2000, conf_level: float = 0.95, seed: int = 0) -> None:
        if n_resamples < 2:
            raise ValueError(f"n_resamples must be >= 2, got {n_resamples}")
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(n_items), 7919]))
        picks = rng.integers(0, n_items, size=(int(n_resamples), int(n_items)))
        self.counts = np.zeros((int(n_resamples), int(n_items)))
        np.add.at(self.counts, (np.arange(int(n_resamples))[:, None], picks), 1.0)
        self.n_items, self.conf_level = int(n_items), float(conf_level)

    def interval(self, per_item: np.ndarray) -> tuple[float, float, float]:
        """Mean of ``per_item`` ``(n,)`` and its percentile interval."""
        per_item = np.asarray(per_item, dtype=np.float64)
        if per_item.shape != (self.n_items,):
            raise ValueError(f"expected {self.n_items} per-item values, got shape {per_item.shape}")
        mean = float(per_item.mean())
        resampled = self.counts @ per_item / self.n_items
        alpha = (1.0 - self.conf_level) / 2.0
        low, high = np.quantile(resampled, [alpha, 1.0 - alpha])
        # exact sums can differ from the resampled ones in the last bit; keep the mean inside
        return mean, float(min(low, mean)), float(max(high, mean))


@dataclass(frozen=True)
class Budget:
    """Items and repetitions of each round of the adaptive budget."""

    n_items: int
    repetitions: int
    max_doublings: int = 0

    def __post_init__(self) -> None:
        for name in ("n_items", "repetitions"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value!r}")
        if isinstance(self.max_doublings, bool) or int(self.max_doublings) < 0:
            raise ValueError(f"max_doublings must be >= 0, got {self.max_doublings!r}")


@dataclass(frozen=True)
class InterventionResult:
    """Interventions of one model.

    Attributes
    ----------
    shapley_drop : pandas.DataFrame
        ``factor, drop, ci_low, ci_high, state``: Shapley share of the accuracy drop
        with its interval and the three-state verdict.
    single_drop : pandas.DataFrame
        ``factor, accuracy, drop, ci_low, ci_high``: only this factor re-drawn (the
        interval is that of the drop).
    total_drop : tuple of float
        ``(drop, ci_low, ci_high)`` when every factor is re-drawn.
    cells : dict
        ``{subset: (n, R) float}`` per-cell accuracies, the empty subset included.
    bootstrap : ItemBootstrap
        The item resampling shared by every statistic of this model.
    factors : tuple of str
    rounds : int
        Rounds of the adaptive budget run (1 = the default budget sufficed).
    first_states : dict
        ``factor -> state`` after the first round (before any doubling).
    n_pool, n_correct : int
        Pool items classified, and correct ones available.
    threshold : float
    """

    shapley_drop: pd.DataFrame
    single_drop: pd.DataFrame
    total_drop: tuple[float, float, float]
    cells: dict[Subset, np.ndarray]
    bootstrap: ItemBootstrap
    factors: tuple[str, ...]
    rounds: int
    first_states: dict[str, str]
    n_pool: int
    n_correct: int
    threshold: float

    @property
    def n_items(self) -> int:
        return int(self.cells[()].shape[0])

    @property
    def repetitions(self) -> int:
        return int(self.cells[()].shape[1])

    def per_item(self, subset: Sequence[str]) -> np.ndarray:
        """Per-item accuracy ``(n,)`` after re-drawing ``subset``, averaged over repetitions."""
        return self.cells[canonical(subset, self.factors)].mean(axis=1)

    def interval(self, per_item: np.ndarray) -> tuple[float, float, float]:
        return self.bootstrap.interval(per_item)

    def sequential(self, most_to_least: Sequence[str], sampling: str = "") -> pd.DataFrame:
        """Accuracy after each step of both re-draw orders (MoSIP Fig. 3b), with intervals."""
        rows = []
        for order_name, order in zip(ORDERS, (tuple(most_to_least), tuple(reversed(most_to_least)))):
            for step in range(len(order) + 1):
                mean, low, high = self.interval(self.per_item(order[:step]))
                rows.append(
                    {
                        "sampling": sampling,
                        "order": order_name,
                        "step": step,
                        "factor": order[step - 1] if step else "",
                        "accuracy": mean,
                        "ci_low": low,
                        "ci_high": high,
                    }
                )
        return pd.DataFrame(rows)

    def order_check(self, most_to_least: Sequence[str]) -> tuple[float, float, float]:
        """Area between the two curves of MoSIP Fig. 3b, ``mean_k [acc_rev(k) - acc_mu*(k)]``, with interval.

        ``k`` runs over the intermediate steps ``1 .. d - 1`` (both curves start at 1
        and end at the all-re-drawn accuracy). Positive: re-drawing in ``mu*`` order
        loses accuracy faster than the reverse order. 0 for a single factor.
        """
        order = tuple(most_to_least)
        d = len(order)
        if d < 2:
            return 0.0, 0.0, 0.0
        reverse = tuple(reversed(order))
        gaps = [self.per_item(reverse[:k]) - self.per_item(order[:k]) for k in range(1, d)]
        return self.interval(np.mean(gaps, axis=0))


def _shapley_cells(cells: Mapping[Subset, np.ndarray], factors: Sequence[str], factor: str) -> np.ndarray:
    """Per-cell Shapley contribution ``(n, R)`` of ``factor`` (module docstring)."""
    others = [f for f in factors if f != factor]
    weights = shapley_weights(len(factors))
    total = np.zeros_like(cells[()])
    for size in range(len(factors)):
        for subset in itertools.combinations(others, size):
            with_factor = canonical(subset + (factor,), factors)
            total += weights[size] * (cells[canonical(subset, factors)] - cells[with_factor])
    return total


def _drop_tables(cells, factors, bootstrap: ItemBootstrap, threshold: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    shapley, single = [], []
    for factor in factors:
        mean, low, high = bootstrap.interval(_shapley_cells(cells, factors, factor).mean(axis=1))
        shapley.append(
            {
                "factor": factor,
                "drop": mean,
                "ci_low": low,
                "ci_high": high,
                "state": verdict_state(low, high, threshold),
            }
        )
        drop, low, high = bootstrap.interval(1.0 - cells[(factor,)].mean(axis=1))
        single.append({"factor": factor, "accuracy": 1.0 - drop, "drop": drop, "ci_low": low, "ci_high": high})
    return pd.DataFrame(shapley), pd.DataFrame(single)


#: The audit's default first-round budget (``audit.interventions``).
DEFAULT_BUDGET = Budget(256, 10)


def run_interventions(
    reader: ProbabilityReader,
    pool: Scene,
    factors: Sequence[str] | None = None,
    budget: Budget = DEFAULT_BUDGET,
    threshold: float = 0.1,
    seed: int = 0,
    conf_level: float = 0.95,
    n_resamples: int = 2000,
    shard: Shard | None = None,
) -> InterventionResult:
    """Interventions on the correctly classified items of ``pool``, growing the budget while a verdict is unsure.

    Parameters
    ----------
    reader : ProbabilityReader
    pool : Scene
        Held-out items with factors from the training distribution, in a seeded order.
    factors : sequence of str, optional
        Factors to re-draw (default: every factor of the scene).
    budget : Budget
        Items and repetitions of the first round, and how often they may double.
    threshold : float
        ``drop_threshold`` of the three-state verdict.
    seed : int
        Seeds the re-draws and the bootstrap (identical on every device).
    conf_level, n_resamples
        Bootstrap percentile interval.
    shard : Shard, optional
        A process of a sharded run: it classifies and re-draws its share of the items and
        receives the others' results, so every process returns the same result.
    """
    factors = pool.check(pool.names if factors is None else factors)
    positions = correctly_classified(reader, pool, shard)
    sampler = CellSampler(reader, pool, positions, factors, seed, shard)
    n_items = min(int(budget.n_items), sampler.n_available)
    repetitions = int(budget.repetitions)
    rounds = 0
    while True:
        rounds += 1
        sampler.grow(n_items, repetitions)
        cells = sampler.accuracy_cells()
        bootstrap = ItemBootstrap(n_items, n_resamples, conf_level, seed)
        shapley, single = _drop_tables(cells, factors, bootstrap, threshold)
        if rounds == 1:
            first_states = dict(zip(shapley["factor"], shapley["state"]))
        if rounds > budget.max_doublings or not (shapley["state"] == "inconclusive").any():
            break
        if n_items < sampler.n_available:
            n_items = min(2 * n_items, sampler.n_available)
        else:
            repetitions *= 2
    total = bootstrap.interval(1.0 - cells[canonical(factors, factors)].mean(axis=1))
    return InterventionResult(
        shapley_drop=shapley,
        single_drop=single,
        total_drop=total,
        cells=cells,
        bootstrap=bootstrap,
        factors=factors,
        rounds=rounds,
        first_states=first_states,
        n_pool=len(pool),
        n_correct=sampler.n_available,
        threshold=threshold,
    )
