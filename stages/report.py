"""DVC stage `report`: render reports/audit.html and reports/audit.pdf from the run's artefacts.

Run from the repository root. Sections whose inputs do not exist yet say so in the
report; both files are written atomically. Set SOURCE_DATE_EPOCH for a reproducible
report date (and byte-identical HTML).
"""
import sys

from shortcut_audit.report.build import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
