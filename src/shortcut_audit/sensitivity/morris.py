"""Morris elementary-effects screening, batched and streamed on any device.

Public API
----------
``morris(f, d, n_trajectories=100, levels=4, design="trajectory", seed=0,
batch_size=4096, device=None, conf_level=0.95, groups=None, n_resamples=100,
sampler="sobol", names=None, output_names=None, dtype=torch.float32) -> MorrisResult``

Lower-level pure functions (reused by the factor audit and fed SALib's matrices in tests):

``trajectory_design(n_trajectories, d, levels=4, seed=0, groups=None, device=None)``
    Morris (1991) one-at-a-time trajectories on a ``levels``-grid with
    ``delta = levels / (2 (levels - 1))`` (Campolongo et al. 2007 for groups).
``radial_design(n_base, d, seed=0, sampler="sobol", device=None)``
    Radial design of Campolongo, Saltelli & Cariboni (2011) from quasi-random base points.
``MorrisDesign.from_matrix(x, kind="trajectory", groups=None)``
    Recover a design from an explicit ``(r (G + 1), d)`` sample matrix (e.g. SALib's).
``elementary_effects(design, outputs)``
    ``(r, G, k)`` effects from a design and its outputs ``(r (G + 1), k)``.
``analyse(effects, conf_level=0.95, n_resamples=100, seed=0)``
    ``mu``, ``mu_star``, ``sigma`` (ddof = 1) and the bootstrap ``mu_star_conf``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import torch

from shortcut_audit.runtime import resolve_device
from shortcut_audit.sensitivity.evaluation import check_batch_size, evaluate_in_batches
from shortcut_audit.sensitivity.results import MorrisResult
from shortcut_audit.sensitivity.samplers import check_sampler, sample
from shortcut_audit.sensitivity.sobol import normal_quantile, power_of_two_scale

__all__ = [
    "DESIGNS",
    "MorrisDesign",
    "analyse",
    "elementary_effects",
    "grid_step",
    "group_index",
    "morris",
    "radial_design",
    "trajectory_design",
]

DESIGNS = ("trajectory", "radial")
_BOOTSTRAP_CHUNK_ELEMENTS = 1 << 18


def grid_step(levels: int) -> float:
    """Morris's step ``delta = p / (2 (p - 1))`` on a ``p``-level grid (``p`` even, >= 2)."""
    if int(levels) < 2 or int(levels) % 2:
        raise ValueError(f"levels must be an even number >= 2 (Morris 1991), got {levels}")
    return levels / (2.0 * (levels - 1))


def group_index(groups: Sequence[Hashable] | None, d: int) -> tuple[torch.Tensor, tuple[str, ...] | None]:
    """Map each input to its group: ``(group_of (d,) long, group names in first-seen order)``.

    ``groups`` gives one label per input (as SALib's ``problem["groups"]``); ``None``
    puts every input in its own group and returns ``None`` for the names.
    """
    if groups is None:
        return torch.arange(d), None
    labels = list(groups)
    if len(labels) != d:
        raise ValueError(f"groups must give one label per input: {len(labels)} labels for d = {d}")
    order: dict[Hashable, int] = {}
    for label in labels:
        order.setdefault(label, len(order))
    return torch.tensor([order[label] for label in labels]), tuple(str(label) for label in order)


@dataclass(frozen=True)
class MorrisDesign:
    """A one-at-a-time design in compact form: rows are built on demand.

    Trajectory ``t`` has ``S + 1`` points (``S`` = number of groups). Input ``j`` starts
    at ``start[t, j]`` and changes by ``change[t, j]`` at step ``move_at[t, j]``
    (1..S). In a trajectory design changes accumulate (each point differs from the
    previous one); in a radial design each point differs from the first one only.

    Attributes
    ----------
    kind : {"trajectory", "radial"}
    start, change : torch.Tensor
        ``(r, d)``.
    move_at : torch.Tensor
        ``(r, d)`` long, the step at which each input moves.
    moved_group : torch.Tensor
        ``(r, S)`` long, the group moved at each step.
    step : torch.Tensor
        ``(r, S)`` signed step of the moved group (the denominator of its effect).
    n_groups : int
    """

    kind: str
    start: torch.Tensor
    change: torch.Tensor
    move_at: torch.Tensor
    moved_group: torch.Tensor
    step: torch.Tensor
    n_groups: int

    @property
    def n_trajectories(self) -> int:
        return self.start.shape[0]

    @property
    def d(self) -> int:
        return self.start.shape[1]

    @property
    def points_per_trajectory(self) -> int:
        return self.n_groups + 1

    @property
    def n_points(self) -> int:
        return self.n_trajectories * self.points_per_trajectory

    def rows(self, start: int, stop: int) -> torch.Tensor:
        """Design rows ``start:stop`` of the stacked ``(r (S + 1), d)`` matrix."""
        flat = torch.arange(start, stop, device=self.start.device)
        trajectory, position = flat // self.points_per_trajectory, flat % self.points_per_trajectory
        move_at = self.move_at[trajectory]
        if self.kind == "trajectory":
            moved = position.unsqueeze(1) >= move_at
        else:
            moved = position.unsqueeze(1) == move_at
        return self.start[trajectory] + self.change[trajectory] * moved.to(self.start.dtype)

    def matrix(self) -> torch.Tensor:
        """The whole ``(r (S + 1), d)`` design matrix (for small designs and tests)."""
        return self.rows(0, self.n_points)

    @classmethod
    def from_matrix(
        cls,
        x: torch.Tensor,
        kind: str = "trajectory",
        groups: Sequence[Hashable] | None = None,
        atol: float = 1e-9,
    ) -> MorrisDesign:
        """Recover the design from an explicit sample matrix ``(r (S + 1), d)``.

        Every step must move exactly the inputs of one group (all by the same distance),
        and every group exactly once per trajectory; otherwise ``ValueError``. The
        signed step of a group is that of its first moved input: SALib's grouped
        designs may move members in opposite directions, where only ``mu_star`` and
        ``sigma`` are meaningful (Campolongo et al. 2007); designs from
        :func:`trajectory_design` move a group's inputs in one direction.
        """
        if kind not in DESIGNS:
            raise ValueError(f"unknown Morris design {kind!r}; choose one of {list(DESIGNS)}")
        x = torch.as_tensor(x)
        if not x.is_floating_point() or x.dim() != 2:
            raise ValueError(f"the design must be a 2-D float matrix, got {x.dtype} {tuple(x.shape)}")
        d = x.shape[1]
        group_of, _ = group_index(groups, d)
        group_of = group_of.to(x.device)
        n_groups = int(group_of.max()) + 1
        if x.shape[0] % (n_groups + 1):
            raise ValueError(f"{x.shape[0]} rows are not a whole number of trajectories of {n_groups + 1} points")
        points = x.view(-1, n_groups + 1, d)
        reference = points[:, :-1] if kind == "trajectory" else points[:, :1]
        differences = points[:, 1:] - reference  # (r, S, d)
        changed = differences.abs() > atol
        first_changed = differences.abs().argmax(dim=2)  # (r, S)
        moved_group = group_of[first_changed]
        expected = group_of.view(1, 1, d) == moved_group.unsqueeze(-1)
        if not bool((changed == expected).all()):
            raise ValueError("every step of a Morris design must move exactly the inputs of one group")
        step = differences.gather(2, first_changed.unsqueeze(-1)).squeeze(-1)
        if not bool(torch.allclose(differences.abs(), step.abs().unsqueeze(-1) * expected, atol=atol)):
            raise ValueError("the inputs of a group must all move by the same distance")
        if not bool((moved_group.sort(dim=1).values == torch.arange(n_groups, device=x.device)).all()):
            raise ValueError("every group must move exactly once per trajectory")
        step_of_group = torch.empty_like(moved_group).scatter_(
            1, moved_group, torch.arange(1, n_groups + 1, device=x.device).expand_as(moved_group)
        )
        move_at = step_of_group[:, group_of]
        change = torch.gather(step, 1, move_at - 1)
        return cls(kind, points[:, 0].clone(), change, move_at, moved_group, step, n_groups)

    def effects(self, outputs: torch.Tensor) -> torch.Tensor:
        """Elementary effects ``(r, S, k)`` (group order) from outputs ``(r (S + 1), k)``.

        ``EE = (y(x + step e_g) - y(x)) / step`` with ``x`` the previous point of the
        trajectory (Morris 1991, eq. 1) or the radial base point (Campolongo et al. 2011).
        """
        if outputs.dim() == 1:
            outputs = outputs.unsqueeze(1)
        if outputs.shape[0] != self.n_points:
            raise ValueError(f"{outputs.shape[0]} outputs for a design of {self.n_points} points")
        y = outputs.to(torch.float64).view(self.n_trajectories, self.points_per_trajectory, -1)
        reference = y[:, :-1] if self.kind == "trajectory" else y[:, :1]
        per_step = (y[:, 1:] - reference) / self.step.to(y).unsqueeze(-1)
        index = self.moved_group.to(y.device).unsqueeze(-1).expand_as(per_step)
        return torch.empty_like(per_step).scatter_(1, index, per_step)


def trajectory_design(
    n_trajectories: int,
    d: int,
    levels: int = 4,
    seed: int = 0,
    groups: Sequence[Hashable] | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> MorrisDesign:
    """Random Morris trajectories, ``B* = J x* + (delta/2) [(2B - J) D* + J] P*`` (Morris 1991).

    Each trajectory starts from ``x*`` drawn on the grid ``{0, 1/(p-1), ..., 1 - delta}``,
    visits the groups in a random order (``P*``) and moves each group's inputs by
    ``+delta`` or ``-delta`` (``D*``; a ``-delta`` move starts the inputs at
    ``x* + delta``). With groups all inputs of a group move together (Campolongo et al.
    2007). All randomness comes from a CPU generator seeded with ``seed``.
    """
    delta = grid_step(levels)
    if int(n_trajectories) < 1 or int(d) < 1:
        raise ValueError(f"need n_trajectories >= 1 and d >= 1, got {n_trajectories}, {d}")
    r, d = int(n_trajectories), int(d)
    group_of, _ = group_index(groups, d)
    n_groups = int(group_of.max()) + 1
    generator = torch.Generator().manual_seed(seed)
    x_star = torch.randint(levels // 2, (r, d), generator=generator).to(torch.float64) / (levels - 1)
    direction = (torch.randint(2, (r, n_groups), generator=generator) * 2 - 1).to(torch.float64)
    moved_group = torch.argsort(torch.rand(r, n_groups, generator=generator), dim=1)
    step_of_group = torch.argsort(moved_group, dim=1) + 1
    input_direction = direction[:, group_of]
    start = x_star + delta * (input_direction < 0).to(torch.float64)
    step = delta * torch.gather(direction, 1, moved_group)
    device = resolve_device(device)
    return MorrisDesign(
        kind="trajectory",
        start=start.to(device, dtype),
        change=(delta * input_direction).to(device, dtype),
        move_at=step_of_group[:, group_of].to(device),
        moved_group=moved_group.to(device),
        step=step.to(device, torch.float64),
        n_groups=n_groups,
    )


def radial_design(
    n_base: int,
    d: int,
    seed: int = 0,
    sampler: str = "sobol",
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> MorrisDesign:
    """Radial one-at-a-time design (Campolongo, Saltelli & Cariboni 2011, Sec. 3).

    Base point ``a`` and auxiliary point ``b`` are the two halves of one point of a
    ``2d``-dimensional quasi-random set; point ``i`` (1..d) is ``a`` with input ``i``
    replaced by ``b_i``, and its effect is ``(f(a^(i)) - f(a)) / (b_i - a_i)``.
    """
    if int(n_base) < 1 or int(d) < 1:
        raise ValueError(f"need n_base >= 1 and d >= 1, got {n_base}, {d}")
    r, d = int(n_base), int(d)
    device = resolve_device(device)
    points = sample(sampler, r, 2 * d, seed=seed, device=device, dtype=dtype)
    a, b = points[:, :d], points[:, d:]
    change = b - a
    if bool((change == 0).any()):
        raise ValueError("radial design has a base point with b_i == a_i; use another seed or sampler")
    steps = torch.arange(1, d + 1, device=device).expand(r, d)
    return MorrisDesign(
        kind="radial",
        start=a,
        change=change,
        move_at=steps.clone(),
        moved_group=(steps - 1).clone(),
        step=change.to(torch.float64),
        n_groups=d,
    )


def elementary_effects(
    design: MorrisDesign | torch.Tensor,
    outputs: torch.Tensor,
    kind: str = "trajectory",
    groups: Sequence[Hashable] | None = None,
) -> torch.Tensor:
    """Elementary effects ``(r, G, k)`` from a design (object or explicit matrix) and outputs.

    ``outputs`` is ``(r (G + 1),)`` or ``(r (G + 1), k)`` in design-row order; an explicit
    matrix is read with :meth:`MorrisDesign.from_matrix` (``kind`` and ``groups`` apply
    only then).
    """
    if not isinstance(design, MorrisDesign):
        design = MorrisDesign.from_matrix(torch.as_tensor(design), kind=kind, groups=groups)
    return design.effects(torch.as_tensor(outputs).to(design.start.device))


def analyse(
    effects: torch.Tensor, conf_level: float = 0.95, n_resamples: int = 100, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Morris statistics of elementary effects ``(r, G)`` or ``(r, G, k)``.

    ``mu`` = mean effect, ``mu_star`` = mean absolute effect (Campolongo et al. 2007),
    ``sigma`` = standard deviation with ddof = 1 (Morris 1991) and ``mu_star_conf`` =
    ``z * sd`` of ``mu_star`` over ``n_resamples`` bootstrap resamples of the
    trajectories (as SALib). Shapes follow ``effects`` without its first dimension.

    Every statistic is homogeneous of degree 1 in the effects, so they are computed on
    the effects divided by a power of two >= their largest magnitude per column and
    rescaled: exact for ordinary effects, and finite for huge ones (``1e155``, whose
    squares overflow float64). A statistic beyond the float64 range is a ``ValueError``.
    """
    if effects.shape[0] < 2:
        raise ValueError("Morris statistics need at least 2 trajectories (sigma uses ddof = 1)")
    z = normal_quantile(conf_level)
    effects = effects.to(torch.float64)
    scale = power_of_two_scale(effects, dim=0)
    unit = effects / scale
    absolute = unit.abs()
    result = {
        "mu": unit.mean(dim=0),
        "mu_star": absolute.mean(dim=0),
        "sigma": unit.std(dim=0, unbiased=True),
        "mu_star_conf": torch.zeros_like(scale),
    }
    if n_resamples >= 2:
        r = effects.shape[0]
        generator = torch.Generator().manual_seed(seed)
        resample_rows = torch.randint(r, (int(n_resamples), r), generator=generator)
        chunk = max(1, _BOOTSTRAP_CHUNK_ELEMENTS // absolute.numel())
        resampled_mu_star = [absolute[rows.to(effects.device)].mean(dim=1) for rows in resample_rows.split(chunk)]
        result["mu_star_conf"] = z * torch.cat(resampled_mu_star).std(dim=0, unbiased=True)
    result = {name: value * scale for name, value in result.items()}
    _check_finite("Morris statistics", *result.values())
    return result


def _check_finite(what: str, *values: torch.Tensor) -> None:
    if not all(bool(torch.isfinite(v).all()) for v in values):
        raise ValueError(
            f"{what} exceed the float64 range (non-finite values); the model's outputs are too "
            "large in magnitude: rescale them (e.g. explain log-probabilities or normalised scores)"
        )


def morris(
    f: Callable[[torch.Tensor], torch.Tensor],
    d: int,
    n_trajectories: int = 100,
    levels: int = 4,
    design: str = "trajectory",
    seed: int = 0,
    batch_size: int = 4096,
    device: str | torch.device | None = None,
    conf_level: float = 0.95,
    groups: Sequence[Hashable] | None = None,
    n_resamples: int = 100,
    sampler: str = "sobol",
    names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dtype: torch.dtype = torch.float32,
) -> MorrisResult:
    """Morris screening of ``f`` on the unit hypercube.

    Parameters
    ----------
    f : callable
        ``f(x) -> (B,)`` or ``(B, k)`` for ``x`` a ``(B, d)`` tensor in ``[0, 1]^d`` on
        ``device``; ``B <= batch_size`` on every call.
    d : int
        Number of inputs.
    n_trajectories : int
        Trajectories (``"trajectory"``) or radial base points (``"radial"``), >= 2.
        ``f`` is evaluated ``n_trajectories * (G + 1)`` times (``G`` groups, or ``d``).
    levels : int
        Grid levels ``p`` of the trajectory design (even); unused by the radial design.
    design : {"trajectory", "radial"}
    seed : int
        Seeds the design and the bootstrap; same seed, same numbers on the CPU.
    batch_size : int
        Maximum number of points per call of ``f``; design rows are built per batch.
    device : str, torch.device or None
        Where points, outputs and the arithmetic live (None: CUDA if available).
    conf_level, n_resamples : float, int
        Bootstrap confidence of ``mu_star``.
    groups : sequence, optional
        One group label per input (trajectory design only); results are per group.
    sampler : str
        Point set of the radial base points (default scrambled Sobol).
    names, output_names : sequence of str, optional
        Labels; with groups the group labels are the names.
    dtype : torch.dtype
        Floating dtype of the points given to ``f``.

    Returns
    -------
    MorrisResult
        ``mu``, ``mu_star``, ``sigma``, ``mu_star_conf`` on the CPU, shape ``(G,)`` for a
        scalar ``f`` or ``(G, k)``.
    """
    if design not in DESIGNS:
        raise ValueError(f"unknown Morris design {design!r}; choose one of {list(DESIGNS)}")
    if int(n_trajectories) < 2:
        raise ValueError(f"n_trajectories must be >= 2 (sigma uses ddof = 1), got {n_trajectories}")
    check_batch_size(batch_size)
    normal_quantile(conf_level)
    grid_step(levels)
    device = resolve_device(device)
    if design == "radial":
        if groups is not None:
            raise ValueError("groups need design='trajectory'; the radial design moves single inputs")
        check_sampler(sampler)
        plan = radial_design(n_trajectories, d, seed=seed, sampler=sampler, device=device, dtype=dtype)
    else:
        plan = trajectory_design(n_trajectories, d, levels, seed=seed, groups=groups, device=device, dtype=dtype)
    _, group_names = group_index(groups, int(d))
    if group_names is None:
        group_names = tuple(names) if names is not None else tuple(f"x{i}" for i in range(int(d)))
        if len(group_names) != int(d):
            raise ValueError(f"{len(group_names)} input names given for d = {d}")

    outputs, scalar = evaluate_in_batches(f, plan.rows, plan.n_points, batch_size, device)
    effects = plan.effects(outputs)
    _check_finite("elementary effects", effects)  # finite outputs whose differences overflow
    stats = analyse(effects, conf_level, n_resamples, seed)
    messages: tuple[str, ...] = ()
    constant = (outputs.amax(dim=0) == outputs.amin(dim=0)).nonzero().flatten().tolist()
    if constant:
        messages = (f"model output(s) {constant} are constant over the design; their effects are 0",)
        warnings.warn(messages[0], RuntimeWarning, stacklevel=2)
    k = outputs.shape[1]
    if output_names is not None:
        output_names = tuple(str(n) for n in output_names)
        if len(output_names) != k:
            raise ValueError(f"{len(output_names)} output names given for {k} outputs")
    else:
        output_names = ("y",) if scalar else tuple(f"y{i}" for i in range(k))

    def shaped(x: torch.Tensor) -> torch.Tensor:
        x = x.detach().to("cpu", torch.float64)
        return x.squeeze(-1) if scalar else x

    return MorrisResult(
        mu=shaped(stats["mu"]),
        mu_star=shaped(stats["mu_star"]),
        sigma=shaped(stats["sigma"]),
        mu_star_conf=shaped(stats["mu_star_conf"]),
        elementary_effects=shaped(effects),
        names=group_names,
        output_names=output_names,
        n_evaluations=plan.n_points,
        design=design,
        conf_level=conf_level,
        warnings=messages,
    )
