"""DVC stage prepare_mnist: real MNIST -> data/mnist/ (uint8 arrays + source.json) (:mod:`shortcut_audit.stages.prepare_mnist`)."""
import sys

from shortcut_audit.stages.prepare_mnist import main

if __name__ == "__main__":
    sys.exit(main())
