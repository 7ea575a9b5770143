import pytest
import torch

from kdlab.models import build_model, cnn_spec, convnet_spec, count_parameters, mlp_spec, student_spec, teacher_spec


def test_the_digits_teacher_is_hintons_two_layers_of_1200_with_dropout():
    spec = teacher_spec((1, 8, 8))
    assert spec["hidden"] == [1200, 1200] and spec["dropout"] > 0
    # 64*1200 + 1200 + 1200*1200 + 1200 + 1200*10 + 10 weights and biases
    assert count_parameters(build_model(spec)) == 64 * 1200 + 1200 + 1200 * 1200 + 1200 + 1200 * 10 + 10


def test_28x28_images_get_the_convnet_teacher():
    # On real MNIST the 2x1200 MLP is no better than its students; the ConvNet is (README, MNIST row).
    spec = teacher_spec((1, 28, 28))
    assert spec["family"] == "convnet" and spec["dropout"] > 0


@pytest.mark.parametrize("input_shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_students_shrink_and_all_models_map_images_to_class_logits(input_shape):
    sizes = ["large", "medium", "small", "tiny"]
    counts = [count_parameters(build_model(student_spec(input_shape, size))) for size in sizes]
    assert counts == sorted(counts, reverse=True) and len(set(counts)) == 4
    # Larger than the default (medium) student; on 28x28 images the ConvNet teacher is smaller than the
    # 2x800 student, and more accurate: a teacher is worth learning from for its accuracy, not its size.
    assert count_parameters(build_model(teacher_spec(input_shape))) > counts[1]
    for spec in [teacher_spec(input_shape), student_spec(input_shape, "tiny")]:
        model = build_model(spec).eval()
        assert model(torch.randn(5, *input_shape)).shape == (5, 10)


def test_same_seed_same_initial_weights_and_global_rng_untouched():
    spec = mlp_spec((1, 8, 8), hidden=(16,))
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first, second, other = build_model(spec, seed=7), build_model(spec, seed=7), build_model(spec, seed=8)
    assert torch.rand(1) == before  # building with a seed does not disturb the caller's random stream
    for a, b in zip(first.parameters(), second.parameters()):
        assert torch.equal(a, b)
    assert not torch.equal(next(first.parameters()), next(other.parameters()))


def test_bad_specs_are_refused_clearly():
    with pytest.raises(ValueError, match="unknown student size"):
        student_spec((1, 8, 8), "huge")
    with pytest.raises(ValueError, match="unknown model family"):
        build_model({"family": "transformer"})
    assert cnn_spec((3, 32, 32))["family"] == "cnn"


def test_specs_with_missing_extra_or_impossible_values_are_refused_clearly():
    from kdlab.models import gpt_spec

    with pytest.raises(ValueError, match="a mlp spec takes the keys"):
        build_model({"family": "mlp", "input_shape": [1, 8, 8]})
    with pytest.raises(ValueError, match="a mlp spec takes the keys"):
        build_model({**mlp_spec((1, 8, 8), hidden=(4,)), "colour": "blue"})
    with pytest.raises(ValueError, match="heads must be a whole number of at least 1"):
        gpt_spec(100, heads=0)


# --- features(x): intermediate tensors without hooks ------------------------------------------------

FEATURE_SPECS = {
    "mlp": (mlp_spec((1, 8, 8), hidden=(16, 8), dropout=0.5),
            {"hidden1": (3, 16), "hidden2": (3, 8), "logits": (3, 10)}),
    "cnn": (cnn_spec((1, 8, 8), channels=(4, 8), dropout=0.2),
            {"stage1": (3, 4, 4, 4), "stage2": (3, 8, 2, 2), "pooled": (3, 8), "logits": (3, 10)}),
    "convnet": (convnet_spec((1, 8, 8), channels=(4, 8), hidden=16),
                {"stage1": (3, 4, 4, 4), "stage2": (3, 8, 2, 2), "hidden": (3, 16), "logits": (3, 10)}),
}


@pytest.mark.parametrize("family", sorted(FEATURE_SPECS))
def test_features_are_named_in_order_and_end_in_the_models_own_logits(family):
    spec, shapes = FEATURE_SPECS[family]
    model = build_model(spec, seed=0).eval()
    inputs = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    features = model.features(inputs)
    assert {name: tuple(tensor.shape) for name, tensor in features.items()} == shapes
    assert list(features) == list(shapes)  # shallow to deep
    assert torch.equal(features["logits"], model(inputs))


@pytest.mark.parametrize("family", sorted(FEATURE_SPECS))
def test_features_leave_no_hooks_behind_and_change_no_checkpoint(family):
    spec, _ = FEATURE_SPECS[family]
    model, plain = build_model(spec, seed=0), build_model(spec, seed=0)
    for _ in range(3):
        model.features(torch.randn(2, 1, 8, 8))
    for module in model.modules():
        assert not (module._forward_hooks or module._forward_pre_hooks or module._backward_hooks)
    assert list(model.state_dict()) == list(plain.state_dict())  # the same keys a checkpoint stores
    assert torch.nn.Sequential(*model).state_dict().keys() == model.state_dict().keys()


def test_a_loss_on_an_intermediate_feature_trains_only_the_layers_below_it():
    model = build_model(FEATURE_SPECS["convnet"][0], seed=0).train()
    model.features(torch.randn(4, 1, 8, 8))["stage1"].square().mean().backward()
    first_conv, head = model[0], model[-1]
    assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0
    assert head.weight.grad is None



def test_the_convnet_pooling_before_its_relu_trains_exactly_as_conv_relu_pool():
    # Images with a flat background, as digits have: equal values in a pooling window are common, and the
    # gradient must still go to the same winner. Outputs, features and gradients are compared bit for bit.
    spec = convnet_spec((1, 12, 12), channels=(4, 8), hidden=16, dropout=0.0)
    model = build_model(spec, seed=0).train()
    reference = torch.nn.Sequential(*(layer for stage in ((0, 2, 1), (3, 5, 4)) for layer in (model[i] for i in stage)),
                                    *list(model)[6:])
    assert [type(layer).__name__ for layer in reference[:6]] == ["Conv2d", "ReLU", "MaxPool2d"] * 2
    inputs = torch.zeros(8, 1, 12, 12)
    inputs[:, :, 3:9, 4:7] = torch.randn(8, 1, 6, 3, generator=torch.Generator().manual_seed(2))
    labels = torch.arange(8)
    gradients = []
    for network in (model, reference):
        network.zero_grad()
        logits = network(inputs)
        torch.nn.functional.cross_entropy(logits, labels).backward()
        gradients.append((logits.detach(), [parameter.grad.clone() for parameter in model.parameters()]))
    (ours, our_grads), (theirs, their_grads) = gradients
    assert torch.equal(ours, theirs) and all(torch.equal(a, b) for a, b in zip(our_grads, their_grads))
    assert torch.equal(model.features(inputs)["stage1"], reference[:3](inputs))

# --- specs and seeds are checked before torch sees them -----------------------------------------------

DIGITS_MLP = mlp_spec((1, 8, 8), hidden=(16,))


@pytest.mark.parametrize("change, match", [
    ({"hidden": [-3]}, r"hidden\[0\] must be a whole number of at least 1, got -3"),
    ({"hidden": [16, 0]}, r"hidden\[1\] must be a whole number of at least 1, got 0"),
    ({"hidden": ["16"]}, r"hidden\[0\] must be a whole number of at least 1, got '16'"),
    ({"hidden": [True]}, r"hidden\[0\] must be a whole number of at least 1, got True"),
    ({"hidden": 16}, r"hidden must be a list of whole numbers of at least 1, got 16"),
    ({"input_shape": [1, 0, 8]}, r"input_shape\[1\] must be a whole number of at least 1, got 0"),
    ({"num_classes": 0}, r"num_classes must be a whole number of at least 1, got 0"),
    ({"num_classes": 2.5}, r"num_classes must be a whole number of at least 1, got 2\.5"),
    ({"dropout": 1.0}, r"dropout must be a number in \[0, 1\), got 1\.0"),
    ({"dropout": "0.5"}, r"dropout must be a number in \[0, 1\), got '0\.5'"),
])
def test_an_mlp_spec_with_an_impossible_value_names_the_field(change, match):
    with pytest.raises(ValueError, match=f"^{match}$"):
        build_model({**DIGITS_MLP, **change})


@pytest.mark.parametrize("spec, match", [
    (cnn_spec((3, 32, 32), channels=(8, 16)) | {"channels": [8, -16]}, r"channels\[1\] must be .* got -16"),
    (convnet_spec((1, 28, 28)) | {"hidden": 0}, r"hidden must be a whole number of at least 1, got 0"),
    (convnet_spec((1, 28, 28)) | {"channels": ["32"]}, r"channels\[0\] must be .* got '32'"),
    ({"family": "gpt", "vocab_size": 50, "context": 16, "width": -8, "depth": 1, "heads": 2, "dropout": 0.0},
     r"width must be a whole number of at least 1, got -8"),
    ({"family": "gpt", "vocab_size": 50, "context": 16, "width": 10, "depth": 1, "heads": 4, "dropout": 0.0},
     r"width \(10\) must be a multiple of heads \(4\)"),
])
def test_other_families_name_the_impossible_field(spec, match):
    with pytest.raises(ValueError, match=match):
        build_model(spec)


@pytest.mark.parametrize("builder, arguments", [
    (mlp_spec, {"input_shape": (1, 8, 8), "hidden": (-3,)}),
    (cnn_spec, {"input_shape": (3, 32, 32), "channels": (0,)}),
    (convnet_spec, {"input_shape": (1, 28, 28), "hidden": "128"}),
    (student_spec, {"input_shape": None}),
    (teacher_spec, {"input_shape": (1, -8, 8)}),
])
def test_spec_builders_refuse_impossible_sizes_at_once(builder, arguments):
    with pytest.raises(ValueError, match="must be"):
        builder(**arguments)


@pytest.mark.parametrize("size", [["small"], None, 30])
def test_student_spec_names_the_sizes_it_knows(size):
    with pytest.raises(ValueError, match=r"unknown student size .*; choose one of \['large', 'medium', 'small', 'tiny"):
        student_spec((1, 8, 8), size)


@pytest.mark.parametrize("seed, error", [
    (2**70, ValueError), (2**64, ValueError), (-1, ValueError), ("1", TypeError), (1.5, TypeError), (True, TypeError),
])
def test_a_seed_outside_zero_to_two_to_the_64_is_refused(seed, error):
    with pytest.raises(error, match=rf"^seed must be a whole number in \[0, 2\*\*64\), got {seed!r}$"):
        build_model(DIGITS_MLP, seed=seed)


def test_the_largest_seed_and_numpy_integers_are_accepted():
    import numpy as np

    largest = build_model(DIGITS_MLP, seed=2**64 - 1)
    assert count_parameters(largest) == count_parameters(build_model(DIGITS_MLP))
    numpy_seeded, int_seeded = build_model(DIGITS_MLP, seed=np.int64(7)), build_model(DIGITS_MLP, seed=7)
    for a, b in zip(numpy_seeded.parameters(), int_seeded.parameters()):
        assert torch.equal(a, b)
