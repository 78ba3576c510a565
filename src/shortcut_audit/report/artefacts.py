"""Loading the pipeline artefacts the report is built from.

Every artefact is optional: a missing file (its stage has not run yet), an unreadable
one (cut mid-row, a value that does not parse as its declared type, a truncated
``.npz``) or a table that lacks the columns of its documented schema becomes a
*problem* with a message, which the section that needs it shows instead of its
content. Nothing here raises for absent or unreadable inputs, so the report can be
built at any point of the pipeline. CSVs are read with their declared column types
(:mod:`shortcut_audit.schema`); folder listings skip the temporary siblings of
an interrupted stage (:func:`shortcut_audit.io.visible`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from shortcut_audit import schema
from shortcut_audit.io import ArtefactError, load_npz, read_table, visible

LOG = logging.getLogger(__name__)

#: Report key -> declared table (:mod:`shortcut_audit.schema`, which holds path and columns).
TABLE_KEYS = {
    "linked_rates": "biased_mnist/summary",
    "models": "train_summary/models",
    "morris": "audit_summary/morris",
    "verdicts": "audit_summary/verdicts",
    "interventions": "audit_summary/interventions",
    "order_check": "audit_summary/order_check",
    "pixel_view": "audit_summary/pixel_view",
    "interaction": "audit_summary/interaction",
    "audit_models": "audit_summary/models",
    "seeds": "audit_summary/seeds",
    "screen_levels": "audit_summary/screen",
    "validation": "validation/summary",
}
TABLE_PATHS = {key: schema.table(declared).path for key, declared in TABLE_KEYS.items()}
JSON_PATHS = {
    "gate": "reports/gate.json",
    "audit_metrics": "data/audit_summary/metrics.json",
    "screen": "data/audit_summary/screen.json",
    "train_metrics": "data/train_summary/metrics.json",
    "imagenet_metrics": "data/imagenet/metrics.json",
    "mnist_source": "data/mnist/source.json",
}
IMAGENET_DIR = "data/imagenet"
VALIDATION_DIR = "data/validation"
AUDIT_DIR = "data/audit"
GATE_KEYS = ("status", "checks")


@dataclass
class Artefacts:
    """The tables and JSON documents found under a repository root.

    Attributes
    ----------
    root : Path
        Repository root the paths are relative to.
    tables : dict
        Artefact key -> DataFrame, for the tables that exist and match their schema.
    documents : dict
        Artefact key -> parsed JSON, for the documents that exist.
    problems : dict
        Artefact key -> why it is not available (missing file or schema mismatch).
    """

    root: Path
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    documents: dict[str, object] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    def table(self, key: str) -> pd.DataFrame | None:
        return self.tables.get(key)

    def document(self, key: str):
        return self.documents.get(key)

    def missing(self, *keys: str) -> list[str]:
        """Messages for those of ``keys`` that are not available."""
        return [self.problems[k] for k in keys if k in self.problems]


def _clean_strings(df: pd.DataFrame) -> pd.DataFrame:
    """Empty CSV fields read as NaN in text columns; the schemas mean ``""``."""
    text = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
    return df.assign(**{c: df[c].fillna("").astype(str) for c in text}) if text else df


def read_optional_table(path: Path) -> tuple[pd.DataFrame | None, str]:
    """Read a table if it exists (declared tables: with their declared columns and types).

    Returns
    -------
    (DataFrame or None, str)
        The table, or None with the reason it is unavailable.
    """
    if not path.is_file():
        return None, f"{path.name}: not found (its stage has not run)"
    try:
        df = schema.read(path) if schema.key_of(path) else read_table(path)
    except (OSError, ValueError) as err:  # ArtefactError (a ValueError) names the row and column
        return None, f"{path.name}: unreadable ({err})"
    return _clean_strings(df), ""


def read_optional_json(path: Path) -> tuple[object | None, str]:
    """Read a JSON document if it exists; None with the reason otherwise."""
    if not path.is_file():
        return None, f"{path.name}: not found (its stage has not run)"
    try:
        return json.loads(path.read_text()), ""
    except (OSError, ValueError) as err:
        return None, f"{path.name}: unreadable ({err})"


def load(root: Path) -> Artefacts:
    """Load every documented artefact below ``root``; see :class:`Artefacts`."""
    found = Artefacts(Path(root))
    for key, rel in TABLE_PATHS.items():
        table, problem = read_optional_table(found.root / rel)
        _store(found.tables, found.problems, key, rel, table, problem)
    for key, rel in JSON_PATHS.items():
        document, problem = read_optional_json(found.root / rel)
        _store(found.documents, found.problems, key, rel, document, problem)
    gate = found.documents.get("gate")
    if gate is not None and not (isinstance(gate, dict) and all(k in gate for k in GATE_KEYS)):
        del found.documents["gate"]
        found.problems["gate"] = f"{JSON_PATHS['gate']}: lacks key(s) {', '.join(GATE_KEYS)}"
    return found


def _store(target: dict, problems: dict, key: str, rel: str, value, problem: str) -> None:
    if value is None:
        problems[key] = f"{rel.rsplit('/', 1)[0]}/{problem}"
        if "not found" not in problem:
            LOG.warning("report: %s", problems[key])
    else:
        target[key] = value


def listed(folder: Path, pattern: str) -> list[Path]:
    """Sorted matches of ``pattern`` in ``folder`` (none when it is absent), without
    the temporary siblings an interrupted stage may leave."""
    return sorted(visible(folder.glob(pattern), folder)) if folder.is_dir() else []


def imagenet_tables(root: Path) -> dict[str, pd.DataFrame]:
    """Every CSV table of the ImageNet stage, by file stem, in name order."""
    folder = Path(root) / IMAGENET_DIR
    tables = {}
    for path in listed(folder, "*.csv"):
        table, problem = read_optional_table(path)
        if table is None:
            LOG.warning("report: %s", problem)
        else:
            tables[path.stem] = table
    return tables


def validation_documents(root: Path) -> dict[str, dict]:
    """Every suite result JSON of the validation stage, by suite name."""
    folder = Path(root) / VALIDATION_DIR
    documents = {}
    for path in listed(folder, "*.json"):
        document, problem = read_optional_json(path)
        if isinstance(document, dict):
            documents[path.stem] = document
        elif problem:
            LOG.warning("report: %s", problem)
    return documents


def read_maps(root: Path, dataset_id: str, arch: str, seed: int = 0) -> tuple[dict[str, np.ndarray] | None, str]:
    """The ``maps.npz`` of one audited model and, when it cannot be used, why.

    Returns
    -------
    (dict or None, str)
        The arrays (``images``, ``maps``, ``digit_mask``) and ``""``; or None and
        ``""`` when the file is absent; or None and a message naming the file when it
        is unreadable (e.g. truncated) or lacks ``images`` or ``maps``.
    """
    base = (Path(root) / AUDIT_DIR).resolve()
    path = (base / dataset_id / arch / f"seed{int(seed)}" / "maps.npz").resolve()
    if base not in path.parents or not path.is_file():
        return None, ""
    rel = f"{AUDIT_DIR}/{dataset_id}/{arch}/seed{int(seed)}/maps.npz"
    try:
        arrays = load_npz(path, ("images", "maps", "digit_mask"))
    except (OSError, ArtefactError) as err:
        LOG.warning("report: %s", err)
        return None, f"{rel}: unreadable ({str(err).split(': ', 1)[-1]})"
    if "images" not in arrays or "maps" not in arrays:
        LOG.warning("report: %s lacks images or maps", path)
        return None, f"{rel}: lacks images or maps"
    return arrays, ""
