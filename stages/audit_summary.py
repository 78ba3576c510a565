"""DVC stage audit_summary: factor audits of every model -> data/audit_summary/ (:mod:`shortcut_audit.stages.audit_summary`)."""
import sys

from shortcut_audit.stages.audit_summary import main

if __name__ == "__main__":
    sys.exit(main())
