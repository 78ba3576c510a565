"""DVC stage biased_mnist: runs :func:`shortcut_audit.stages.biased_mnist.main`."""

import sys

from shortcut_audit.stages.biased_mnist import main

if __name__ == "__main__":
    sys.exit(main())
