"""MoSIP factor audit: the interventional verdict with its interval, and Morris as the screen.

For each trained model: Morris screening over the audited factors, globally and
locally (:mod:`.factor_morris`); interventions that re-draw factors on correctly
classified items of the training distribution, with item-bootstrap intervals and an
adaptive budget (:mod:`.interventions`); the three-state verdict of every factor
(:mod:`.verdicts`); the interaction-versus-non-linearity reading (:mod:`.interaction`)
and Sobol pixel maps scored by the renderer's digit mask (:mod:`.pixel_view`).
:mod:`.model_audit` runs them for one model, :mod:`.summary` stacks every model and
:mod:`.screening` measures how well Morris screens for the verdicts.
"""

from shortcut_audit.audit.factor_morris import FactorMorris, factor_morris
from shortcut_audit.audit.interaction import interaction_table
from shortcut_audit.audit.interventions import Budget, InterventionResult, run_interventions
from shortcut_audit.audit.model_audit import AuditConfig, ModelAudit, audit_model, write_model_audit
from shortcut_audit.audit.pixel_view import PixelView, background_share, pixel_view
from shortcut_audit.audit.verdicts import STATES, VerdictRule, verdict_table

__all__ = [
    "STATES",
    "AuditConfig",
    "Budget",
    "FactorMorris",
    "InterventionResult",
    "ModelAudit",
    "PixelView",
    "VerdictRule",
    "audit_model",
    "background_share",
    "factor_morris",
    "interaction_table",
    "pixel_view",
    "run_interventions",
    "verdict_table",
    "write_model_audit",
]
