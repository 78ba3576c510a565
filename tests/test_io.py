import json
import math

import numpy as np
import pandas as pd
import pytest

from shortcut_audit import io


def test_write_json_refuses_nan_and_leaves_no_file(tmp_path):
    target = tmp_path / "m.json"
    with pytest.raises(io.NonFiniteResultError, match=r"\$\.a\.b\[1\]"):
        io.write_json({"a": {"b": [1.0, math.nan]}}, target)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_write_json_converts_numpy_and_sorts(tmp_path):
    target = tmp_path / "m.json"
    io.write_json({"z": np.float32(0.5), "a": np.arange(3)}, target)
    assert json.loads(target.read_text()) == {"a": [0, 1, 2], "z": 0.5}
    assert target.read_text().index('"a"') < target.read_text().index('"z"')


def test_atomic_dir_replaces_only_on_success(tmp_path):
    out = tmp_path / "out"
    with io.atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("first")
    assert (out / "a.txt").read_text() == "first"
    with pytest.raises(RuntimeError):
        with io.atomic_dir(out) as tmp:
            (tmp / "a.txt").write_text("second")
            raise RuntimeError("stage failed")
    assert (out / "a.txt").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_write_table_roundtrip_and_nan_refused(tmp_path):
    df = pd.DataFrame({"factor": ["a", "b"], "mu_star": [0.1, 0.2]})
    io.write_table(df, tmp_path / "t.parquet")
    io.write_table(df, tmp_path / "t.csv")
    pd.testing.assert_frame_equal(io.read_table(tmp_path / "t.parquet"), df)
    pd.testing.assert_frame_equal(io.read_table(tmp_path / "t.csv"), df)
    bad = df.assign(mu_star=[0.1, np.inf])
    with pytest.raises(io.NonFiniteResultError, match="mu_star"):
        io.write_table(bad, tmp_path / "bad.parquet")
    assert not (tmp_path / "bad.parquet").exists()


def test_atomic_dir_keeps_the_folders_gitignore(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".gitignore").write_text("/table.csv\n")
    (out / "table.csv").write_text("old")
    with io.atomic_dir(out) as tmp:
        (tmp / "table.csv").write_text("new")
    assert (out / ".gitignore").read_text() == "/table.csv\n"
    assert (out / "table.csv").read_text() == "new"
