"""Shared test settings: offline, deterministic, quiet."""

import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("SHORTCUT_AUDIT_DEVICE", "cpu")

import torch  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))
