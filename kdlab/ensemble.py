"""An ensemble of trained networks as one teacher: Hinton et al.'s (2015) main setting.

`EnsembleTeacher(members)` is an nn.Module whose forward returns logits, so `kdlab.train.distill`
takes it as a `teacher` like any network. How the members are combined matters once T != 1:

- average="probabilities" (the default) returns T * log(mean_i softmax(z_i / T)). Its softmax at
  temperature T is exactly the average of the members' tempered distributions, the ensemble's
  soft targets at that T. Build it with the T you distill at: at any other temperature it is the
  average at `temperature`, re-tempered, not the average at the new T.
- average="logits" returns mean_i z_i: softmax(mean z / T) is the normalised geometric mean of the
  members' tempered distributions, the same at every T, and usually a little sharper than the average.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from kdlab.losses import check_hyperparameters

__all__ = ["EnsembleTeacher"]

AVERAGES = ("probabilities", "logits")


class EnsembleTeacher(nn.Module):
    """Several trained networks answering as one; use it wherever kdlab takes a teacher.

    `temperature` is the T at which average="probabilities" averages the members' distributions
    (set it to the T you distill at); it is ignored for average="logits".
    """

    def __init__(self, members, *, average: str = "probabilities", temperature: float = 1.0):
        super().__init__()
        members = list(members)
        if not members:
            raise ValueError("an ensemble needs at least one member")
        if average not in AVERAGES:
            raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
        check_hyperparameters(temperature, 0.0)
        self.members = nn.ModuleList(members)
        self.average = average
        self.temperature = float(temperature)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        logits = torch.stack([member(inputs).float() for member in self.members])  # (members, batch, classes)
        if self.average == "logits":
            return logits.mean(dim=0)
        T = self.temperature
        # log of the mean probability, computed from log-probabilities so that it stays finite
        log_mean = torch.logsumexp(torch.log_softmax(logits / T, dim=-1), dim=0) - math.log(len(self.members))
        return T * log_mean
