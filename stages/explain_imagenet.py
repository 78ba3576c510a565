"""DVC stage: explain ImageNet classifiers and score the explanations -> data/imagenet/ (:mod:`shortcut_audit.stages.explain_imagenet`)."""
import sys

from shortcut_audit.stages.explain_imagenet import main

if __name__ == "__main__":
    sys.exit(main())
