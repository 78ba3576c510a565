"""The documented CI workflow parses and runs the steps it promises, in order."""

from __future__ import annotations

from pathlib import Path

import yaml

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "audit.yml"


def _steps() -> list[dict]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert set(workflow["jobs"]) == {"audit"}
    return workflow["jobs"]["audit"]["steps"]


def test_workflow_is_valid_yaml_with_triggers():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    # PyYAML reads the bare key `on` as True (YAML 1.1); GitHub reads it as "on".
    triggers = workflow.get("on", workflow.get(True))
    assert {"push", "pull_request"} <= set(triggers)
    assert workflow["jobs"]["audit"]["runs-on"] == "ubuntu-latest"


def test_workflow_steps_in_order():
    steps = _steps()
    uses = [s.get("uses", "") for s in steps]
    runs = [s.get("run", "") for s in steps]
    index = {
        "checkout": next(i for i, u in enumerate(uses) if u.startswith("actions/checkout@")),
        "python": next(i for i, u in enumerate(uses) if u.startswith("actions/setup-python@")),
        "cache": next(
            i
            for i, s in enumerate(steps)
            if s.get("uses", "").startswith("actions/cache@") and s["with"]["path"] == ".dvc/cache"
        ),
        "repro": next(i for i, r in enumerate(runs) if "make repro" in r),
        "gate": next(
            i for i, r in enumerate(runs) if r.strip() == ".venv/bin/shortcut-audit gate --output reports/gate.json"
        ),
        "upload": next(i for i, u in enumerate(uses) if u.startswith("actions/upload-artifact@")),
    }
    assert list(index.values()) == sorted(index.values())
    assert steps[index["python"]]["with"]["python-version"] == "3.11"
    assert "--exit-zero" not in runs[index["gate"]]  # its exit code blocks the job
    upload = steps[index["upload"]]
    assert upload["with"]["path"] == "reports/" and upload["if"] == "always()"
