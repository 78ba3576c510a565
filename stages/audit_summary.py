"""DVC stage audit_summary: runs :func:`shortcut_audit.stages.audit_summary.main`."""

import sys

from shortcut_audit.stages.audit_summary import main

if __name__ == "__main__":
    sys.exit(main())
