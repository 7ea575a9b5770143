import subprocess
import sys

import pytest
import torch

from kdlab.device import forward_seconds, one_cpu_thread
from kdlab.models import build_model, mlp_spec


def test_one_cpu_thread_restores_the_thread_count_even_after_an_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with one_cpu_thread():
            assert torch.get_num_threads() == 1
            raise RuntimeError("training failed")
    assert torch.get_num_threads() == before


# In a fresh process (the test's own may have made the setting already): page faults of allocating,
# filling and freeing 256 MB, three times, before and after kdlab first works on the CPU.
FAULTS = """
import resource, torch
from kdlab.device import one_cpu_thread

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        torch.ones(64 << 20)  # 256 MB, freed at once
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

default = faults()
with one_cpu_thread():
    faults()  # the first block is faulted in once
    reused = faults()
print(default, reused)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the setting is glibc's, made on Linux only")
def test_once_kdlab_works_on_the_cpu_a_freed_large_block_is_reused_not_faulted_in_again():
    done = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    default, reused = map(int, done.stdout.split())
    pages = 3 * (256 << 20) // 4096
    assert default > 0.9 * pages  # glibc's default: every 256 MB block faulted in afresh, page by page
    assert reused < 0.05 * pages


def test_forward_seconds_is_a_median_that_grows_with_the_work_and_leaves_the_model_alone():
    model = build_model(mlp_spec((1, 8, 8), hidden=(64,)), seed=0).train()
    threads = torch.get_num_threads()
    small = forward_seconds(model, torch.randn(8, 1, 8, 8), repeats=5, device="cpu")
    large = forward_seconds(model, torch.randn(20000, 1, 8, 8), repeats=5, device="cpu")
    assert 0 < small < large  # 2,500 times the images: no machine noise hides that
    assert model.training and torch.get_num_threads() == threads


def test_training_gives_the_same_numbers_whatever_the_thread_count():
    from kdlab.data import load_dataset
    from kdlab.train import distill, fit
    train, test = load_dataset("digits")
    teacher = build_model(mlp_spec(train.input_shape, hidden=(64,)), seed=0)
    fit(teacher, train.subset(300), epochs=3, progress=False)
    threads = torch.get_num_threads()
    results = []
    for count in (1, 2):
        torch.set_num_threads(count)
        try:
            student = build_model(mlp_spec(train.input_shape, hidden=(32,)), seed=1)
            history = distill(student, teacher, train.subset(100), test, epochs=5, seed=2, progress=False)
        finally:
            torch.set_num_threads(threads)
        results.append((history.train_loss, history.test_accuracy, [p.detach().clone() for p in student.parameters()]))
    assert results[0][:2] == results[1][:2]
    assert all(torch.equal(a, b) for a, b in zip(results[0][2], results[1][2]))
