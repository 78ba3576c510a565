import pytest

from shortcut_audit.config import ParamError
from shortcut_audit.imagenet.config import parse_config


def test_small_params_parse(make_params):
    config = parse_config(make_params(["efficientnet_lite0"]))
    assert config.forwards == 40 and config.convergence_budgets == [20, 40]


def test_precision_defaults_to_the_fast_path_without_compile(make_params):
    params = make_params(["efficientnet_lite0"])
    del params["imagenet"]["precision"]
    config = parse_config(params)
    assert (config.precision, config.compile) == ("fast", False)
    for precision in ("fp32", "bf16"):  # bf16 is checked against the device when the audit starts
        assert (
            parse_config(make_params(["efficientnet_lite0"], precision=precision, compile=True)).precision == precision
        )


def test_empty_model_list(make_params):
    with pytest.raises(ParamError, match=r"imagenet\.models"):
        parse_config(make_params([]))


@pytest.mark.parametrize(
    "override, key",
    [
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
        ({"morris": {"sampling": "regional"}}, "imagenet.morris.sampling"),
        ({"cross_architecture": {"reference_model": "lenet"}}, "imagenet.cross_architecture.reference_model"),
        ({"cross_architecture": {"mask_baseline": "pink"}}, "imagenet.cross_architecture.mask_baseline"),
        ({"precision": "fp16"}, "imagenet.precision"),
        ({"compile": "yes"}, "imagenet.compile"),
    ],
)
def test_bad_values_name_the_key(make_params, override, key):
    with pytest.raises(ParamError, match=key.replace(".", r"\.")):
        parse_config(make_params(["efficientnet_lite0"], **override))


def test_mosip_global_sampling_and_reference_model(make_params):
    """MoSIP Sec. 5: global sampling is a choice; the overlap reference is AlexNet unless set,
    and may be absent from the models (a loaded one then stands in)."""
    config = parse_config(make_params(["efficientnet_lite0", "vgg16"], morris={"sampling": "global"}))
    assert config.morris_sampling == "global" and config.overlap_reference == "alexnet"
    chosen = parse_config(make_params(["efficientnet_lite0", "vgg16"], cross_architecture={"reference_model": "vgg16"}))
    assert chosen.overlap_reference == "vgg16"


def test_geex_and_convergence_keys_parse_with_the_papers_defaults(make_params):
    config = parse_config(
        make_params(["efficientnet_lite0"], geex={}, convergence={"budgets": [100], "reference_forwards": 200})
    )
    assert (config.geex_loss, config.geex_noise) == ("uniform_ce", "shared")
    assert config.geex_sigma == pytest.approx(0.15) and config.convergence_grid == 7


@pytest.mark.parametrize(
    "override, key",
    [
        ({"geex": {"loss": "mse"}}, "imagenet.geex.loss"),
        ({"geex": {"noise": "pixel"}}, "imagenet.geex.noise"),
        ({"geex": {"noise_size": 0}}, "imagenet.geex.noise_size"),
        ({"geex": {"white_box": {"smoothgrad_samples": 0}}}, "imagenet.geex.white_box.smoothgrad_samples"),
        (
            {"convergence": {"budgets": [100], "reference_forwards": 200, "grid_size": 1}},
            "imagenet.convergence.grid_size",
        ),
    ],
)
def test_bad_geex_and_convergence_values_name_the_key(make_params, override, key):
    with pytest.raises(ParamError, match=key.replace(".", r"\.")):
        parse_config(make_params(["efficientnet_lite0"], **override))


def test_convergence_budgets_are_checked_against_the_convergence_grid(make_params):
    # Sobol on the paper's 7 x 7 convergence masks needs N >= 2 designs: 2 (49 + 1) forwards
    with pytest.raises(ParamError, match=r"imagenet\.convergence\.budgets.*7x7"):
        parse_config(make_params(["efficientnet_lite0"], convergence={"budgets": [20, 40], "reference_forwards": 80}))


@pytest.mark.parametrize("budgets", [[], None, [40, 40]], ids=["empty", "absent", "duplicate"])
def test_convergence_budgets_must_be_a_non_empty_list_of_distinct_budgets(make_params, budgets):
    """An empty study wrote a header-only convergence.csv that the report and validation then choked on."""
    convergence = {"methods": ["rise"], "reference_forwards": 80, **({} if budgets is None else {"budgets": budgets})}
    with pytest.raises(ParamError, match=r"imagenet\.convergence\.budgets"):
        parse_config(make_params(["efficientnet_lite0"], convergence=convergence))
