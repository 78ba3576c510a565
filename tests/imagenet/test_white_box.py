"""GEEX paper, Sec. 4: nAOPC of the decided class and the distance of black-box maps to
SmoothGrad and Integrated Gradients (Fig. 3), through the pipeline's method step."""

import pandas as pd
import torch

from shortcut_audit import attribution as A
from shortcut_audit.attribution.base import key_seed
from shortcut_audit.data.image_sets import ImageBatch
from shortcut_audit.distributed import ShardData, merge
from shortcut_audit.imagenet.config import parse_config
from shortcut_audit.imagenet.explain import CountingScorer
from shortcut_audit.imagenet.pipeline import TABLES, ImagenetAudit
from shortcut_audit.metrics import deletion_curve
from shortcut_audit.models.imagenet import load_imagenet_model


def _max_normalised_l1(a, b):
    a = a.flatten(1) / a.flatten(1).abs().amax(1, keepdim=True)
    b = b.flatten(1) / b.flatten(1).abs().amax(1, keepdim=True)
    return (a - b).abs().mean(1)


def test_method_step_tracks_the_decided_class_and_compares_with_smoothgrad_and_ig(make_params, tiny_model_path):
    config = parse_config(make_params([tiny_model_path], methods=["geex", "rise"]))
    loaded = load_imagenet_model(tiny_model_path, input_size=32)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        decided = loaded.model(images).argmax(1)
    labels = (decided + 1) % 1000  # true classes the model does not predict
    audit = ImagenetAudit(config, log=lambda message: None)
    seeds = [key_seed(config.seed, image_id) for image_id in ("a", "b")]
    part = ShardData(torch.arange(2))
    audit.method_steps(
        loaded,
        ImageBatch(images, ["a", "b"], labels),
        labels,
        CountingScorer(loaded.model, torch.device("cpu")),
        None,
        part,
        seeds,
    )
    rows, arrays = {name: [] for name in TABLES}, {}
    audit.method_rows(rows, arrays, merge([part], 2), loaded.name, labels, ["a", "b"])
    fidelity = pd.DataFrame(rows["fidelity"])

    # nAOPC = 1 - mean(trend) / trend[0] on the decided class's probability along the rise protocol's deletion path
    naopc = fidelity[
        (fidelity["metric"] == "naopc") & (fidelity["method"] == "geex") & (fidelity["protocol"] == "rise")
    ]
    assert naopc["target"].tolist() == decided.tolist()
    geex_maps = torch.from_numpy(arrays["map_geex"])
    trend = deletion_curve(
        loaded.model,
        images,
        geex_maps,
        decided,
        steps=config.fidelity_steps,
        baseline=config.deletion_baseline,
        score="probability",
        seed=seeds,
    ).scores
    torch.testing.assert_close(torch.tensor(naopc["value"].tolist()), 1 - trend.mean(1) / trend[:, 0])

    l1 = fidelity[fidelity["metric"] == "l1_to_white_box"]
    for method in ("geex", "rise"):
        assert set(l1.loc[l1["method"] == method, "reference"]) == {"gradient", "smoothgrad", "integrated_gradients"}
    smoothgrad = A.SmoothGrad(
        loaded.model,
        n_samples=config.white_box_smoothgrad_samples,
        noise_level=config.white_box_smoothgrad_noise_level,
        channel_reduction="sum",
        seed=config.seed,
    )(images, labels)
    integrated = A.IntegratedGradients(loaded.model, steps=config.white_box_ig_steps)(images, labels)
    for reference, white in (("smoothgrad", smoothgrad), ("integrated_gradients", integrated)):
        rows = l1[(l1["method"] == "geex") & (l1["reference"] == reference)]
        torch.testing.assert_close(torch.tensor(rows["value"].tolist()), _max_normalised_l1(geex_maps, white))
