"""The pipeline's stages as library functions: one module per DVC stage, each with ``main(argv)``.

The files under ``stages/`` at the repository root are the DVC entry points; each only
calls the ``main`` of its module here, so the stages are importable, testable and
listed as dependencies like the rest of the library.
"""
