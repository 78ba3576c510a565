"""The three Biased-MNIST factors, set by the renderer (:func:`shortcut_audit.data.biased_mnist.render`).

Digit colour (10 bright colours), background colour (10 dark colours) and position
(a cell of a 3 x 3 grid) are categorical; an intervention re-draws them uniformly
over every value, i.e. independently of the label. A digit's own values come from
its factor table, so they have no neutral value of their own (level 0 is recorded).
"""

from __future__ import annotations

from shortcut_audit.data.biased_mnist import FACTORS
from shortcut_audit.factors.base import Categorical, Factor

__all__ = ["BG_COLOUR_NAMES", "DIGIT_COLOUR_NAMES", "POSITION_NAMES", "RENDERER_FACTORS"]

DIGIT_COLOUR_NAMES = ("red", "orange", "yellow", "lime", "green", "cyan", "blue", "violet", "magenta", "white")
BG_COLOUR_NAMES = ("teal", "navy", "purple", "plum", "grey", "maroon", "brown", "olive", "dark green", "black")
POSITION_NAMES = ("top left", "top", "top right", "left", "centre", "right", "bottom left", "bottom", "bottom right")

_DEFINITIONS = {
    "digit_color": (
        DIGIT_COLOUR_NAMES,
        "digit colour",
        "colour of the digit strokes, one of 10 colours; linked value = the label",
    ),
    "bg_color": (
        BG_COLOUR_NAMES,
        "background colour",
        "colour of the background, one of 10 colours; linked value = the label",
    ),
    "position": (POSITION_NAMES, "position", "cell of a 3 x 3 grid the digit is placed in; linked value = label mod 9"),
}

#: The renderer's factors, in the renderer's argument order.
RENDERER_FACTORS: tuple[Factor, ...] = tuple(
    Factor(
        name,
        Categorical(_DEFINITIONS[name][0]),
        neutral=0,
        description=_DEFINITIONS[name][2],
        display_name=_DEFINITIONS[name][1],
    )
    for name in FACTORS
)
