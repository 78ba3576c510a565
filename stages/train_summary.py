"""DVC stage train_summary: every model of the sweep -> data/train_summary/ (:mod:`shortcut_audit.stages.train_summary`)."""
import sys

from shortcut_audit.stages.train_summary import main

if __name__ == "__main__":
    sys.exit(main())
