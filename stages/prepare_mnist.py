"""DVC stage prepare_mnist: runs :func:`shortcut_audit.stages.prepare_mnist.main`."""

import sys

from shortcut_audit.stages.prepare_mnist import main

if __name__ == "__main__":
    sys.exit(main())
