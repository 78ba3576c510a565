"""DVC stage: the ImageNet-W watermark shortcut in pretrained models -> data/watermark/ (:mod:`shortcut_audit.stages.audit_watermark`)."""
import sys

from shortcut_audit.stages.audit_watermark import main

if __name__ == "__main__":
    sys.exit(main())
