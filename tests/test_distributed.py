import json
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.distributed

from kdlab.data import load_dataset
from kdlab.models import build_model, mlp_spec
from kdlab.train import fit

# One short epoch of the same fit() the CLI's teacher command calls: 201 examples in batches of
# 64, so the last batch (9 examples) splits unevenly over the two ranks.
WORKER = textwrap.dedent("""
    import os, sys, torch
    from kdlab.data import load_dataset
    from kdlab.models import build_model, mlp_spec
    from kdlab.train import fit

    train, _ = load_dataset("digits")
    model = build_model(mlp_spec(train.input_shape, hidden=(32,)), seed=0)
    history = fit(model, train.subset(201), epochs=1, seed=3, device="cpu", progress=False)
    torch.save({"weights": model.state_dict(), "loss": history.train_loss},
               os.path.join(sys.argv[1], f"rank{os.environ['RANK']}.pt"))
""")


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="this torch build has no gloo backend for CPU process groups")
def test_two_gloo_processes_under_torchrun_end_with_the_weights_of_one_process(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
         str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert launched.returncode == 0, launched.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1)]
    for name, tensor in ranks[0]["weights"].items():
        assert torch.equal(tensor, ranks[1]["weights"][name]), f"ranks disagree on {name}"

    # Each rank saw half of every batch, yet the step is the single-process step on the whole batch.
    train, _ = load_dataset("digits")
    spec = mlp_spec(train.input_shape, hidden=(32,))
    alone = build_model(spec, seed=0)
    history = fit(alone, train.subset(201), epochs=1, seed=3, device="cpu", progress=False)
    for name, tensor in alone.state_dict().items():
        torch.testing.assert_close(ranks[0]["weights"][name], tensor, rtol=1e-4, atol=1e-6)
    assert ranks[0]["loss"] == pytest.approx(history.train_loss, rel=1e-5)
    assert not torch.equal(alone.state_dict()["1.weight"], build_model(spec, seed=0).state_dict()["1.weight"])


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="this torch build has no gloo backend for CPU process groups")
def test_the_teacher_command_runs_unchanged_under_torchrun_and_rank_zero_writes(tmp_path):
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "kdlab",
         "teacher", "--epochs", "1", "--device", "cpu", "--no-progress", "--data-root", str(tmp_path),
         "--json", str(tmp_path / "teacher.json")], capture_output=True, text=True, timeout=300)
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["teacher-digits-epochs1-seed0.pt", "teacher.json"]
    assert launched.stdout.count("wrote ") == 1
    metadata = json.loads((tmp_path / "teacher.json").read_text())["teacher"]
    assert (metadata["pool"], metadata["validation"]) == (997, 300)  # trained on the pool only, on every rank
