"""kdlab: a teaching lab for knowledge distillation.

The loss kdlab teaches:

    L = alpha * T^2 * KL(softmax(z_t/T) || softmax(z_s/T)) + (1 - alpha) * CE(y, softmax(z_s))
"""

__version__ = "0.1.0"

from kdlab.losses import (
    KDLossParts,
    alpha_from_ce_weighting,
    check_hyperparameters,
    kd_loss,
    soft_targets,
    soft_term_gradient,
    soft_term_gradient_high_T,
)

__all__ = ["KDLossParts", "alpha_from_ce_weighting", "check_hyperparameters", "kd_loss", "soft_targets",
           "soft_term_gradient", "soft_term_gradient_high_T"]
