"""The ``imagenet`` section of ``params.yaml``, validated before any work.

Default (CPU) profile: few images at a reduced input resolution and a few hundred
forward passes per image and method. Full (paper) profile for a GPU: each model's
own resolution (``input_size: null``), 80 ImageNet images (``val_dir`` with the
MoSIP classes), ``forwards: 3936``, ``morris.n_trajectories: 40``, ``batch_size:
512`` (``precision: bf16`` trades map agreement for speed on such a GPU, see
:mod:`shortcut_audit.runtime`), convergence
budgets up to 7,000 against a 10,000-forward reference on 7 x 7 masks (Sobol paper,
Sec. 4.3); GEEX's ``n* = 5000`` mirrored pairs would need ``forwards: 10000``;
``fidelity.steps: 224`` (RISE: one step per 224 pixels at 224 px; the ensemble paper's
protocol uses 1000, the Sobol paper does not state its count), ``fidelity.region_grid: 11``
(the Sobol grid) and ``ensembles.steps: 1000`` (Mahlau & Nolde, Sec. 4). The ensemble
settings default to Table 1 of Mahlau & Nolde (:data:`shortcut_audit.attribution.ensemble.TABLE_1`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from shortcut_audit.attribution.ensemble import TABLE_1, AggregationSettings
from shortcut_audit.attribution.geex import DEFAULT_SIGMA, LOSSES, NOISES
from shortcut_audit.config import ParamError, get, require, require_choice, require_names
from shortcut_audit.imagenet.fidelity import PROTOCOLS
from shortcut_audit.metrics.perturbation import BASELINES
from shortcut_audit.models.imagenet import model_spec
from shortcut_audit.runtime import PRECISIONS

FORWARD_METHODS = ("sobol", "rise", "occlusion", "morris_grid", "geex", "gers", "igeex")
ENSEMBLE_NORMALISATIONS = ("linear", "z", "l1", "l2")
ENSEMBLE_AGGREGATIONS = ("mean", "percentile", "ucb", "pi", "ei", "ci", "api", "aei", "var", "rbm")


def _positive_int(params, key, default=None, minimum=1):
    kwargs = {} if default is None else {"default": default}
    return require(params, key, int, lambda v: v >= minimum, f"an integer >= {minimum}", **kwargs)


def _fraction(params, key, default):
    return require(params, key, float, lambda v: 0 < v <= 1, "a number in (0, 1]", default=default)


def _string_list(params, key, choices=None, default=None):
    return require_names(params, key, choices, default)


def _optional_path(params, key):
    value = get(params, key, None)
    if value is not None and not isinstance(value, str):
        raise ParamError(key, f"expected a path or null, got {value!r}")
    return value


def _overlap_reference(params):
    """The architecture every other is compared with (MoSIP Sec. 5, Fig. 5: AlexNet).

    Any known ImageNet model (registry name or import path). When it is not among the
    loaded models (not in ``imagenet.models``, or its weights are absent) the first
    loaded model stands in; the run records which.
    """
    key = "imagenet.cross_architecture.reference_model"
    value = get(params, key, "alexnet")
    if not isinstance(value, str):
        raise ParamError(key, f"expected an ImageNet model name, got {value!r}")
    try:
        model_spec(value)
    except ValueError as err:
        raise ParamError(key, str(err)) from None
    return value


@dataclass(frozen=True)
class ImagenetConfig:
    models: list[str]
    weights_dir: str | None
    val_dir: str | None
    label_file: str | None
    synset_file: str | None
    classes: list[str] | None
    images_per_class: int
    max_images: int
    input_size: int | None
    batch_size: int
    precision: str
    compile: bool
    explained_output: str
    methods: list[str]
    forwards: int
    sobol_grid: int
    rise_grid: int
    rise_keep_prob: float
    occlusion_patch_fraction: float
    geex_sigma: float
    geex_loss: str
    geex_noise: str
    geex_noise_size: int
    white_box_smoothgrad_samples: int
    white_box_smoothgrad_noise_level: float
    white_box_ig_steps: int
    morris_grid: int
    morris_levels: int
    morris_trajectories: int
    morris_sampling: str
    fidelity_steps: int
    deletion_baseline: str
    insertion_baseline: str
    masking_fraction: float
    top_fraction: float
    neighbour_radius: int
    relevant_threshold: float
    top_k_pairs: int
    interaction_threshold: float
    ensemble_normalisations: list[str]
    ensemble_aggregations: list[str]
    ensemble_steps: int
    ensemble_baseline: str
    convergence_methods: list[str] = field(default_factory=list)
    convergence_budgets: list[int] = field(default_factory=list)
    convergence_reference: int = 0
    convergence_images: int = 1
    overlap_reference: str = "alexnet"
    mask_baseline: str = "zero"
    convergence_grid: int = 7
    seed: int = 0
    device: str = "auto"
    fidelity_protocols: list[str] = field(default_factory=lambda: ["rise"])
    region_grid: int = 8
    region_baseline: str = "gray"
    interval_level: float = 0.95
    ensemble_settings: AggregationSettings = TABLE_1
    ensemble_size_normalisation: str = "z"
    ensemble_size_aggregations: list[str] = field(default_factory=lambda: ["mean", "ucb"])


def parse_config(params: dict) -> ImagenetConfig:
    """Validate ``params['imagenet']`` (plus ``seed`` and ``device``); raise ParamError naming the key."""
    p = "imagenet"
    if not isinstance(get(params, p), dict):
        raise ParamError(p, "expected a mapping")
    models = _string_list(params, f"{p}.models")
    classes = get(params, f"{p}.classes", None)
    if classes is not None and (not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)):
        raise ParamError(f"{p}.classes", f"expected a list of ImageNet category names or null, got {classes!r}")
    input_size = get(params, f"{p}.input_size", None)
    if input_size is not None:
        input_size = _positive_int(params, f"{p}.input_size", minimum=32)
    methods = _string_list(params, f"{p}.methods", FORWARD_METHODS)
    budgets = get(params, f"{p}.convergence.budgets")
    # The convergence study always runs (convergence.csv is a stage output the report and the
    # validation read): an empty list would leave that table without rows.
    if (
        not isinstance(budgets, list)
        or not budgets
        or not all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in budgets)
    ):
        raise ParamError(
            f"{p}.convergence.budgets",
            f"expected a non-empty list of positive integers (forward passes per image), got {budgets!r}",
        )
    if len(set(budgets)) != len(budgets):
        raise ParamError(f"{p}.convergence.budgets", f"duplicate budgets in {budgets!r}")
    reference = _positive_int(params, f"{p}.convergence.reference_forwards", default=1024)
    if reference <= max(budgets):
        raise ParamError(
            f"{p}.convergence.reference_forwards", f"must exceed the largest budget {max(budgets)}, got {reference}"
        )
    conv_methods = _string_list(params, f"{p}.convergence.methods", ("sobol", "rise"), default=["sobol", "rise"])
    # the Sobol paper's convergence study (Sec. 4.3): both methods on 7 x 7 masks
    conv_grid = _positive_int(params, f"{p}.convergence.grid_size", default=7, minimum=2)
    forwards = _positive_int(params, f"{p}.forwards", minimum=16)
    sobol_grid = _positive_int(params, f"{p}.sobol.grid_size", default=7, minimum=2)
    # total Sobol indices cost N (d + 1) forwards with N >= 2
    sobol_minimum = 2 * (sobol_grid**2 + 1)
    if "sobol" in methods and forwards < sobol_minimum:
        raise ParamError(
            f"{p}.forwards",
            f"Sobol on a {sobol_grid}x{sobol_grid} grid needs at least {sobol_minimum} forwards, got {forwards}",
        )
    conv_minimum = 2 * (conv_grid**2 + 1)
    if "sobol" in conv_methods and min(budgets) < conv_minimum:
        raise ParamError(
            f"{p}.convergence.budgets",
            f"Sobol on a {conv_grid}x{conv_grid} grid needs budgets >= {conv_minimum}, got {budgets}",
        )
    return ImagenetConfig(
        models=models,
        weights_dir=_optional_path(params, f"{p}.weights_dir"),
        val_dir=_optional_path(params, f"{p}.val_dir"),
        label_file=_optional_path(params, f"{p}.label_file"),
        synset_file=_optional_path(params, f"{p}.synset_file"),
        classes=classes,
        images_per_class=_positive_int(params, f"{p}.images_per_class", default=20),
        max_images=_positive_int(params, f"{p}.max_images", default=3),
        input_size=input_size,
        batch_size=_positive_int(params, f"{p}.batch_size", default=64),
        precision=require_choice(params, f"{p}.precision", PRECISIONS, default="fast"),
        compile=require(params, f"{p}.compile", bool, default=False),
        explained_output=require_choice(params, f"{p}.explained_output", ("logit", "probability"), default="logit"),
        methods=methods,
        forwards=forwards,
        sobol_grid=sobol_grid,
        rise_grid=_positive_int(params, f"{p}.rise.grid_size", default=7, minimum=2),
        rise_keep_prob=require(
            params, f"{p}.rise.keep_prob", float, lambda v: 0 < v < 1, "a number in (0, 1)", default=0.5
        ),
        occlusion_patch_fraction=_fraction(params, f"{p}.occlusion.patch_fraction", 0.2),
        geex_sigma=require(params, f"{p}.geex.sigma", float, lambda v: v > 0, "a number > 0", default=DEFAULT_SIGMA),
        geex_loss=require_choice(params, f"{p}.geex.loss", LOSSES, default="uniform_ce"),
        geex_noise=require_choice(params, f"{p}.geex.noise", NOISES, default="shared"),
        geex_noise_size=_positive_int(params, f"{p}.geex.noise_size", default=8),
        white_box_smoothgrad_samples=_positive_int(params, f"{p}.geex.white_box.smoothgrad_samples", default=50),
        white_box_smoothgrad_noise_level=require(
            params, f"{p}.geex.white_box.smoothgrad_noise_level", float, lambda v: v > 0, "a number > 0", default=0.15
        ),
        white_box_ig_steps=_positive_int(params, f"{p}.geex.white_box.ig_steps", default=50),
        morris_grid=_positive_int(params, f"{p}.morris.grid_size", default=8, minimum=2),
        morris_levels=require(
            params, f"{p}.morris.levels", int, lambda v: v >= 2 and v % 2 == 0, "an even integer >= 2", default=8
        ),
        morris_trajectories=_positive_int(params, f"{p}.morris.n_trajectories", default=4, minimum=2),
        morris_sampling=require_choice(params, f"{p}.morris.sampling", ("local", "global"), default="local"),
        fidelity_steps=_positive_int(params, f"{p}.fidelity.steps", default=20),
        deletion_baseline=require_choice(params, f"{p}.fidelity.deletion_baseline", BASELINES, default="zero"),
        insertion_baseline=require_choice(params, f"{p}.fidelity.insertion_baseline", BASELINES, default="blur"),
        masking_fraction=_fraction(params, f"{p}.cross_architecture.masking_fraction", 0.2),
        top_fraction=_fraction(params, f"{p}.cross_architecture.top_fraction", 0.2),
        neighbour_radius=_positive_int(params, f"{p}.cross_architecture.neighbour_radius", default=1, minimum=0),
        relevant_threshold=_fraction(params, f"{p}.cross_architecture.relevant_threshold", 0.6),
        top_k_pairs=_positive_int(params, f"{p}.cross_architecture.top_k", default=5, minimum=2),
        interaction_threshold=require(
            params,
            f"{p}.cross_architecture.interaction_threshold",
            float,
            lambda v: v >= 0,
            "a number >= 0",
            default=0.1,
        ),
        ensemble_normalisations=_string_list(
            params, f"{p}.ensembles.normalisations", ENSEMBLE_NORMALISATIONS, default=list(ENSEMBLE_NORMALISATIONS)
        ),
        ensemble_aggregations=_string_list(
            params, f"{p}.ensembles.aggregations", ENSEMBLE_AGGREGATIONS, default=list(ENSEMBLE_AGGREGATIONS)
        ),
        ensemble_steps=_positive_int(params, f"{p}.ensembles.steps", default=10),
        ensemble_baseline=require_choice(params, f"{p}.ensembles.baseline", BASELINES, default="random_normal"),
        convergence_methods=conv_methods,
        convergence_budgets=list(budgets),
        convergence_reference=reference,
        convergence_images=_positive_int(params, f"{p}.convergence.n_images", default=1),
        overlap_reference=_overlap_reference(params),
        mask_baseline=require_choice(params, f"{p}.cross_architecture.mask_baseline", BASELINES, default="zero"),
        convergence_grid=conv_grid,
        seed=require(params, "seed", int, lambda v: v >= 0, "an integer >= 0", default=0),
        device=require_choice(params, "device", ("auto", "cpu", "cuda"), default="auto"),
        **_fidelity_and_ensemble_extras(params, p),
    )


def _number_pair(params, key):
    value = get(params, key)
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise ParamError(key, f"expected [a, b], two numbers, got {value!r}")
    return float(value[0]), float(value[1])


def aggregation_settings(params: dict, key: str) -> AggregationSettings:
    """``AggregationSettings`` from the mapping at ``key``; absent entries keep Table 1 values."""
    given = get(params, key, {})
    if not isinstance(given, dict):
        raise ParamError(key, "expected a mapping of aggregation settings")
    known = [f.name for f in fields(AggregationSettings)]
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ParamError(key, f"unknown setting(s) {unknown}; known: {', '.join(known)}")
    values = {}
    for name in given:
        default = getattr(TABLE_1, name)
        if isinstance(default, tuple):
            values[name] = _number_pair(params, f"{key}.{name}")
        else:
            values[name] = require(params, f"{key}.{name}", type(default))
    try:
        return AggregationSettings(**values)
    except ValueError as err:
        raise ParamError(key, str(err)) from None


def _fidelity_and_ensemble_extras(params: dict, p: str) -> dict:
    """Fidelity protocols and intervals, and the ensembles' Table 1 settings and size protocol."""
    protocols = _string_list(params, f"{p}.fidelity.protocols", PROTOCOLS, default=["rise"])
    region_grid = _positive_int(params, f"{p}.fidelity.region_grid", default=8, minimum=2)
    input_size = get(params, f"{p}.input_size", None)
    if "region" in protocols and isinstance(input_size, int) and region_grid > input_size:
        raise ParamError(f"{p}.fidelity.region_grid", f"must not exceed input_size {input_size}, got {region_grid}")
    return dict(
        fidelity_protocols=protocols,
        region_grid=region_grid,
        region_baseline=require_choice(params, f"{p}.fidelity.region_baseline", BASELINES, default="gray"),
        interval_level=require(
            params, f"{p}.fidelity.interval_level", float, lambda v: 0 < v < 1, "a number in (0, 1)", default=0.95
        ),
        ensemble_settings=aggregation_settings(params, f"{p}.ensembles.settings"),
        ensemble_size_normalisation=require_choice(
            params, f"{p}.ensembles.size_normalisation", ENSEMBLE_NORMALISATIONS, default="z"
        ),
        ensemble_size_aggregations=_string_list(
            params, f"{p}.ensembles.size_aggregations", ENSEMBLE_AGGREGATIONS, default=["mean", "ucb"]
        ),
    )
