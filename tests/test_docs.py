"""The documentation stays true to the code: docs/architecture.md names every module and lists
every declared artefact as ``shortcut_audit.schema`` declares it.

Run ``python tests/test_docs.py`` to rewrite the generated artefact list after changing the schema.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from shortcut_audit import schema

REPO = Path(__file__).resolve().parents[1]
ARCHITECTURE = REPO / "docs" / "architecture.md"
BEGIN, END = "<!-- schema:begin -->", "<!-- schema:end -->"


def _generated_block(text: str) -> str:
    return text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip("\n")


def _layout(text: str) -> str:
    return text[text.index("## Layout") : text.index("## Shared interfaces")]


def test_the_artefact_list_is_the_schema():
    assert _generated_block(ARCHITECTURE.read_text()) == schema.markdown().strip("\n"), (
        "docs/architecture.md is out of date: run `python tests/test_docs.py`"
    )


def _named(relative: Path, layout: str) -> bool:
    """A top-level module starts a layout line; a package's module is named under its folder."""
    if len(relative.parts) == 1:
        return re.search(rf"^{re.escape(relative.name)}\s", layout, flags=re.M) is not None
    folder_named = f"{relative.parts[0]}/" in layout
    if relative.name == "__init__.py":
        return folder_named
    return folder_named and re.search(rf"(?<![\w/]){re.escape(relative.name)}\b", layout) is not None


def test_the_layout_names_every_module():
    layout = _layout(ARCHITECTURE.read_text())
    package = REPO / "src" / "shortcut_audit"
    missing = [
        str(p.relative_to(package)) for p in sorted(package.rglob("*.py")) if not _named(p.relative_to(package), layout)
    ]
    assert not missing, f"docs/architecture.md's layout does not name: {missing}"


def test_every_module_the_layout_names_exists():
    """The reverse of the above: a removed or renamed module leaves no stale name in the layout."""
    layout = _layout(ARCHITECTURE.read_text())
    existing = {p.name for p in (REPO / "src" / "shortcut_audit").rglob("*.py")}
    existing |= {p.name for p in (REPO / "stages").glob("*.py")}
    stale = sorted({Path(name).name for name in re.findall(r"[\w/]+\.py\b", layout)} - existing)
    assert not stale, f"docs/architecture.md's layout names modules that do not exist: {stale}"


def _write() -> None:
    text = ARCHITECTURE.read_text()
    head, tail = text.split(BEGIN)[0], text.split(END)[1]
    ARCHITECTURE.write_text(f"{head}{BEGIN}\n{schema.markdown().strip()}\n{END}{tail}")


if __name__ == "__main__":
    _write()
    sys.exit(0)
