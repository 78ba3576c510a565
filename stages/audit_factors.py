"""DVC stage audit_factors: MoSIP factor audit of one trained model -> data/audit/<dataset>/<arch>/ (:mod:`shortcut_audit.stages.audit_factors`)."""
import sys

from shortcut_audit.stages.audit_factors import main

if __name__ == "__main__":
    sys.exit(main())
