"""Training and evaluation of the Biased-MNIST classifiers.

``loop`` validates the ``train`` params and trains a model on batches rendered on
the fly; ``evaluate`` measures accuracy and the aligned / bias-conflicting metrics;
``summary`` collects the models of a sweep.
"""
from shortcut_audit.training.evaluate import MODEL_METRIC_COLUMNS, accuracy, model_metrics, predict
from shortcut_audit.training.loop import (
    NonFiniteLossError,
    RenderedSplit,
    TrainConfig,
    TrainResult,
    check_params,
    train_model,
)

__all__ = [
    "MODEL_METRIC_COLUMNS",
    "NonFiniteLossError",
    "RenderedSplit",
    "TrainConfig",
    "TrainResult",
    "accuracy",
    "check_params",
    "model_metrics",
    "predict",
    "train_model",
]
