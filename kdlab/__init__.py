"""kdlab: a teaching lab for knowledge distillation.

The loss kdlab teaches:

    L = alpha * T^2 * KL(softmax(z_t/T) || softmax(z_s/T)) + (1 - alpha) * CE(y, softmax(z_s))

The names a notebook needs most are here, so that one import line starts it; everything else lives
in its own module (README, "The library").
"""

__version__ = "0.1.0"

from kdlab.comparison import mean_interval, paired_difference
from kdlab.data import load_dataset
from kdlab.device import predict_logits
from kdlab.experiment import compare_students, load_data_and_teacher
from kdlab.interrupt import TrainingInterrupted
from kdlab.losses import (
    KDLossParts,
    alpha_from_ce_weighting,
    check_hyperparameters,
    kd_loss,
    soft_targets,
    soft_term_gradient,
    soft_term_gradient_high_T,
)
from kdlab.models import build_model, count_parameters, student_spec
from kdlab.train import distill, evaluate, fit, train_student

__all__ = ["KDLossParts", "TrainingInterrupted", "alpha_from_ce_weighting", "build_model", "check_hyperparameters",
           "compare_students", "count_parameters", "distill", "evaluate", "fit", "kd_loss", "load_data_and_teacher",
           "load_dataset", "mean_interval", "paired_difference", "predict_logits", "soft_targets", "soft_term_gradient",
           "soft_term_gradient_high_T", "student_spec", "train_student"]
