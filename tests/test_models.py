import pytest
import torch

from kdlab.models import build_model, cnn_spec, count_parameters, mlp_spec, student_spec, teacher_spec


def test_hinton_teacher_is_two_layers_of_1200_with_dropout():
    spec = teacher_spec((1, 28, 28))
    assert spec["hidden"] == [1200, 1200] and spec["dropout"] > 0
    # 784*1200 + 1200 + 1200*1200 + 1200 + 1200*10 + 10 weights and biases
    assert count_parameters(build_model(spec)) == 784 * 1200 + 1200 + 1200 * 1200 + 1200 + 1200 * 10 + 10


@pytest.mark.parametrize("input_shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_students_shrink_and_all_models_map_images_to_class_logits(input_shape):
    sizes = ["large", "medium", "small", "tiny"]
    counts = [count_parameters(build_model(student_spec(input_shape, size))) for size in sizes]
    assert counts == sorted(counts, reverse=True) and len(set(counts)) == 4
    assert count_parameters(build_model(teacher_spec(input_shape))) > counts[0]
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
