"""Tests for kdlab.similarity: linear CKA against the kernel (HSIC) formula in numpy, its invariances,
and clear errors."""

import numpy as np
import pytest
import torch

from kdlab.similarity import linear_cka


def reference_cka(x, y):
    # Kornblith et al.'s HSIC form with the n x n centring matrix H: tr(K H L H), K = X X^T, L = Y Y^T.
    x, y = (np.asarray(a, dtype=np.float64).reshape(len(a), -1) for a in (x, y))
    n = len(x)
    centring = np.eye(n) - np.ones((n, n)) / n

    def hsic(first, second):
        return np.trace(first @ centring @ second @ centring)

    gram_x, gram_y = x @ x.T, y @ y.T
    return hsic(gram_x, gram_y) / np.sqrt(hsic(gram_x, gram_x) * hsic(gram_y, gram_y))


def random(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("x_shape, y_shape", [((20, 5), (20, 7)), ((30, 2, 3, 3), (30, 12)), ((2, 1), (2, 4))])
def test_linear_cka_matches_the_hsic_formula(x_shape, y_shape):
    x, y = random(*x_shape, seed=1), random(*y_shape, seed=2)
    mixing = random(x[0].numel(), y[0].numel(), seed=3)
    y = y + (x.flatten(1) @ mixing).reshape(y_shape)  # related, but not the same
    assert linear_cka(x, y) == pytest.approx(reference_cka(x, y), abs=1e-10)


def test_linear_cka_is_one_for_the_same_representation_rotated_scaled_or_shifted():
    x = random(50, 6, seed=3)
    rotation, _ = torch.linalg.qr(random(6, 6, seed=4))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3.0 * x @ rotation + 7.0) == pytest.approx(1.0)
    stretched = x @ torch.diag(torch.tensor([10.0, 1, 1, 1, 1, 0.1]))  # invertible but not orthogonal
    assert linear_cka(x, stretched) < 0.9


def test_linear_cka_is_symmetric_and_small_for_unrelated_representations():
    x, y = random(2000, 8, seed=5), random(2000, 8, seed=6)
    assert linear_cka(x, y) == pytest.approx(linear_cka(y, x))
    assert 0 <= linear_cka(x, y) < 0.02


@pytest.mark.parametrize(
    "x, y, match",
    [
        (torch.randn(10, 3), torch.randn(9, 3), "same examples, got 10 and 9 rows"),
        (torch.randn(10), torch.randn(10, 3), r"\(n, \.\.\.\) with the examples first"),
        (torch.randn(1, 3), torch.randn(1, 3), "at least 2 examples"),
        (torch.ones(10, 3), torch.randn(10, 3), "x is the same for every example"),
        (torch.randn(10, 3), torch.full((10, 3), float("nan")), "y must be finite"),
        (np.zeros((10, 3)), torch.randn(10, 3), "must be tensors, got ndarray"),
    ],
)
def test_linear_cka_refuses_bad_inputs_clearly(x, y, match):
    with pytest.raises(ValueError, match=match):
        linear_cka(x, y)
