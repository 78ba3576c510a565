"""Image attribution methods behind one interface, and their ensembles.

Every method is an :class:`Explainer`: ``explainer = Method(model, batch_size=...,
device=..., seed=..., **params)`` then ``maps = explainer(images (N, C, H, W),
targets (N,))`` gives ``(N, H, W)`` float32 maps on the CPU. Black-box methods
(``requires_gradients = False``) only need a callable ``images -> scores (N, classes)``.

``METHODS`` maps names to classes; ``build(name, model, **kwargs)`` instantiates one
(unknown names raise ``ValueError`` listing the known ones). ``ensemble`` holds the
normalisations and aggregations of Mahlau & Nolde (2022).
"""

from shortcut_audit.attribution import ensemble
from shortcut_audit.attribution.base import BlackBoxExplainer, Explainer, GradientExplainer
from shortcut_audit.attribution.expected_gradients import ExpectedGradients
from shortcut_audit.attribution.geex import GEEX, GERS, IGEEX
from shortcut_audit.attribution.gradcam import GradCAM
from shortcut_audit.attribution.gradient_input import GradientInput
from shortcut_audit.attribution.integrated_gradients import IntegratedGradients
from shortcut_audit.attribution.morris_grid import MorrisGridAttribution
from shortcut_audit.attribution.occlusion import Occlusion
from shortcut_audit.attribution.rise import RISE
from shortcut_audit.attribution.saliency import Saliency
from shortcut_audit.attribution.smoothgrad import SmoothGrad
from shortcut_audit.attribution.sobol import SobolAttribution

METHODS: dict[str, type[Explainer]] = {
    cls.name: cls
    for cls in (
        SobolAttribution,
        MorrisGridAttribution,
        RISE,
        Occlusion,
        GEEX,
        GERS,
        IGEEX,
        Saliency,
        GradientInput,
        IntegratedGradients,
        SmoothGrad,
        ExpectedGradients,
        GradCAM,
    )
}
BLACK_BOX = tuple(name for name, cls in METHODS.items() if not cls.requires_gradients)


def build(name: str, model, **kwargs) -> Explainer:
    """Instantiate the method registered as ``name`` for ``model``."""
    if name not in METHODS:
        raise ValueError(f"unknown attribution method {name!r}; known: {', '.join(sorted(METHODS))}")
    return METHODS[name](model, **kwargs)


__all__ = [
    "BLACK_BOX",
    "METHODS",
    "BlackBoxExplainer",
    "ExpectedGradients",
    "Explainer",
    "GEEX",
    "GERS",
    "GradCAM",
    "GradientExplainer",
    "GradientInput",
    "IGEEX",
    "IntegratedGradients",
    "MorrisGridAttribution",
    "Occlusion",
    "RISE",
    "Saliency",
    "SmoothGrad",
    "SobolAttribution",
    "build",
    "ensemble",
]
