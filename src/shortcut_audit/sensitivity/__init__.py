"""Black-box sensitivity analysis in torch: Morris screening and Sobol indices.

``f`` receives ``(B, d)`` points of the unit hypercube on ``device`` (at most
``batch_size`` per call) and returns ``(B,)`` or ``(B, k)``; results are CPU
tensors of shape ``(d,)`` or ``(d, k)`` with a ``to_frame()`` tidy table.

>>> from shortcut_audit.sensitivity import morris, sobol
>>> r = morris(f, d, n_trajectories=100, levels=4, design="trajectory", seed=0)
>>> r.mu, r.mu_star, r.sigma, r.mu_star_conf
>>> s = sobol(f, d, n=1024, estimator="jansen", sampler="sobol", seed=0)
>>> s.first, s.total, s.first_conf, s.total_conf

Modules: :mod:`.samplers` (point sets), :mod:`.estimators` (Sobol estimators),
:mod:`.morris`, :mod:`.sobol`, :mod:`.partitions` (unit-cube points -> model
inputs: semantic factors, MoSIP image grids, Sobol-attribution masks),
:mod:`.perturbations` (how masks act on images), :mod:`.results`.
"""

from shortcut_audit.sensitivity.estimators import ESTIMATORS, get_estimator
from shortcut_audit.sensitivity.morris import (
    MorrisDesign,
    analyse,
    elementary_effects,
    morris,
    radial_design,
    trajectory_design,
)
from shortcut_audit.sensitivity.partitions import (
    GridPartition,
    ImageGrid,
    MaskPartition,
    SemanticPartition,
    compose,
    global_lump_bounds,
)
from shortcut_audit.sensitivity.perturbations import PERTURBATIONS, Amplitude, Blur, Inpainting, make_perturbation
from shortcut_audit.sensitivity.results import MorrisResult, SobolResult
from shortcut_audit.sensitivity.samplers import SAMPLERS, sample
from shortcut_audit.sensitivity.sobol import saltelli_rows, sobol, sobol_indices

__all__ = [
    "ESTIMATORS",
    "PERTURBATIONS",
    "SAMPLERS",
    "Amplitude",
    "Blur",
    "GridPartition",
    "ImageGrid",
    "Inpainting",
    "MaskPartition",
    "MorrisDesign",
    "MorrisResult",
    "SemanticPartition",
    "SobolResult",
    "analyse",
    "compose",
    "elementary_effects",
    "get_estimator",
    "global_lump_bounds",
    "make_perturbation",
    "morris",
    "radial_design",
    "sample",
    "saltelli_rows",
    "sobol",
    "sobol_indices",
    "trajectory_design",
]
