"""kdlab's Adam gives torch.optim.Adam's weights bit for bit on the CPU, and training never imports torch's compiler."""

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from kdlab.models import build_model, convnet_spec, gpt_spec, mlp_spec
from kdlab.optim import Adam


def _train(spec, make_optimizer, steps=40, skip_head_every=0):
    """`steps` Adam steps on random batches; with `skip_head_every`, the head gets no gradient on those steps."""
    torch.manual_seed(0)  # dropout
    model = build_model(spec, seed=0)
    optimizer = make_optimizer(model.parameters())
    generator = torch.Generator().manual_seed(1)
    for step in range(steps):
        if spec["family"] == "gpt":
            ids = torch.randint(spec["vocab_size"], (8, spec["context"] + 1), generator=generator)
            loss = F.cross_entropy(model(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten())
        else:
            inputs = torch.randn(16, *spec["input_shape"], generator=generator)
            loss = F.cross_entropy(model(inputs), torch.randint(10, (16,), generator=generator))
        optimizer.zero_grad()
        loss.backward()
        if skip_head_every and step % skip_head_every == 0:
            for parameter in list(model.parameters())[-2:]:
                parameter.grad = None  # as for a layer a step did not use: its step count must not advance
        optimizer.step()
    return [parameter.detach() for parameter in model.parameters()]


@pytest.mark.parametrize("spec", [
    mlp_spec((1, 8, 8), hidden=(32, 16)),
    convnet_spec((1, 28, 28), channels=(8, 16), hidden=32, dropout=0.1),
    gpt_spec(30, 16, width=32, depth=2, heads=4),
], ids=["mlp", "convnet", "gpt"])
@pytest.mark.parametrize("lr", [1e-3, 3e-3])
def test_the_same_weights_as_torch_adam_bit_for_bit(spec, lr):
    ours = _train(spec, lambda parameters: Adam(parameters, lr=lr))
    torchs = _train(spec, lambda parameters: torch.optim.Adam(parameters, lr=lr))
    assert all(torch.equal(a, b) for a, b in zip(ours, torchs))
    untrained = build_model(spec, seed=0).parameters()
    assert not any(torch.equal(a, b) for a, b in zip(ours, untrained))  # every parameter moved


def test_a_parameter_without_a_gradient_is_skipped_and_counts_its_own_steps():
    spec = mlp_spec((1, 8, 8), hidden=(32,))
    ours = _train(spec, lambda parameters: Adam(parameters, lr=1e-2), skip_head_every=3)
    torchs = _train(spec, lambda parameters: torch.optim.Adam(parameters, lr=1e-2), skip_head_every=3)
    assert all(torch.equal(a, b) for a, b in zip(ours, torchs))


def test_float64_parameters_as_the_gaussian_student_uses_them():
    def run(make_optimizer):
        mean = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
        optimizer = make_optimizer([mean])
        for _ in range(25):
            optimizer.zero_grad()
            ((mean - 3.0) ** 2).backward()
            optimizer.step()
        return mean.detach()

    assert torch.equal(run(lambda parameters: Adam(parameters, lr=0.1)),
                       run(lambda parameters: torch.optim.Adam(parameters, lr=0.1)))


@pytest.mark.parametrize("arguments, message", [
    ({"parameters": []}, "Adam got no parameters"),
    ({"lr": 0.0}, "Adam needs a learning rate lr > 0, got 0.0"),
    ({"lr": float("nan")}, "Adam needs a learning rate lr > 0, got nan"),
])
def test_bad_settings_are_refused_with_what_to_pass(arguments, message):
    arguments = {"parameters": [torch.zeros(2, requires_grad=True)], **arguments}
    with pytest.raises(ValueError, match=message):
        Adam(**arguments)


def test_training_does_not_import_torchs_compiler():
    """The reason kdlab has its own Adam: torch.optim imports torch._dynamo, about a second in every process."""
    code = ("import sys; from kdlab import build_model, fit, load_dataset, student_spec; "
            "train, _ = load_dataset('digits'); "
            "fit(build_model(student_spec(train.input_shape), seed=0), train.subset(64), epochs=1, progress=False); "
            "print('torch._dynamo' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
