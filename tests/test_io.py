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


# ---------------------------------------------------------------- declared reads


def test_read_csv_keeps_an_all_empty_text_column_as_text(tmp_path):
    path = tmp_path / "models.csv"
    path.write_text("model,status,reason,top1_accuracy,is_reference\na,loaded,,0.5,True\nb,loaded,,0.25,False\n")
    inferred = pd.read_csv(path)
    assert inferred["reason"].isna().all()  # what pandas makes of it: an all-NaN float column
    frame = io.read_csv(path, {"model": "str", "reason": "str", "top1_accuracy": "float", "is_reference": "bool"})
    assert frame["reason"].tolist() == ["", ""] and frame["reason"].dtype == object
    assert frame["top1_accuracy"].dtype == np.float64 and frame["is_reference"].dtype == bool
    assert frame["status"].tolist() == ["loaded", "loaded"]  # undeclared: inferred as before


def test_read_csv_types_and_missing_values(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("n,x,flag\n1,,true\n2.0,0.5,\n")
    frame = io.read_csv(path, {"n": "int", "x": "float", "flag": "bool"})
    assert frame["n"].dtype == np.int64 and frame["n"].tolist() == [1, 2]
    assert math.isnan(frame.loc[0, "x"]) and frame.loc[1, "x"] == 0.5
    assert frame["flag"].tolist() == [True, None]  # a blank verdict stays missing, never False


@pytest.mark.parametrize(
    "text, message",
    [
        ("a,b\n1,2\n3,x\n", r"t\.csv, row 2 \(line 3\), column 'b': 'x' is not a number"),
        ("a,b\n1,2\n3,4", r"t\.csv: does not end with a line break: the file was cut mid-row"),
        ("a,b\n1,2\n3\n", r"t\.csv, row 2 \(line 3\): 1 field\(s\) where the header has 2"),
        ("a,b\n1,2\n\n3,4\n", r"t\.csv, row 2 \(line 3\): a blank line where the header has 2"),
        ("a,a\n1,2\n", r"column name\(s\) \['a'\] appear more than once"),
        ("", r"t\.csv: empty file"),
        ('a,b\n1,"2\n', r"t\.csv: malformed CSV"),
    ],
)
def test_read_csv_names_what_is_malformed(tmp_path, text, message):
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(io.ArtefactError, match=message):
        io.read_csv(path, {"a": "int", "b": "float"})


def test_load_npz_reports_a_truncated_archive(tmp_path):
    path = tmp_path / "maps.npz"
    np.savez_compressed(path, maps=np.ones((4, 8, 8), np.float32))
    assert io.load_npz(path)["maps"].shape == (4, 8, 8)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(io.ArtefactError, match=r"maps\.npz: unreadable archive"):
        io.load_npz(path)


# ---------------------------------------------------------------- interrupted writes

CHILD = """
import signal, sys, time
import numpy as np
from shortcut_audit.io import atomic_dir

# What an interactive shell gives its foreground job (a background job inherits SIGINT ignored).
signal.signal(signal.SIGINT, signal.default_int_handler)

with atomic_dir(sys.argv[1]) as tmp:
    np.savez(tmp / "maps.npz", maps=np.ones((64, 64, 64), np.float32))
    data = (tmp / "maps.npz").read_bytes()
    (tmp / "maps.npz").write_bytes(data[: len(data) // 2])  # half-written when the signal comes
    print(tmp.name, flush=True)
    time.sleep(120)
"""


def _writer(out, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(io.__file__).parents[1])}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(out)], stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path
    )
    tmp_name = child.stdout.readline().strip()
    assert tmp_name.startswith(".tmp-out-") and (tmp_path / tmp_name / "maps.npz").is_file()
    return child


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT"])
def test_a_signal_mid_write_leaves_no_temporary_folder(tmp_path, signum):
    import signal

    out = tmp_path / "out"
    child = _writer(out, tmp_path)
    child.send_signal(getattr(signal, signum))
    code = child.wait(timeout=60)
    assert code == 128 + signal.SIGTERM if signum == "SIGTERM" else code != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_killed_writer_is_swept_at_the_next_write_of_its_output(tmp_path):
    import os
    import signal

    out = tmp_path / "out"
    child = _writer(out, tmp_path)
    child.send_signal(signal.SIGKILL)  # cannot be caught: the temporary stays
    child.wait(timeout=60)
    assert [p.name for p in tmp_path.iterdir()][0].startswith(".tmp-out-")
    other = tmp_path / f".tmp-other-{os.getpid()}-abcd1234"  # another output's temporary is not touched
    other.mkdir()
    live = tmp_path / f".tmp-out-{os.getppid()}-abcd1234"  # nor is one of a live process
    live.mkdir()
    with io.atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("complete")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", other.name, live.name])
    assert (out / "a.txt").read_text() == "complete"


def test_visible_skips_temporary_siblings(tmp_path):
    for rel in ("p0.1/mlp/maps.npz", "p0.1/.tmp-mlp-123-abcd1234/maps.npz", "p0.1/.old-cnn-9-x/x/maps.npz"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    assert io.visible(tmp_path.glob("*/*/maps.npz"), tmp_path) == [tmp_path / "p0.1/mlp/maps.npz"]


def test_dvc_ignores_temporary_siblings(tmp_path):
    """A temporary left inside a folder DVC tracks (``data/audit``) must not change its hash."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    shutil.copy(Path(__file__).resolve().parents[1] / ".dvcignore", tmp_path / ".dvcignore")
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    paths = [
        "data/audit/p0.1/.tmp-mlp-4242-abcd1234/maps.npz",
        "data/audit/p0.1/.old-mlp-4242-abcd1234/x/maps.npz",
        "data/train_summary/.tmp-models.csv-4242-abcd1234.csv",
        "data/audit/p0.1/mlp/maps.npz",
    ]
    for rel in paths:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    ignored = [
        subprocess.run([sys.executable, "-m", "dvc", "check-ignore", "-q", rel], cwd=tmp_path).returncode == 0
        for rel in paths
    ]
    assert ignored == [True, True, True, False]
