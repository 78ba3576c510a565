"""Unreadable artefacts (a stage killed mid-write) become notices in the report, never a traceback,
and the temporary siblings such a stage leaves are not read as results."""

from __future__ import annotations

from shortcut_audit.report.artefacts import imagenet_tables, load
from shortcut_audit.report.context import pixel_section
from shortcut_audit.report.imagenet_section import imagenet_section


def _truncate(path, keep: int = 60) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def test_a_truncated_model_maps_file_is_a_notice(tmp_path, fx):
    root = fx.write_tree(tmp_path / "run", imagenet=False, validation=False, gate=False)
    _truncate(root / "data/audit/p0.5/mlp/seed0/maps.npz")
    art = load(root)
    section = pixel_section(art, fx.PARAMS)
    assert any(m.startswith("data/audit/p0.5/mlp/seed0/maps.npz: unreadable") for m in section.missing)
    assert section.figures  # the other models' maps are still shown


def test_a_truncated_imagenet_maps_file_is_a_notice(tmp_path, fx):
    root = fx.write_tree(tmp_path / "run", validation=False, gate=False)
    _truncate(root / "data/imagenet/maps.npz", keep=2000)
    section = imagenet_section(root, None, list(fx.IMAGENET_METHODS))
    notices = [m for b in section.blocks if b.kind == "missing" for m in b.item]
    assert "data/imagenet/maps.npz: not found, unreadable or without maps" in notices
    assert "fig-imagenet-curves" in {f.id for f in section.figures}


def test_a_table_cut_mid_row_is_a_problem_not_numbers(tmp_path, fx):
    root = fx.write_tree(tmp_path / "run", imagenet=False, validation=False, gate=False)
    path = root / "data/audit_summary/verdicts.csv"
    path.write_text(path.read_text()[:-25])
    art = load(root)
    assert art.table("verdicts") is None
    assert "cut mid-row" in art.problems["verdicts"] and art.problems["verdicts"].startswith("data/audit_summary/")


def test_temporary_siblings_are_not_read_as_tables(tmp_path, fx):
    root = fx.write_tree(tmp_path / "run", validation=False, gate=False)
    (root / "data/imagenet/.tmp-models.csv-4242-abcd1234.csv").write_text("model,status\nhalf,written\n")
    assert ".tmp-models.csv-4242-abcd1234" not in imagenet_tables(root)
    assert set(imagenet_tables(root)) == set(fx.imagenet_tables())


def test_an_imagenet_table_without_rows_is_a_notice(tmp_path, fx):
    root = fx.write_tree(tmp_path / "run", validation=False, gate=False)
    path = root / "data/imagenet/convergence.csv"
    path.write_text(path.read_text().splitlines()[0] + "\n")  # header only
    section = imagenet_section(root, None, list(fx.IMAGENET_METHODS))
    notices = [m for b in section.blocks if b.kind == "missing" for m in b.item]
    assert "data/imagenet/convergence.csv: no rows" in notices
    assert "fig-imagenet-convergence" not in {f.id for f in section.figures}
