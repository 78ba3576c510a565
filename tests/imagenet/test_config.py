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
    ({"ensembles": {"settings": {"ucb_eps": -0.5}}}, "imagenet.ensembles.settings"),
    ({"ensembles": {"settings": {"api_range": [2, -7]}}}, "imagenet.ensembles.settings"),
    ({"ensembles": {"settings": {"var_delta": 0}}}, "imagenet.ensembles.settings"),
    ({"ensembles": {"settings": {"aei_range": [1]}}}, "imagenet.ensembles.settings.aei_range"),
    ({"ensembles": {"settings": {"rbm_iterations": 1.5}}}, "imagenet.ensembles.settings.rbm_iterations"),
    ({"ensembles": {"size_aggregations": ["median"]}}, "imagenet.ensembles.size_aggregations"),
    ({"fidelity": {"steps": 4, "protocols": ["pixel"]}}, "imagenet.fidelity.protocols"),
    ({"fidelity": {"steps": 4, "protocols": ["region"], "region_grid": 64}}, "imagenet.fidelity.region_grid"),
    ({"fidelity": {"steps": 4, "interval_level": 1.0}}, "imagenet.fidelity.interval_level"),
    ({"classes": "oscilloscope"}, "imagenet.classes"),
    ({"forwards": 16, "sobol": {"grid_size": 5}}, "imagenet.forwards"),
    ({"convergence": {"budgets": [10, 40], "reference_forwards": 80}}, "imagenet.convergence.budgets"),
])
def test_bad_values_name_the_key(make_params, override, key):
    with pytest.raises(ParamError, match=key.replace(".", r"\.")):
        parse_config(make_params(["efficientnet_lite0"], **override))
