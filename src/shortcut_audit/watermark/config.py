"""The ``watermark`` section of ``params.yaml``, validated before any work.

:meth:`WatermarkConfig.from_params` reads every key the stage uses and raises
:class:`~shortcut_audit.config.ParamError` naming the first bad one;
:func:`check_inputs` then makes sure the inputs exist before a model is loaded: the
``imagenet-w`` font, every watermark text drawable by it, the images, and every
factor function of the Morris list drawing a valid image at each model's input size.
A failure there raises :class:`~shortcut_audit.factors.base.FactorError` (or
``FileNotFoundError`` for the images) naming the factor or path, and the stage
writes nothing.

Keys left ``null`` in the ``watermark`` section fall back to the ``imagenet``
section: ``weights_dir``, ``val_dir``, ``label_file`` and ``synset_file``, so one
ImageNet folder serves both stages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from shortcut_audit.attribution.geex import DEFAULT_SIGMA, LOSSES, NOISES
from shortcut_audit.config import ParamError, get, require, require_choice, require_names
from shortcut_audit.factors.base import ImageFactor
from shortcut_audit.factors.registry import FactorRegistry, factor_registry
from shortcut_audit.factors.watermark import TEXTS, WATERMARK, font_path, text_alpha, watermark_factor
from shortcut_audit.models.imagenet import model_spec
from shortcut_audit.runtime import PRECISIONS

__all__ = ["BLACK_BOX_METHODS", "WHITE_BOX_METHODS", "ExplainConfig", "WatermarkConfig", "check_inputs"]

SECTION = "watermark"
BLACK_BOX_METHODS = ("sobol", "rise", "occlusion", "morris_grid", "geex", "gers", "igeex")
WHITE_BOX_METHODS = ("gradient", "gradient_input", "smoothgrad", "integrated_gradients", "gradcam")
ENSEMBLE_NORMALISATIONS = ("linear", "z", "l1", "l2")
ENSEMBLE_AGGREGATIONS = ("mean", "percentile", "ucb", "pi", "ei", "ci", "api", "aei", "var", "rbm")
WATERMARK_ASPECTS = ("watermark_opacity", "watermark_y", "watermark_text")
FALLBACK_KEYS = ("weights_dir", "val_dir", "label_file", "synset_file")


def _int(params: Mapping, key: str, minimum: int = 1, default=None) -> int:
    kwargs = {} if default is None else {"default": default}
    return require(params, key, int, lambda v: v >= minimum, f"an integer >= {minimum}", **kwargs)


def _optional_int(params: Mapping, key: str, minimum: int = 1) -> int | None:
    value = get(params, key, None)
    return None if value is None else _int(params, key, minimum)


def _optional_path(params: Mapping, key: str) -> str | None:
    value = get(params, key, None)
    if value is not None and (not isinstance(value, str) or not value):
        raise ParamError(key, f"expected a path or null, got {value!r}")
    return value


def _fallback_path(params: Mapping, name: str) -> str | None:
    """``watermark.<name>``, else ``imagenet.<name>`` (module docstring)."""
    own = _optional_path(params, f"{SECTION}.{name}")
    return own if own is not None else _optional_path(params, f"imagenet.{name}")


def _models(params: Mapping, key: str, default=None) -> list[str]:
    names = require_names(params, key, default=default)
    for name in names:
        try:
            model_spec(name)
        except ValueError as err:
            raise ParamError(key, str(err)) from None
    return names


def _texts(params: Mapping) -> dict[str, str]:
    key = f"{SECTION}.texts"
    value = get(params, key, dict(TEXTS))
    if not isinstance(value, Mapping) or not value:
        raise ParamError(key, f"expected a mapping level name -> text (the first is the one drawn), got {value!r}")
    for name, text in value.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ParamError(key, f"level names must be identifiers, got {name!r}")
        if not isinstance(text, str) or not text.strip():
            raise ParamError(f"{key}.{name}", f"expected a non-empty text, got {text!r}")
    return {str(k): str(v) for k, v in value.items()}


def _morris_factors(params: Mapping, registry: FactorRegistry) -> tuple[str, ...]:
    key = f"{SECTION}.morris.factors"
    value = get(params, key, list(WATERMARK_ASPECTS))
    if not isinstance(value, list):
        raise ParamError(key, f"expected a list of factors, got {value!r}")
    names = registry.check(value, key=key)
    renderer = [n for n in names if registry.appliers[n] is None]
    if renderer:
        raise ParamError(
            key,
            f"factor(s) {renderer} are drawn by the Biased-MNIST renderer and cannot be set on "
            "photos; choose image factors (the watermark's aspects or your own)",
        )
    if "watermark" in names:
        raise ParamError(
            key,
            "'watermark' is held present while its aspects vary; list the aspects "
            f"({', '.join(WATERMARK_ASPECTS)}) or your own factors",
        )
    return names


@dataclass(frozen=True)
class ExplainConfig:
    """``watermark.explain``: the explainer benchmark (attribute names as :func:`method_settings` reads them)."""

    models: tuple[str, ...]
    n_images: int | None
    forwards: int
    methods: tuple[str, ...]
    white_box: tuple[str, ...]
    dilation: int
    sobol_grid: int
    rise_grid: int
    rise_keep_prob: float
    occlusion_patch_fraction: float
    morris_grid: int
    morris_levels: int
    geex_sigma: float
    geex_loss: str
    geex_noise: str
    geex_noise_size: int
    smoothgrad_samples: int
    smoothgrad_noise_level: float
    ig_steps: int
    ensemble_normalisations: tuple[str, ...]
    ensemble_aggregations: tuple[str, ...]
    explained_output: str = "logit"  # the carton logit (Sobol converges faster on logits)
    morris_sampling: str = "local"  # MoSIP's local analysis around each image's own lumped values

    @classmethod
    def from_params(cls, params: Mapping, models: list[str]) -> ExplainConfig:
        p = f"{SECTION}.explain"
        explained = _models(params, f"{p}.models")
        outside = [m for m in explained if m not in models]
        if outside:
            raise ParamError(f"{p}.models", f"{outside} not in {SECTION}.models {models}")
        methods = require_names(params, f"{p}.methods", BLACK_BOX_METHODS)
        white_box = get(params, f"{p}.white_box", [])
        if white_box:
            white_box = require_names(params, f"{p}.white_box", WHITE_BOX_METHODS)
        elif white_box != []:
            raise ParamError(
                f"{p}.white_box", f"expected a list of names from {list(WHITE_BOX_METHODS)} or [], got {white_box!r}"
            )
        forwards = _int(params, f"{p}.forwards", 16)
        sobol_grid = _int(params, f"{p}.sobol.grid_size", 2, default=6)
        morris_grid = _int(params, f"{p}.morris_grid.grid_size", 2, default=6)
        # Sobol's total indices cost N (d + 1) with N >= 2 designs; Morris r (d + 1) with r >= 2
        for method, grid in (("sobol", sobol_grid), ("morris_grid", morris_grid)):
            minimum = 2 * (grid**2 + 1)
            if method in methods and forwards < minimum:
                raise ParamError(
                    f"{p}.forwards",
                    f"{method} on a {grid}x{grid} grid needs at least {minimum} forwards, got {forwards}",
                )
        return cls(
            models=tuple(explained),
            n_images=_optional_int(params, f"{p}.n_images"),
            forwards=forwards,
            methods=tuple(methods),
            white_box=tuple(white_box),
            dilation=_int(params, f"{p}.dilation", 0, default=3),
            sobol_grid=sobol_grid,
            rise_grid=_int(params, f"{p}.rise.grid_size", 2, default=7),
            rise_keep_prob=require(
                params, f"{p}.rise.keep_prob", float, lambda v: 0 < v < 1, "a number in (0, 1)", default=0.5
            ),
            occlusion_patch_fraction=require(
                params, f"{p}.occlusion.patch_fraction", float, lambda v: 0 < v <= 1, "a number in (0, 1]", default=0.2
            ),
            morris_grid=morris_grid,
            morris_levels=require(
                params,
                f"{p}.morris_grid.levels",
                int,
                lambda v: v >= 2 and v % 2 == 0,
                "an even integer >= 2",
                default=8,
            ),
            geex_sigma=require(
                params, f"{p}.geex.sigma", float, lambda v: v > 0, "a number > 0", default=DEFAULT_SIGMA
            ),
            geex_loss=require_choice(params, f"{p}.geex.loss", LOSSES, default="uniform_ce"),
            geex_noise=require_choice(params, f"{p}.geex.noise", NOISES, default="shared"),
            geex_noise_size=_int(params, f"{p}.geex.noise_size", default=8),
            smoothgrad_samples=_int(params, f"{p}.smoothgrad.n_samples", default=16),
            smoothgrad_noise_level=require(
                params, f"{p}.smoothgrad.noise_level", float, lambda v: v > 0, "a number > 0", default=0.15
            ),
            ig_steps=_int(params, f"{p}.integrated_gradients.steps", default=16),
            ensemble_normalisations=tuple(
                require_names(params, f"{p}.ensembles.normalisations", ENSEMBLE_NORMALISATIONS, default=["z"])
            ),
            ensemble_aggregations=tuple(
                require_names(params, f"{p}.ensembles.aggregations", ENSEMBLE_AGGREGATIONS, default=["mean", "ucb"])
            ),
        )


@dataclass(frozen=True)
class WatermarkConfig:
    """The validated ``watermark`` section (plus ``seed`` and ``device``).

    Attributes
    ----------
    models : tuple of str
        ImageNet models audited (registry names or import paths).
    texts : dict
        Level name -> text of the ``watermark_text`` factor; the first is drawn by ``do(watermark)``.
    morris_factors : tuple of str
        Factors Morris varies on watermarked images (the watermark's aspects by default).
    registry : FactorRegistry
        Built-in and user factors (``factors`` section); user factors enter the Morris list.
    """

    models: tuple[str, ...]
    weights_dir: str | None
    val_dir: str | None
    label_file: str | None
    synset_file: str | None
    classes: list[str] | None
    images_per_class: int
    max_images: int | None
    input_size: int | None
    batch_size: int
    precision: str
    texts: dict[str, str]
    n_bootstrap: int
    drop_threshold: float
    verdict_images: int
    repetitions: int
    max_doublings: int
    pool_size: int | None
    morris_factors: tuple[str, ...]
    morris_images: int | None
    morris_trajectories: int
    morris_levels: int
    explain: ExplainConfig
    registry: FactorRegistry
    seed: int = 0
    device: str = "auto"

    @classmethod
    def from_params(cls, params: Mapping, registry: FactorRegistry | None = None, root: str = ".") -> WatermarkConfig:
        """Validate every key the stage reads; ParamError names the first bad key."""
        p = SECTION
        if not isinstance(get(params, p, None), Mapping):
            raise ParamError(p, "expected a mapping (see params.yaml)")
        registry = factor_registry(params, root) if registry is None else registry
        models = _models(params, f"{p}.models")
        classes = get(params, f"{p}.classes", None)
        if classes is not None and (
            not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes)
        ):
            raise ParamError(f"{p}.classes", f"expected a list of ImageNet category names or null, got {classes!r}")
        input_size = get(params, f"{p}.input_size", None)
        if input_size is not None:
            input_size = _int(params, f"{p}.input_size", 32)
        return cls(
            models=tuple(models),
            weights_dir=_fallback_path(params, "weights_dir"),
            val_dir=_fallback_path(params, "val_dir"),
            label_file=_fallback_path(params, "label_file"),
            synset_file=_fallback_path(params, "synset_file"),
            classes=classes,
            images_per_class=_int(params, f"{p}.images_per_class", default=50),
            max_images=_optional_int(params, f"{p}.max_images"),
            input_size=input_size,
            batch_size=_int(params, f"{p}.batch_size", default=32),
            precision=require_choice(params, f"{p}.precision", PRECISIONS, default="fast"),
            texts=_texts(params),
            n_bootstrap=_int(params, f"{p}.n_bootstrap", 100, default=2000),
            drop_threshold=require(
                params, f"{p}.verdict.drop_threshold", float, lambda v: 0 < v <= 1, "a number in (0, 1]", default=0.1
            ),
            verdict_images=_int(params, f"{p}.verdict.n_images", default=256),
            repetitions=_int(params, f"{p}.verdict.repetitions", default=1),
            max_doublings=require(
                params, f"{p}.verdict.max_doublings", int, lambda v: 0 <= v <= 10, "an integer in [0, 10]", default=3
            ),
            pool_size=_optional_int(params, f"{p}.verdict.pool_size"),
            morris_factors=_morris_factors(params, registry),
            morris_images=_optional_int(params, f"{p}.morris.n_images"),
            morris_trajectories=_int(params, f"{p}.morris.n_trajectories", 2, default=10),
            morris_levels=require(
                params, f"{p}.morris.levels", int, lambda v: v >= 2 and v % 2 == 0, "an even integer >= 2", default=4
            ),
            explain=ExplainConfig.from_params(params, models),
            registry=registry,
            seed=require(params, "seed", int, lambda v: v >= 0, "an integer >= 0", default=0),
            device=require_choice(params, "device", ("auto", "cpu", "cuda"), default="auto"),
        )

    # ------------------------------------------------------------------ derived
    @property
    def watermark(self) -> ImageFactor:
        """The watermark factor drawing :attr:`texts` (the built-in one for the paper's texts)."""
        return WATERMARK if self.texts == TEXTS else watermark_factor(self.texts)

    @property
    def drawn_text(self) -> str:
        """Level of the text ``do(watermark)`` draws (the first)."""
        return next(iter(self.texts))

    def image_factors(self) -> tuple[ImageFactor, ...]:
        """The watermark, then the user factors of the Morris list (each function once)."""
        user = [n for n in self.morris_factors if n not in WATERMARK.names]
        return (self.watermark, *self.registry.image_factors(user)) if user else (self.watermark,)

    def input_sizes(self) -> dict[str, int]:
        """Input resolution of every model (without loading it)."""
        sizes = {}
        for name in self.models:
            spec = model_spec(name)
            size = spec.preprocessing.input_size
            sizes[name] = size if self.input_size is None or spec.fixed_input_size else self.input_size
        return sizes


def _probe_images(size: int) -> torch.Tensor:
    """Two mid-grey and noisy RGB images ``(2, 3, size, size)`` in ``[0, 1]``."""
    generator = torch.Generator().manual_seed(0)
    return torch.stack([torch.full((3, size, size), 0.5), torch.rand(3, size, size, generator=generator)])


def check_inputs(config: WatermarkConfig) -> None:
    """Fail before any work when the font, a text or a Morris factor cannot draw (module docstring).

    Every factor of the scene is drawn on two probe images at each model's input
    size, at its neutral value and at the ends of its domain (every level of a
    categorical one), with the watermark present.

    Raises
    ------
    FactorError
        Naming the factor: ``imagenet-w`` missing, a text the font cannot draw, a
        user function that returns the wrong shape, dtype, NaN or values outside [0, 1].
    """
    from shortcut_audit.factors.base import Categorical
    from shortcut_audit.factors.scene import image_scene

    font_path()  # not cached: a missing package is found even after texts were drawn
    for text in config.texts.values():
        text_alpha(text, 224, 224, 0.4, 0.5)
    for size in sorted(set(config.input_sizes().values())):
        scene = image_scene(
            _probe_images(size), torch.zeros(2, dtype=torch.long), config.image_factors(), own={"watermark": 1}
        )
        for column, factor in enumerate(scene.factors):
            values: list[float]
            if isinstance(factor.domain, Categorical):
                values = list(range(factor.domain.size))
            else:
                values = [factor.domain.low, factor.domain.high]
            for value in values:
                setting = torch.tensor([[float(value)]], dtype=torch.float64)
                scene.render_grid(scene.with_values([column], setting))
