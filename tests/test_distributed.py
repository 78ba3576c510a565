"""The launcher params, a process's items and the merge of the processes' parts (no process group here)."""

from __future__ import annotations

import json

import pytest
import torch

from shortcut_audit.config import ParamError
from shortcut_audit.distributed import Launcher, Shard, ShardData, merge, shard_folder
from shortcut_audit.distributed.launcher import failure_message
from shortcut_audit.distributed.shards import _place


def test_default_launcher_is_one_process_and_never_relaunches(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    launcher = Launcher.from_params({})
    assert launcher.world_size == 1 and not launcher.wants_relaunch()
    assert Launcher.from_params({"launcher": {"nproc_per_node": 2}}).wants_relaunch()
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert not Launcher.from_params({"launcher": {"nproc_per_node": 2}}).wants_relaunch()  # already a worker


@pytest.mark.parametrize(
    "section, key",
    [
        ({"nproc_per_node": 0}, "launcher.nproc_per_node"),
        ({"nproc_per_node": True}, "launcher.nproc_per_node"),
        ({"nnodes": 2}, "launcher.rdzv_endpoint"),
        ({"nnodes": 2, "rdzv_endpoint": "no-port"}, "launcher.rdzv_endpoint"),
        ({"timeout_minutes": 0}, "launcher.timeout_minutes"),
    ],
)
def test_bad_launcher_params_name_their_key(section, key):
    with pytest.raises(ParamError, match=key):
        Launcher.from_params({"launcher": section})


def test_torchrun_arguments_for_one_node_and_for_several():
    one = Launcher(nproc_per_node=2).torchrun_args("abc", "pkg.stage", ["--output", "x"])
    assert one[-4:] == ["-m", "pkg.stage", "--output", "x"]
    assert "--rdzv-endpoint=localhost:0" in one and "--nproc-per-node=2" in one and "--rdzv-id=abc" in one
    several = Launcher(nproc_per_node=4, nnodes=3, rdzv_endpoint="node0:29400")
    args = several.torchrun_args(several.run_id("pkg.stage", "data/x"), "pkg.stage", [])
    assert "--nnodes=3" in args and "--rdzv-endpoint=node0:29400" in args and "--rdzv-backend=c10d" in args
    # every node derives the same rendezvous id from the same command
    assert several.run_id("pkg.stage", "data/x") == several.run_id("pkg.stage", "data/x")
    assert several.run_id("pkg.stage", "data/x") != several.run_id("pkg.stage", "data/y")


def test_shard_folder_is_a_temporary_sibling_of_the_output(tmp_path):
    folder = shard_folder(tmp_path / "imagenet", "r1")
    assert folder.parent == tmp_path and folder.name.startswith(".tmp-imagenet")


def test_items_are_dealt_round_robin_and_cover_every_item_once():
    parts = [Shard(rank, 3, folder=".").items(8) for rank in range(3)]
    assert [p.tolist() for p in parts] == [[0, 3, 6], [1, 4, 7], [2, 5]]
    assert Shard.single().items(5).tolist() == list(range(5))
    with pytest.raises(ValueError, match="4 processes for 3 images"):
        Shard(0, 4, folder=".").check_items(3, "images")


def test_merged_parts_equal_the_single_process_data():
    torch.manual_seed(0)
    n = 7
    values, counts = torch.randn(n, 2, 3), torch.arange(n)
    whole = ShardData(torch.arange(n))
    whole.put("values", values)
    whole.put("counts", counts)
    parts = []
    for rank in range(3):
        index = Shard(rank, 3, folder=".").items(n)
        part = ShardData(index)
        part.put("values", values[index])
        part.put("counts", counts[index])
        part.add("forwards", 10 * len(index))
        part.set("shape", [2, 3])
        parts.append(part)
    merged = merge(parts, n)
    assert torch.equal(merged.per_item["values"], whole.per_item["values"])
    assert torch.equal(merged.per_item["counts"], counts)
    assert merged.totals["forwards"] == 10 * n and merged.shared["shape"] == [2, 3]
    single = merge([whole], n)
    assert torch.equal(single.per_item["values"], values)


def test_merge_refuses_parts_that_do_not_fit():
    first, second = ShardData(torch.tensor([0, 2])), ShardData(torch.tensor([1]))
    first.put("x", torch.zeros(2))
    with pytest.raises(ValueError, match="per-item keys"):
        merge([first, second], 3)
    with pytest.raises(ValueError, match="exactly once"):
        merge([first], 3)
    with pytest.raises(ValueError, match="first axis of 2 items"):
        first.put("y", torch.zeros(3))
    with pytest.raises(ValueError, match="disagree"):
        _place([torch.tensor([0]), torch.tensor([1])], [torch.zeros(1, 2), torch.zeros(1, 3)], 2)


def test_a_single_process_exchanges_nothing():
    shard = Shard.single()
    values = torch.arange(4)
    assert shard.gather_items(values, 4) is values
    assert shard.all_gather("x") == ["x"]
    data = ShardData(torch.arange(4))
    assert shard.gather_to_root(data) == [data]


def test_failure_message_names_the_first_rank_that_failed(tmp_path):
    for rank, when, error in (
        (0, 2.0, "RuntimeError: Connection closed by peer"),
        (1, 1.0, "ValueError: the model cannot load"),
    ):
        (tmp_path / f"error-rank-{rank:05d}.json").write_text(
            json.dumps(
                {"rank": rank, "world_size": 2, "local_rank": rank, "host": "node", "time": when, "error": error}
            )
        )
    message = failure_message(tmp_path, RuntimeError("child failed"))
    assert message.startswith("rank 1 of 2") and "ValueError: the model cannot load" in message
    assert "rank(s) 0 failed after it" in message


def test_more_processes_than_gpus_are_refused_before_any_work(monkeypatch):
    import shortcut_audit.distributed.launcher as launcher_module

    monkeypatch.setattr(launcher_module, "resolve_device", lambda requested: torch.device(requested))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ParamError, match=r"launcher.nproc_per_node.*2 processes on a node with 1 GPU"):
        Launcher(nproc_per_node=2).check_device("cuda")
    Launcher(nproc_per_node=1).check_device("cuda")  # one process, one GPU
    Launcher(nproc_per_node=2).check_device("cpu")  # CPU processes share the cores
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    Launcher(nproc_per_node=2).check_device("cuda")
