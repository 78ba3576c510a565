"""DVC stage report: HTML and PDF audit report (runs :func:`shortcut_audit.report.build.main`)."""

import sys

from shortcut_audit.report.build import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
