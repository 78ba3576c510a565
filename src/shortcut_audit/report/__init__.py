"""The audit report: HTML and PDF built from the pipeline artefacts (see build.py)."""
