"""DVC stage biased_mnist: factor tables per dataset id -> data/biased_mnist/ (:mod:`shortcut_audit.stages.biased_mnist`)."""
import sys

from shortcut_audit.stages.biased_mnist import main

if __name__ == "__main__":
    sys.exit(main())
