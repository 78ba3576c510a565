"""DVC stage explain_imagenet: runs :func:`shortcut_audit.stages.explain_imagenet.main`."""

import sys

from shortcut_audit.stages.explain_imagenet import main

if __name__ == "__main__":
    sys.exit(main())
