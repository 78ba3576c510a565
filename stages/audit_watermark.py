"""DVC stage audit_watermark: runs :func:`shortcut_audit.stages.audit_watermark.main`."""

import sys

from shortcut_audit.stages.audit_watermark import main

if __name__ == "__main__":
    sys.exit(main())
