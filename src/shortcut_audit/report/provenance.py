"""Provenance of a report: which code, data, parameters and software produced it.

The report id is a short hash over the git commit (and dirty flag), the content of
``dvc.lock`` (which pins the hash of every stage's inputs and outputs), the resolved
parameters and the versions of the packages that shape the numbers. Two reports with
the same id were produced from the same inputs by the same software.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

#: Distributions whose versions can change the numbers or the rendering of the report.
TRACKED_PACKAGES = (
    "shortcut-audit",
    "torch",
    "torchvision",
    "numpy",
    "pandas",
    "scipy",
    "dvc",
    "great-expectations",
    "matplotlib",
    "jinja2",
    "weasyprint",
    "pypdf",
)


@dataclass(frozen=True)
class GitState:
    """The commit a report was built from; ``dirty`` when tracked files differ from it."""

    commit: str
    dirty: bool | None

    @property
    def short(self) -> str:
        return self.commit[:12]


@dataclass(frozen=True)
class StageLock:
    """One stage of ``dvc.lock``: its name and the hash of every output (and dependency)."""

    name: str
    outs: tuple[tuple[str, str], ...]
    deps: tuple[tuple[str, str], ...]

    @property
    def digest(self) -> str:
        """A short hash over all recorded dependency and output hashes of the stage."""
        return _short_hash(json.dumps([self.deps, self.outs]))


@dataclass(frozen=True)
class Provenance:
    """Everything the provenance section and the report metadata show."""

    report_id: str
    git: GitState
    stages: tuple[StageLock, ...]
    params: dict
    packages: dict[str, str]
    python: str
    devices: tuple[str, ...]
    run_seconds: dict[str, float] = field(default_factory=dict)
    created: datetime | None = None

    @property
    def created_iso(self) -> str:
        """W3C date-time of the report date, or ``""`` when none is fixed."""
        return self.created.strftime("%Y-%m-%dT%H:%M:%SZ") if self.created else ""


def _short_hash(text: str | bytes, length: int = 12) -> str:
    data = text.encode("utf8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()[:length]


def git_state(root: Path) -> GitState:
    """Return the HEAD commit of the repository at ``root`` and whether it is dirty.

    Outside a git repository (an exported source tree) the commit is ``"unknown"``
    and ``dirty`` is ``None``.
    """

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != root.resolve():
            return GitState("unknown", None)
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return GitState("unknown", None)
    return GitState(commit, dirty)


def _hash_of(entry: dict) -> str:
    for key in ("md5", "hash", "etag", "checksum"):
        if key in entry:
            return str(entry[key])
    return ""


def _entries(items: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(items, list):
        return ()
    return tuple((str(e.get("path", "")), _hash_of(e)) for e in items if isinstance(e, dict))


def parse_dvc_lock(text: str) -> tuple[StageLock, ...]:
    """Parse the stages of a ``dvc.lock`` file (schema 2.0), in file order.

    Matrix stages appear under their expanded names (``train@p0.5-mlp``).
    """
    data = yaml.safe_load(text) or {}
    stages = data.get("stages", {}) if isinstance(data, dict) else {}
    return tuple(
        StageLock(str(name), _entries(body.get("outs")), _entries(body.get("deps")))
        for name, body in stages.items()
        if isinstance(body, dict)
    )


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names``; ``"not installed"`` for absent distributions."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def source_date(environ: dict | None = None) -> datetime | None:
    """The build date from ``SOURCE_DATE_EPOCH`` (reproducible-builds convention), else None.

    Raises
    ------
    ValueError
        When the variable is set but is not an integer number of seconds.
    """
    value = (os.environ if environ is None else environ).get("SOURCE_DATE_EPOCH")
    if value is None or value == "":
        return None
    try:
        seconds = int(value)
    except ValueError:
        raise ValueError(f"SOURCE_DATE_EPOCH must be an integer, got {value!r}") from None
    return datetime.fromtimestamp(seconds, tz=UTC)


def report_id(git: GitState, dvc_lock_text: str, params: dict, packages: dict[str, str]) -> str:
    """Short hash identifying the code, data, parameters and software of a report."""
    payload = json.dumps(
        {
            "commit": git.commit,
            "dirty": git.dirty,
            "dvc_lock": _short_hash(dvc_lock_text, 64),
            "params": params,
            "packages": packages,
        },
        sort_keys=True,
        default=str,
    )
    return _short_hash(payload)


def collect(
    root: Path,
    params: dict,
    devices: tuple[str, ...] = (),
    run_seconds: dict[str, float] | None = None,
    environ: dict | None = None,
) -> Provenance:
    """Gather the provenance of a report built from the repository at ``root``."""
    lock_path = root / "dvc.lock"
    lock_text = lock_path.read_text() if lock_path.is_file() else ""
    git = git_state(root)
    packages = package_versions()
    return Provenance(
        report_id=report_id(git, lock_text, params, packages),
        git=git,
        stages=parse_dvc_lock(lock_text),
        params=params,
        packages=packages,
        python=platform.python_version(),
        devices=devices,
        run_seconds=dict(run_seconds or {}),
        created=source_date(environ),
    )
