"""Validation of every pipeline artefact with Great Expectations, and the release gate.

- :mod:`.suites`: one suite per artefact kind; ``shortcut-audit validate``.
- :mod:`.gate`: release thresholds from ``params.yaml``; ``shortcut-audit gate``.
- :mod:`.regression`: ``gate --baseline REV`` against metrics at a git revision (via DVC).
- :mod:`.gx`: the lazy GX adapter (GX is imported only when a suite is validated).
"""
