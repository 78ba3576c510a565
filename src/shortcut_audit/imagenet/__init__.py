"""The ImageNet audit: explain pretrained classifiers with the attribution suite,
measure fidelity, and reproduce the papers' cross-architecture analyses.

Entry points: :func:`~shortcut_audit.imagenet.config.parse_config` (validate the
``imagenet`` params), :func:`~shortcut_audit.imagenet.pipeline.run_imagenet_audit`
and :func:`~shortcut_audit.imagenet.pipeline.write_results`.
"""
