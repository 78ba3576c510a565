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
    ({"morris": {"sampling": "regional"}}, "imagenet.morris.sampling"),
    ({"cross_architecture": {"reference_model": "lenet"}}, "imagenet.cross_architecture.reference_model"),
    ({"cross_architecture": {"mask_baseline": "pink"}}, "imagenet.cross_architecture.mask_baseline"),
])
def test_bad_values_name_the_key(make_params, override, key):
    with pytest.raises(ParamError, match=key.replace(".", r"\.")):
        parse_config(make_params(["efficientnet_lite0"], **override))


def test_mosip_global_sampling_and_reference_model(make_params):
    """MoSIP Sec. 5: global sampling is a choice; the overlap reference is AlexNet unless set,
    and may be absent from the models (a loaded one then stands in)."""
    config = parse_config(make_params(["efficientnet_lite0", "vgg16"], morris={"sampling": "global"}))
    assert config.morris_sampling == "global" and config.overlap_reference == "alexnet"
    chosen = parse_config(make_params(["efficientnet_lite0", "vgg16"],
                                      cross_architecture={"reference_model": "vgg16"}))
    assert chosen.overlap_reference == "vgg16"
