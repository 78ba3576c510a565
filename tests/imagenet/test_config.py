import pytest

from shortcut_audit.config import ParamError
from shortcut_audit.imagenet.config import parse_config


def test_small_params_parse(make_params):
    config = parse_config(make_params(["efficientnet_lite0"]))
    assert config.forwards == 40 and config.convergence_budgets == [20, 40]


def test_empty_model_list(make_params):
    with pytest.raises(ParamError, match=r"imagenet\.models"):
        parse_config(make_params([]))


@pytest.mark.parametrize("override, key", [
    ({"methods": ["sobol", "lime"]}, "imagenet.methods"),
    ({"forwards": 3}, "imagenet.forwards"),
    ({"input_size": 8}, "imagenet.input_size"),
    ({"fidelity": {"steps": 4, "deletion_baseline": "pink"}}, "imagenet.fidelity.deletion_baseline"),
    ({"convergence": {"budgets": [100], "reference_forwards": 50}}, "imagenet.convergence.reference_forwards"),
    ({"morris": {"levels": 5}}, "imagenet.morris.levels"),
    ({"ensembles": {"aggregations": ["median"]}}, "imagenet.ensembles.aggregations"),
    ({"classes": "oscilloscope"}, "imagenet.classes"),
    ({"forwards": 16, "sobol": {"grid_size": 5}}, "imagenet.forwards"),
    ({"convergence": {"budgets": [10, 40], "reference_forwards": 80}}, "imagenet.convergence.budgets"),
])
def test_bad_values_name_the_key(make_params, override, key):
    with pytest.raises(ParamError, match=key.replace(".", r"\.")):
        parse_config(make_params(["efficientnet_lite0"], **override))


@pytest.mark.parametrize("budgets", [[], None, [40, 40]], ids=["empty", "absent", "duplicate"])
def test_convergence_budgets_must_be_a_non_empty_list_of_distinct_budgets(make_params, budgets):
    """An empty study wrote a header-only convergence.csv that the report and validation then choked on."""
    convergence = {"methods": ["rise"], "reference_forwards": 80, **({} if budgets is None else {"budgets": budgets})}
    with pytest.raises(ParamError, match=r"imagenet\.convergence\.budgets"):
        parse_config(make_params(["efficientnet_lite0"], convergence=convergence))
