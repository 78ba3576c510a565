"""DVC stage train_summary: runs :func:`shortcut_audit.stages.train_summary.main`."""

import sys

from shortcut_audit.stages.train_summary import main

if __name__ == "__main__":
    sys.exit(main())
