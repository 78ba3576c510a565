"""DVC stage ``validate``: run the Great Expectations suites over the pipeline outputs.

Same as ``shortcut-audit validate``: checks params before any work, writes
``data/validation/<suite>.json`` and ``data/validation/summary.csv`` atomically, exits
0 once the results are written (failed suites included: the ``gate`` stage decides)
and 2 on invalid params or a missing required input.
"""
from __future__ import annotations

import sys

from shortcut_audit.validation.suites import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
