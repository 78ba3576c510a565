"""DVC stage audit_factors: runs :func:`shortcut_audit.stages.audit_factors.main`."""

import sys

from shortcut_audit.stages.audit_factors import main

if __name__ == "__main__":
    sys.exit(main())
