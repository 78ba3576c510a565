"""DVC stage train: one architecture on one Biased-MNIST dataset -> data/models/<dataset>/<arch>/ (:mod:`shortcut_audit.stages.train`)."""
import sys

from shortcut_audit.stages.train import main

if __name__ == "__main__":
    sys.exit(main())
