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


# ---------------------------------------------------------------- the file: syntax and known keys

REPO_PARAMS = __import__("pathlib").Path(__file__).resolve().parents[1] / "params.yaml"


def test_yaml_syntax_error_names_the_file_line_and_column(tmp_path):
    from shortcut_audit.config import ParamsSyntaxError

    bad = tmp_path / "params.yaml"
    bad.write_text("seed: 0\ntrain:\n  epochs: 3\n  lr: [0.1\n  batch_size: 4\n")
    with pytest.raises(ParamsSyntaxError) as caught:
        load_params(bad)
    assert isinstance(caught.value, ParamError)  # stages treat it as any invalid params
    assert caught.value.line == 5 and str(bad) in str(caught.value)
    assert "line 5, column" in str(caught.value) and "YAML syntax error" in str(caught.value)


def test_the_repository_params_declare_only_known_keys():
    assert load_params(REPO_PARAMS)["train"]["epochs"] >= 1


@pytest.mark.parametrize(
    "edit, key, suggestion",
    [
        (lambda p: p["train"].__setitem__("weight_decai", 0.1), "train.weight_decai", "train.weight_decay"),
        (lambda p: p.__setitem__("trian", {}), "trian", "train"),
        (
            lambda p: p["audit"]["morris"].__setitem__("n_trajectory", 3),
            "audit.morris.n_trajectory",
            "audit.morris.n_trajectories",
        ),
        (
            lambda p: p["train"]["per_architecture"]["mlp"].__setitem__("epoch", 2),
            "train.per_architecture.mlp.epoch",
            "train.per_architecture.mlp.epochs",
        ),
        (lambda p: p["imagenet"]["occlusion"].__setitem__("stride", 4), "imagenet.occlusion.stride", None),
    ],
    ids=["typo", "section-typo", "nested-typo", "free-form-map", "no-close-match"],
)
def test_unknown_keys_are_errors_with_a_suggestion(tmp_path, edit, key, suggestion):
    import yaml

    params = yaml.safe_load(REPO_PARAMS.read_text())
    edit(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.raises(ParamError) as caught:
        load_params(path)
    assert caught.value.key == key
    message = str(caught.value)
    assert (f"did you mean {suggestion}?" in message) if suggestion else ("known here: patch_fraction" in message)
    assert "params_schema.py" in message


def test_free_form_maps_accept_any_name_but_check_the_keys_below():
    from shortcut_audit.params_schema import unknown_keys

    params = {
        "gate": {"max_mu_star_share": {"texture": 0.5, "bg_color": 0.4}},
        "train": {"per_architecture": {"vgg_small": {"lr": 0.1, "momentum": 0.9}}},
    }
    assert unknown_keys(params) == [("train.per_architecture.vgg_small.momentum", None)]


def test_every_unknown_key_is_listed_at_once():
    from shortcut_audit.params_schema import check_known_keys

    with pytest.raises(
        ParamError,
        match=r"train\.weight_decai: .*also unknown: gate\.min_unbiased_acc "
        r"\(did you mean gate\.min_unbiased_accuracy\?\)",
    ):
        check_known_keys({"train": {"weight_decai": 0}, "gate": {"min_unbiased_acc": 0.8}})
