"""The ImageNet-W text watermark as factors: presence, opacity, height and text.

Li et al., "A Whac-A-Mole Dilemma: Shortcuts Come in Multiples Where Mitigating One
Amplifies Others" (CVPR 2023) found that ImageNet classifiers rely on a translucent
text watermark: it pushes predictions towards "carton" (class 478), because many
carton photos carry one. Their transform (package ``imagenet-w``, BSD-3-Clause,
``AddWatermark``) draws the text ``捷径捷径捷径`` ("shortcut" twice three times) in
white, in the package's font (Source Han Serif SC ExtraLight), at font size 36 for a
224-pixel image (``int(size / 6.22)`` for other sizes without a table entry), at
``(0.01 W, 0.4 H)`` with opacity 0.5, alpha-composited over the image.

This module draws the same text layer with Pillow and the package's font, and
composites it in torch, so that the watermark's aspects become factors:

``watermark``
    ``absent`` / ``present``; neutral ``absent``; ``do(watermark)`` sets ``present``.
``watermark_opacity``
    ``[0.1, 1.0]``, neutral 0.5 (the paper's).
``watermark_y``
    Vertical position of the text's top as a share of the height, ``[0.0, 0.8]``,
    neutral 0.4 (the paper's); the text (height ~0.16 of the image) stays inside.
``watermark_text``
    ``chinese`` (the paper's text) / ``latin`` (``SHORTCUTS``: the same font and
    size, 219 vs 216 pixels wide at size 36), neutral ``chinese``. Other texts:
    :func:`watermark_factor` (``{level: text}``; the font must draw every character).

Compositing follows Pillow's ``alpha_composite`` over an opaque image,
``out = (1 - a) x + a white`` with ``a = round(255 opacity) / 255`` times the glyph
coverage; the result differs from the package's (which rounds to 8-bit on the way)
by at most one 8-bit step. :func:`watermark_mask` gives the pixels the watermark
changes, for scoring explanations.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from shortcut_audit.factors.base import Categorical, Continuous, Factor, FactorError, ImageFactor

__all__ = [
    "CARTON",
    "LATIN_TEXT",
    "PAPER_TEXT",
    "TEXTS",
    "WATERMARK",
    "font_path",
    "text_alpha",
    "watermark_factor",
    "watermark_mask",
]

CARTON = 478
PAPER_TEXT = "捷径捷径捷径"
LATIN_TEXT = "SHORTCUTS"
TEXTS = {"chinese": PAPER_TEXT, "latin": LATIN_TEXT}
X_POSITION = 0.01
FONT_FILE = "fonts/SourceHanSerifSC-ExtraLight.otf"
_FONT_SIZES = {224: 36, 384: 62, 512: 82, 518: 84}  # the package's table; other sizes: int(size / 6.22)


def font_path() -> Path:
    """The watermark font shipped with ``imagenet-w`` (found without importing the package)."""
    spec = importlib.util.find_spec("imagenet_w")
    if spec is None or not spec.submodule_search_locations:
        raise FactorError(
            "factor 'watermark' needs the package imagenet-w (pip install imagenet-w==1.0.0): "
            "its font draws the ImageNet-W watermark"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / FONT_FILE
    if not path.is_file():
        raise FactorError(f"factor 'watermark': the imagenet-w package has no font at {path}")
    return path


def font_size(width: int) -> int:
    """ImageNet-W's font size for an image of this width."""
    return _FONT_SIZES.get(int(width), int(width / 6.22))


@lru_cache(maxsize=1)
def _font_characters() -> frozenset[int]:
    """Code points the watermark font has glyphs for (Pillow would draw a box for the others)."""
    from fontTools.ttLib import TTFont

    return frozenset(TTFont(str(font_path()), lazy=True).getBestCmap())


@lru_cache(maxsize=512)
def text_alpha(text: str, height: int, width: int, y: float, opacity: float) -> np.ndarray:
    """Alpha ``(H, W)`` float32 in [0, 1] of the white text layer (module docstring)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(font_path()), font_size(width))
    missing = [ch for ch in set(text) if not ch.isspace() and ord(ch) not in _font_characters()]
    if missing:
        raise FactorError(
            f"factor 'watermark_text': the watermark font cannot draw {''.join(sorted(missing))!r} in {text!r}"
        )
    layer = Image.new("RGBA", (width, height), (255, 255, 255, 0))
    ImageDraw.Draw(layer).text(
        (X_POSITION * width, y * height), text, fill=(255, 255, 255, round(opacity * 255)), font=font
    )
    return np.asarray(layer, dtype=np.float32)[:, :, 3] / 255.0


def _alpha_batch(
    values: Mapping[str, torch.Tensor], texts: Mapping[str, str], height: int, width: int, device: torch.device
) -> torch.Tensor:
    present = values["watermark"].cpu().numpy()
    opacity = values["watermark_opacity"].cpu().numpy()
    y = values["watermark_y"].cpu().numpy()
    text = values["watermark_text"].cpu().numpy()
    names = list(texts)
    alpha = np.zeros((len(present), height, width), dtype=np.float32)
    for i in np.flatnonzero(present == 1):
        alpha[i] = text_alpha(
            texts[names[int(text[i])]], height, width, round(float(y[i]), 6), round(float(opacity[i]), 6)
        )
    return torch.from_numpy(alpha).to(device)


def _drawer(texts: Mapping[str, str]):
    """The apply function of a watermark whose ``watermark_text`` levels draw ``texts``."""

    def apply(images: torch.Tensor, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if images.shape[1] != 3:
            raise FactorError(f"factor 'watermark' draws on RGB images, got {images.shape[1]} channel(s)")
        alpha = _alpha_batch(values, texts, images.shape[-2], images.shape[-1], images.device)[:, None]
        alpha = alpha.to(images.dtype)
        return images * (1.0 - alpha) + alpha  # white text

    return apply


def watermark_mask(
    height: int,
    width: int,
    text: str = "chinese",
    y: float = 0.4,
    opacity: float = 0.5,
    dilation: int = 0,
    texts: Mapping[str, str] | None = None,
) -> torch.Tensor:
    """Boolean ``(H, W)`` mask of the pixels the watermark changes, dilated by ``dilation`` pixels.

    ``text`` is a level of ``texts`` (default: :data:`TEXTS`, the built-in factor's levels).
    """
    texts = TEXTS if texts is None else texts
    if text not in texts:
        raise FactorError(f"unknown watermark text {text!r}; known: {', '.join(texts)}")
    mask = torch.from_numpy(text_alpha(texts[text], height, width, y, opacity) > 0)
    if dilation > 0:
        kernel = 2 * int(dilation) + 1
        mask = F.max_pool2d(mask[None, None].float(), kernel, stride=1, padding=int(dilation))[0, 0] > 0
    return mask


def watermark_factor(texts: Mapping[str, str] | None = None) -> ImageFactor:
    """The watermark's four factors, applied by one function; ``watermark_text`` draws ``texts``.

    Parameters
    ----------
    texts : mapping, optional
        Level name -> text drawn (default :data:`TEXTS`: the paper's Chinese text, then
        a Latin one). The first level is the neutral one, the text ``do(watermark)`` draws.

    Raises
    ------
    FactorError
        When ``texts`` is empty or a text is not a non-empty string. (Whether the font
        can draw a text is checked when it is drawn, by :func:`text_alpha`.)
    """
    texts = dict(TEXTS if texts is None else texts)
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts.values()):
        raise FactorError(f"factor 'watermark_text': expected level name -> non-empty text, got {texts!r}")
    return ImageFactor(
        factors=(
            Factor(
                "watermark",
                Categorical(("absent", "present")),
                neutral=0,
                intervention=(1,),
                description="the ImageNet-W text watermark (Li et al. 2023) drawn over the image",
                display_name="watermark",
            ),
            Factor(
                "watermark_opacity",
                Continuous(0.1, 1.0),
                neutral=0.5,
                description="opacity of the watermark text (paper: 0.5)",
                display_name="watermark opacity",
            ),
            Factor(
                "watermark_y",
                Continuous(0.0, 0.8),
                neutral=0.4,
                description="height of the watermark's top as a share of the image (paper: 0.4)",
                display_name="watermark height",
            ),
            Factor(
                "watermark_text",
                Categorical(tuple(texts)),
                neutral=0,
                description="the paper's Chinese text or a Latin text of the same font and size"
                if texts == TEXTS
                else f"the text drawn: {', '.join(texts)}",
                display_name="watermark text",
            ),
        ),
        apply=_drawer(texts),
        name="watermark",
    )


#: The watermark's four factors with the paper's and a Latin text (:data:`TEXTS`).
WATERMARK = watermark_factor()
