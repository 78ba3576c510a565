"""The Spearman-against-converged protocol of Fel et al. (2021), Sec. 4.3, on a tiny model."""

import torch
from scipy.stats import spearmanr

from shortcut_audit import attribution as A
from shortcut_audit.imagenet.config import parse_config
from shortcut_audit.imagenet.convergence import REFERENCE_SEED_OFFSET, convergence_rows
from shortcut_audit.imagenet.explain import CountingScorer
from shortcut_audit.models.imagenet import load_imagenet_model


def test_each_budget_is_ranked_against_a_converged_map_on_the_papers_grid(make_params, tiny_model_path):
    # fidelity runs on 3 x 3 Sobol / 4 x 4 RISE masks; the convergence study on 7 x 7 for both
    config = parse_config(
        make_params([tiny_model_path], convergence={"budgets": [100, 120], "reference_forwards": 200})
    )
    loaded = load_imagenet_model(tiny_model_path, input_size=32)
    scorer = CountingScorer(loaded.model, torch.device("cpu"))
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([3, 5])
    rows = convergence_rows(
        "tiny", scorer, images, targets, ["a", "b"], ["sobol", "rise"], [100, 120], 200, config, batch_size=64, seed=1
    )

    def sobol(budget, seed):
        return A.SobolAttribution(loaded.model, grid_size=7, nb_design=budget // 50, seed=seed)(images, targets)

    def rise(budget, seed):
        return A.RISE(loaded.model, nb_masks=budget, grid_size=7, keep_prob=0.5, seed=seed)(images, targets)

    for method, explain, used in (("sobol", sobol, {100: 100, 120: 100}), ("rise", rise, {100: 100, 120: 120})):
        reference = explain(200, 1 + REFERENCE_SEED_OFFSET)
        for budget in (100, 120):
            maps = explain(budget, 1)
            for i, image_id in enumerate(["a", "b"]):
                row = next(r for r in rows if (r["method"], r["budget"], r["image_id"]) == (method, budget, image_id))
                assert row["forwards"] == used[budget] and row["reference_kind"] == "independent"
                expected = spearmanr(maps[i].flatten(), reference[i].flatten())[0]
                assert abs(row["spearman"] - expected) < 1e-5, (method, budget, image_id)
