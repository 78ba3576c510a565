"""The section data model shared by the context builders and the templates."""

from __future__ import annotations

from dataclasses import dataclass, field

from shortcut_audit.report.figures import Figure
from shortcut_audit.report.findings import Finding
from shortcut_audit.report.tables import Table


@dataclass(frozen=True)
class Block:
    """One item of a section laid out in reading order.

    ``kind`` is "heading" (``item``: str), "paragraph" (str), "missing" (list of str),
    "findings" (list of :class:`Finding`), "table" (:class:`Table`) or "figure"
    (:class:`Figure`).
    """

    kind: str
    item: object


@dataclass
class Section:
    """One report section: ``missing`` lists absent inputs (the section then says so).

    A section either fills ``paragraphs``, ``findings``, ``figures`` and ``tables`` (rendered
    in that grouped order) or lays its content out in reading order in ``blocks``.
    """

    id: str
    title: str
    missing: list[str] = field(default_factory=list)
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)

    @property
    def available(self) -> bool:
        return bool(self.paragraphs or self.tables or self.figures or self.findings or self.blocks)

    def add(self, kind: str, item) -> None:
        """Append a block; tables and figures are also listed in ``tables``/``figures``."""
        self.blocks.append(Block(kind, item))
        if kind == "table":
            self.tables.append(item)
        elif kind == "figure":
            self.figures.append(item)
