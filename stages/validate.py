"""DVC stage validate: the Great Expectations suites (runs :func:`shortcut_audit.validation.suites.main`)."""

from __future__ import annotations

import sys

from shortcut_audit.validation.suites import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
