import pytest

from shortcut_audit.config import ParamError, get, load_params, require, require_choice

PARAMS = {"train": {"epochs": 2, "lr": 0.01, "flag": True, "arch": "mlp"}}


def test_get_nested_and_missing_key_named():
    assert get(PARAMS, "train.epochs") == 2
    assert get(PARAMS, "train.missing", 5) == 5
    with pytest.raises(ParamError, match=r"train\.missing: missing"):
        get(PARAMS, "train.missing")


def test_require_types_and_predicates():
    assert require(PARAMS, "train.lr", float, lambda v: v > 0) == 0.01
    assert require(PARAMS, "train.epochs", float) == 2.0  # ints are accepted as floats
    with pytest.raises(ParamError, match=r"train\.flag"):
        require(PARAMS, "train.flag", int)  # bool is not a number
    with pytest.raises(ParamError, match=r"train\.epochs.*>= 5"):
        require(PARAMS, "train.epochs", int, lambda v: v >= 5, expect="an integer >= 5")


def test_require_choice_lists_known_values():
    with pytest.raises(ParamError, match="known: cnn, vgg"):
        require_choice(PARAMS, "train.arch", ["cnn", "vgg"])


def test_load_params_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "p.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ParamError):
        load_params(bad)


def test_require_names_checks_list_membership_and_duplicates():
    from shortcut_audit.config import require_names

    params = {"s": {"ok": ["a", "b"], "bad": ["a", "z"], "dup": ["a", "a"], "empty": []}}
    assert require_names(params, "s.ok", ["a", "b", "c"]) == ["a", "b"]
    with pytest.raises(ParamError, match=r"s\.bad: unknown value\(s\) \['z'\]; known: a, b"):
        require_names(params, "s.bad", ["a", "b"])
    with pytest.raises(ParamError, match=r"s\.dup: duplicate"):
        require_names(params, "s.dup")
    with pytest.raises(ParamError, match=r"s\.empty: expected a non-empty list"):
        require_names(params, "s.empty")
