"""The known keys of ``params.yaml``: one declaration, checked whenever the file is loaded.

:data:`KNOWN_KEYS` mirrors the file as a nested mapping. :func:`shortcut_audit.config.load_params`
(which every stage, ``validate``, ``gate`` and ``report`` call first) checks a loaded file
against it with :func:`check_known_keys`, so a typo such as ``train.weight_decai``, or a key
that no stage reads, is a :class:`~shortcut_audit.config.ParamError` with a "did you mean"
before any work, instead of a setting that silently does not take effect. Only the *keys*
are checked here; each section's parser checks the *values* (types, ranges, vocabularies).

How to declare a key
--------------------
- A setting: one line ``"name": VALUE,`` in its section's mapping below.
- A group of settings (a mapping in ``params.yaml``, such as ``audit.morris``): a nested
  mapping of its keys, e.g. ``"morris": {"n_trajectories": VALUE, "levels": VALUE},``.
- A free-form map whose keys are data, not settings (architecture names, factor names):
  the wildcard key ``"*"``. ``"max_mu_star_share": {ANY: VALUE}`` accepts any factor name
  with any value; ``"per_architecture": {ANY: {"epochs": VALUE, ...}}`` accepts any
  architecture name and checks the keys under it.
- A new section: a new top-level entry, e.g. ``"watermark": {"strength": VALUE},``.

Then add the key to ``params.yaml`` with a comment and read it in the section's parser
(``require``/``get`` of :mod:`shortcut_audit.config`), which validates its value.

A value declared ``VALUE`` is not looked into (a list of mappings such as
``gate.candidates`` is validated by its parser). A declared group whose value is not a
mapping (``null``, a number) is left to the parser too, which names the key.

This module decides only whether a params file is accepted, never what a stage
computes, so it is deliberately not listed among the stages' DVC dependencies:
declaring a key re-runs nothing.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

#: A setting whose value the section's parser checks (not looked into here).
VALUE = None
#: Wildcard key of a free-form map (any key is accepted; its value follows the entry).
ANY = "*"

KNOWN_KEYS: dict[str, Any] = {
    "seed": VALUE,
    "device": VALUE,
    "mnist": {
        "idx_dir": VALUE,
    },
    "biased_mnist": {
        "datasets": VALUE,
        "biased_factors": VALUE,
        "canvas": VALUE,
        "n_train": VALUE,
        "n_val": VALUE,
        "n_test": VALUE,
    },
    "train": {
        "architectures": VALUE,
        "epochs": VALUE,
        "batch_size": VALUE,
        "lr": VALUE,
        "weight_decay": VALUE,
        "lr_schedule": VALUE,
        "per_architecture": {
            ANY: {
                "epochs": VALUE,
                "batch_size": VALUE,
                "lr": VALUE,
                "weight_decay": VALUE,
                "lr_schedule": VALUE,
            }
        },
        "num_threads": VALUE,
        "seeds": VALUE,
    },
    "factors": {
        ANY: {
            "function": VALUE,
            "levels": VALUE,
            "range": VALUE,
            "neutral": VALUE,
            "intervention": VALUE,
            "description": VALUE,
        }
    },
    "audit": {
        "factors": VALUE,
        "n_digits": VALUE,
        "batch_size": VALUE,
        "morris": {
            "n_trajectories": VALUE,
            "levels": VALUE,
            "design": VALUE,
            "sampling": VALUE,
        },
        "interventions": {
            "n_digits": VALUE,
            "repetitions": VALUE,
            "max_doublings": VALUE,
            "n_bootstrap": VALUE,
        },
        "verdicts": {
            "drop_threshold": VALUE,
        },
        "interaction": {
            "min_mu_star": VALUE,
        },
        "screen": {
            "mu_star_threshold": VALUE,
        },
        "pixel_view": {
            "n_images": VALUE,
            "grid_size": VALUE,
            "nb_design": VALUE,
        },
    },
    "imagenet": {
        "models": VALUE,
        "weights_dir": VALUE,
        "val_dir": VALUE,
        "label_file": VALUE,
        "synset_file": VALUE,
        "classes": VALUE,
        "images_per_class": VALUE,
        "max_images": VALUE,
        "input_size": VALUE,
        "batch_size": VALUE,
        "precision": VALUE,
        "compile": VALUE,
        "explained_output": VALUE,
        "methods": VALUE,
        "forwards": VALUE,
        "sobol": {
            "grid_size": VALUE,
        },
        "rise": {
            "grid_size": VALUE,
            "keep_prob": VALUE,
        },
        "occlusion": {
            "patch_fraction": VALUE,
        },
        "geex": {
            "sigma": VALUE,
            "loss": VALUE,
            "noise": VALUE,
            "noise_size": VALUE,
            "white_box": {
                "smoothgrad_samples": VALUE,
                "smoothgrad_noise_level": VALUE,
                "ig_steps": VALUE,
            },
        },
        "morris": {
            "grid_size": VALUE,
            "levels": VALUE,
            "n_trajectories": VALUE,
            "sampling": VALUE,
        },
        "fidelity": {
            "steps": VALUE,
            "deletion_baseline": VALUE,
            "insertion_baseline": VALUE,
            "protocols": VALUE,
            "region_grid": VALUE,
            "region_baseline": VALUE,
            "interval_level": VALUE,
        },
        "cross_architecture": {
            "reference_model": VALUE,
            "mask_baseline": VALUE,
            "top_fraction": VALUE,
            "neighbour_radius": VALUE,
            "relevant_threshold": VALUE,
            "top_k": VALUE,
            "interaction_threshold": VALUE,
            "masking_fraction": VALUE,
        },
        "ensembles": {
            "normalisations": VALUE,
            "aggregations": VALUE,
            "settings": {
                "percentile": VALUE,
                "ucb_epsilon": VALUE,
                "pi_epsilon": VALUE,
                "ei_epsilon": VALUE,
                "api_range": VALUE,
                "aei_range": VALUE,
                "n_eps": VALUE,
                "var_epsilon": VALUE,
                "var_delta": VALUE,
                "rbm_learning_rate": VALUE,
                "rbm_iterations": VALUE,
                "rbm_batch_size": VALUE,
            },
            "steps": VALUE,
            "baseline": VALUE,
            "size_normalisation": VALUE,
            "size_aggregations": VALUE,
        },
        "convergence": {
            "methods": VALUE,
            "budgets": VALUE,
            "reference_forwards": VALUE,
            "n_images": VALUE,
            "grid_size": VALUE,
        },
    },
    "watermark": {
        "models": VALUE,
        "weights_dir": VALUE,
        "val_dir": VALUE,
        "label_file": VALUE,
        "synset_file": VALUE,
        "classes": VALUE,
        "images_per_class": VALUE,
        "max_images": VALUE,
        "input_size": VALUE,
        "batch_size": VALUE,
        "precision": VALUE,
        "texts": {ANY: VALUE},
        "n_bootstrap": VALUE,
        "verdict": {
            "drop_threshold": VALUE,
            "n_images": VALUE,
            "repetitions": VALUE,
            "max_doublings": VALUE,
            "pool_size": VALUE,
        },
        "morris": {
            "factors": VALUE,
            "n_images": VALUE,
            "n_trajectories": VALUE,
            "levels": VALUE,
        },
        "explain": {
            "models": VALUE,
            "n_images": VALUE,
            "forwards": VALUE,
            "methods": VALUE,
            "white_box": VALUE,
            "dilation": VALUE,
            "sobol": {"grid_size": VALUE},
            "rise": {"grid_size": VALUE, "keep_prob": VALUE},
            "occlusion": {"patch_fraction": VALUE},
            "morris_grid": {"grid_size": VALUE, "levels": VALUE},
            "geex": {"sigma": VALUE, "loss": VALUE, "noise": VALUE, "noise_size": VALUE},
            "smoothgrad": {"n_samples": VALUE, "noise_level": VALUE},
            "integrated_gradients": {"steps": VALUE},
            "ensembles": {"normalisations": VALUE, "aggregations": VALUE},
        },
    },
    "launcher": {
        "nproc_per_node": VALUE,
        "nnodes": VALUE,
        "rdzv_endpoint": VALUE,
        "timeout_minutes": VALUE,
    },
    "validation": {
        "tolerance": VALUE,
        "linked_rate_z": VALUE,
        "label_share": VALUE,
        "mnist_counts": {
            "train": VALUE,
            "test": VALUE,
        },
        "sobol_tolerance": VALUE,
        "abs_tolerance": VALUE,
        "min_morris_auroc": VALUE,
    },
    "gate": {
        "candidates": VALUE,
        "morris_output": VALUE,
        "max_mu_star_share": {ANY: VALUE},
        "min_unbiased_accuracy": VALUE,
        "max_aligned_conflicting_gap": VALUE,
        "forbidden_reliance": VALUE,
        "require_all_suites": VALUE,
        "advisory_suites": VALUE,
        "regression_tolerance": VALUE,
        "inconclusive": VALUE,
        "imagenet": {
            "candidates": VALUE,
            "max_carton_gap": VALUE,
            "max_top1_change_rate": VALUE,
            "forbid_watermark_reliance": VALUE,
            "inconclusive": VALUE,
        },
    },
}


def unknown_keys(params: Mapping, known: Mapping | None = None, prefix: str = "") -> list[tuple[str, str | None]]:
    """Every key of ``params`` not declared in ``known`` (default :data:`KNOWN_KEYS`).

    Returns
    -------
    list of (str, str or None)
        ``(dotted key, closest declared key or None)`` in the file's order.
    """
    known = KNOWN_KEYS if known is None else known
    found: list[tuple[str, str | None]] = []
    for key, value in params.items():
        dotted = f"{prefix}{key}"
        if ANY in known:
            schema = known[ANY]
        elif key in known:
            schema = known[key]
        else:
            close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1, cutoff=0.6)
            found.append((dotted, f"{prefix}{close[0]}" if close else None))
            continue
        if isinstance(schema, Mapping) and isinstance(value, Mapping):
            found += unknown_keys(value, schema, f"{dotted}.")
    return found


def known_under(dotted: str, known: Mapping | None = None) -> list[str]:
    """The declared keys next to ``dotted`` (the siblings a user could have meant)."""
    node: Any = KNOWN_KEYS if known is None else known
    for part in dotted.split(".")[:-1]:
        if not isinstance(node, Mapping):
            return []
        node = node.get(ANY, node.get(part))
    return [str(k) for k in node if k != ANY] if isinstance(node, Mapping) else []


def check_known_keys(params: Mapping, source: str = "params.yaml") -> None:
    """Raise :class:`~shortcut_audit.config.ParamError` naming every undeclared key of ``params``.

    The error names the first unknown key (with "did you mean" when a declared key is
    close), lists the others, and says where new keys are declared.
    """
    from shortcut_audit.config import ParamError

    found = unknown_keys(params)
    if not found:
        return
    key, suggestion = found[0]
    parts = [
        "unknown key",
        f"did you mean {suggestion}?" if suggestion else f"known here: {', '.join(known_under(key)) or 'none'}",
    ]
    parts += [f"also unknown: {k}" + (f" (did you mean {s}?)" if s else "") for k, s in found[1:]]
    parts.append(
        "no stage reads an undeclared key, so it would have no effect (a new setting is declared "
        "in src/shortcut_audit/params_schema.py)"
    )
    raise ParamError(key, "; ".join(parts), source=source)
