import pytest
import torch
from torch import nn

from kdlab.data import load_dataset
from kdlab.device import predict_logits
from kdlab.ensemble import EnsembleTeacher
from kdlab.models import build_model, mlp_spec, student_spec
from kdlab.train import distill, evaluate, fit


def _members(count=3, num_classes=4, features=5):
    return [nn.Linear(features, num_classes) for _ in range(count)]


def test_averaged_probabilities_at_the_ensembles_temperature():
    torch.manual_seed(0)
    members, inputs = _members(), torch.randn(8, 5) * 10  # large logits: the log-sum-exp must stay finite
    for T in (1.0, 4.0):
        ensemble = EnsembleTeacher(members, temperature=T)
        expected = torch.stack([torch.softmax(member(inputs) / T, dim=-1) for member in members]).mean(0)
        torch.testing.assert_close(torch.softmax(ensemble(inputs) / T, dim=-1), expected)


def test_averaged_logits_are_the_mean_logit():
    torch.manual_seed(1)
    members, inputs = _members(), torch.randn(8, 5)
    ensemble = EnsembleTeacher(members, average="logits")
    torch.testing.assert_close(ensemble(inputs), torch.stack([member(inputs) for member in members]).mean(0))


def test_one_member_is_that_member():
    torch.manual_seed(2)
    member, inputs = nn.Linear(5, 4), torch.randn(8, 5)
    for average in ("probabilities", "logits"):
        ensemble = EnsembleTeacher([member], average=average, temperature=4.0)
        torch.testing.assert_close(torch.softmax(ensemble(inputs) / 4.0, -1), torch.softmax(member(inputs) / 4.0, -1))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="at least one member"):
        EnsembleTeacher([])
    with pytest.raises(ValueError, match="average must be one of"):
        EnsembleTeacher(_members(), average="votes")
    with pytest.raises(ValueError, match="T must be"):
        EnsembleTeacher(_members(), temperature=0.0)


def test_an_ensemble_is_a_teacher_for_distill():
    train, test = load_dataset("digits")
    members = []
    for seed in range(2):
        member = build_model(mlp_spec(train.input_shape, hidden=(32,)), seed=seed)
        fit(member, train.subset(300, seed=seed), epochs=3, seed=seed, progress=False, device="cpu")
        members.append(member)
    ensemble = EnsembleTeacher(members, temperature=4.0)
    student = build_model(student_spec(train.input_shape, "small"), seed=0)
    distill(student, ensemble, train.subset(100), epochs=2, T=4.0, seed=0, progress=False, device="cpu")
    scores = evaluate(student, test, teacher=ensemble, device="cpu")
    assert 0.0 <= scores["agreement"] <= 1.0
    assert predict_logits(ensemble, test.inputs[:7], device="cpu").shape == (7, 10)
