"""How alike two networks' representations are: linear CKA (Kornblith et al. 2019).

Feed the same n examples through two networks and take a layer of each: X (n, p) and Y (n, q),
any widths. Centre every column, then

    CKA(X, Y) = ||Y^T X||_F^2 / (||X^T X||_F * ||Y^T Y||_F)

It lies in [0, 1], is 1 for the same representation, and does not change when either side is
rotated (any orthogonal map) or scaled, so a student's channel order and scale are free; an
arbitrary invertible linear map does change it (unlike CCA), which is what lets it tell layers apart.
Computed in float64 from the (p, q) cross-products, so n can be in the thousands.
"""

from __future__ import annotations

import torch

__all__ = ["linear_cka"]


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA between two representations of the same examples: (n, ...) each, flattened to (n, features)."""
    if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
        raise ValueError(f"x and y must be tensors, got {type(x).__name__} and {type(y).__name__}")
    if x.dim() < 2 or y.dim() < 2:
        raise ValueError(f"x and y must be (n, ...) with the examples first, got shapes {tuple(x.shape)} "
                         f"and {tuple(y.shape)}")
    if len(x) != len(y):
        raise ValueError(f"x and y must hold the same examples, got {len(x)} and {len(y)} rows")
    if len(x) < 2:
        raise ValueError(f"CKA needs at least 2 examples, got {len(x)}")
    x, y = (_centred(tensor) for tensor in (x, y))
    for name, tensor in (("x", x), ("y", y)):
        if not torch.isfinite(tensor).all():
            raise ValueError(f"{name} must be finite, got NaN or inf")
        if not tensor.abs().sum() > 0:
            raise ValueError(f"{name} is the same for every example (no variance), so CKA is undefined")
    cross = torch.linalg.matrix_norm(y.T @ x) ** 2
    return (cross / (torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y))).item()


def _centred(tensor: torch.Tensor) -> torch.Tensor:
    flat = tensor.detach().to(torch.float64).flatten(1)
    return flat - flat.mean(dim=0, keepdim=True)
