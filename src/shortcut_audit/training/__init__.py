"""Training and evaluation of the Biased-MNIST classifiers.

``settings`` validates the ``train`` params (optimisation settings, architectures,
seeds); ``splits`` holds a split on a device and renders its batches; ``loop`` trains a
model; ``evaluate`` measures accuracy and the aligned / bias-conflicting metrics;
``summary`` collects the models of a sweep.
"""
