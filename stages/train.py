"""DVC stage train: runs :func:`shortcut_audit.stages.train.main`."""

import sys

from shortcut_audit.stages.train import main

if __name__ == "__main__":
    sys.exit(main())
