"""MoSIP factor audit of Biased-MNIST models.

For each trained model: Morris screening over the semantic factors (digit colour,
background colour, position) on held-out digits (:mod:`.factor_morris`), the
interventional ground truth of re-drawing factors on correctly classified digits
(:mod:`.interventions`), a relied-on verdict from each and their agreement
(:mod:`.verdicts`), the interaction-versus-non-linearity reading
(:mod:`.interaction`) and Sobol pixel maps scored by the renderer's digit mask
(:mod:`.pixel_view`); :mod:`.model_audit` runs them for one model and
:mod:`.summary` stacks the results of every model.
"""
from shortcut_audit.audit.factor_morris import FactorMorris, factor_morris
from shortcut_audit.audit.interaction import interaction_table
from shortcut_audit.audit.interventions import InterventionResult, run_interventions
from shortcut_audit.audit.model_audit import AuditConfig, ModelAudit, audit_model, write_model_audit
from shortcut_audit.audit.pixel_view import PixelView, background_share, pixel_view
from shortcut_audit.audit.verdicts import VerdictRule, verdict_table

__all__ = [
    "AuditConfig",
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
