"""A grid of students over temperature T x teacher weight alpha, and its cached accuracies.

Every cell of the grid is the mean of `repeats` students distilled at its own (T, alpha); the
alpha=0 column ignores the teacher (pure cross-entropy) and is the baseline the other columns are
read against. Repetition r of cell k (row-major: k = row * len(alphas) + column) starts from
`build_model(spec, seed=seed + r * cells + k)`, and all students see the same batches (drawn with
`seed`), so a student equals `distill(build_model(spec, that seed), teacher, ..., seed=seed)`
within float rounding. With repeats >= 2 a cell has a 95 % interval, and the grid can say which
cells differ from the alpha=0 column by more than that noise.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from kdlab import experiment
from kdlab.checkpoints import cache_path, load_or_compute, write_text_atomically
from kdlab.comparison import mean_interval, paired_difference
from kdlab.data import TensorData, make_loader
from kdlab.device import autocast, pick_device, predict_logits
from kdlab.interrupt import TrainingInterrupted
from kdlab.losses import check_hyperparameters
from kdlab.models import build_model, student_spec
from kdlab.progress import TrainingLoop
from kdlab.train import check_method, evaluate

__all__ = ["GRID_ALPHAS", "GRID_TEMPERATURES", "GRID_TRANSFER_SETS", "Grid", "batched_dkd_gradient",
           "batched_kd_gradient", "best_cell", "distill_students", "grid_from_cache_or_sweep", "load_or_run_grid",
           "sweep", "sweep_transfer_sets"]

GRID_TEMPERATURES = (1.0, 2.0, 4.0, 8.0, 16.0)
GRID_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
GRID_TRANSFER_SETS = 5  # the cached grid's transfer sets (load_or_run_grid, the explorer): one student per cell each
SWEEP_LR = 1e-3  # sweep()'s defaults, which a cached grid must also match
SWEEP_BATCH_SIZE = 64


@dataclass
class Grid:
    """Test accuracy per (T, alpha), the mean over repeated students: rows are temperatures, columns alphas."""

    temperatures: tuple[float, ...]
    alphas: tuple[float, ...]
    accuracy: np.ndarray  # (len(temperatures), len(alphas)): the mean over runs
    dataset: str
    settings: dict  # epochs, seed, transfer_size, student spec, repeats, ...
    runs: np.ndarray | None = None  # (repeats, len(temperatures), len(alphas)): every student's accuracy

    def interval(self, row: int, column: int) -> tuple[float, float] | None:
        """The 95 % t-interval of cell (row, column)'s mean over its runs; None with fewer than 2 runs."""
        if self.runs is None or len(self.runs) < 2:
            return None
        summary = mean_interval(self.runs[:, row, column])
        return summary["ci_low"], summary["ci_high"]

    def within_noise(self) -> np.ndarray | None:
        """(rows, columns) bools: True where a cell's paired difference from the alpha=0 cell of its row
        (run r against run r) has a 95 % interval that contains 0, and for the alpha=0 column itself.

        None when that cannot be said: fewer than 2 runs, or no alpha=0 column to compare with.
        """
        if self.runs is None or len(self.runs) < 2 or 0.0 not in self.alphas:
            return None
        reference = self.alphas.index(0.0)
        return np.array([[column == reference or paired_difference(self.runs[:, row, reference],
                                                                   self.runs[:, row, column]).verdict == "inconclusive"
                          for column in range(len(self.alphas))] for row in range(len(self.temperatures))])

    def cell(self, T: float, alpha: float) -> tuple[int, int]:
        """(row, column) of the grid cell nearest to (T, alpha); T is compared on a log scale."""
        check_hyperparameters(T, alpha)
        row = int(np.argmin([abs(math.log(T) - math.log(t)) for t in self.temperatures]))
        column = int(np.argmin([abs(alpha - a) for a in self.alphas]))
        return row, column

    def to_json(self) -> dict:
        return {"temperatures": list(self.temperatures), "alphas": list(self.alphas),
                "accuracy": self.accuracy.tolist(), "dataset": self.dataset, "settings": self.settings,
                "runs": None if self.runs is None else self.runs.tolist()}

    @classmethod
    def from_json(cls, payload: dict) -> Grid:
        """The Grid `to_json` wrote; ValueError if the payload is not one."""
        try:
            grid = cls(temperatures=tuple(float(t) for t in payload["temperatures"]),
                       alphas=tuple(float(a) for a in payload["alphas"]),
                       accuracy=np.asarray(payload["accuracy"], dtype=float),
                       dataset=str(payload["dataset"]), settings=dict(payload["settings"]),
                       runs=None if payload.get("runs") is None else np.asarray(payload["runs"], dtype=float))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a kdlab grid ({type(error).__name__}: {error})") from None
        shape = (len(grid.temperatures), len(grid.alphas))
        if grid.accuracy.shape != shape or (grid.runs is not None and grid.runs.shape[1:] != shape):
            raise ValueError(f"grid accuracy has shape {grid.accuracy.shape} (runs "
                             f"{None if grid.runs is None else grid.runs.shape}), expected {shape}")
        accuracies = [grid.accuracy.ravel(), *([] if grid.runs is None else [grid.runs.ravel()])]
        if not all(np.all((values >= 0) & (values <= 1)) for values in accuracies):  # NaN fails both
            raise ValueError("grid accuracies must be numbers in [0, 1]")
        return grid


def sweep(teacher, transfer, test, spec: dict, temperatures=GRID_TEMPERATURES, alphas=GRID_ALPHAS, *,
          epochs: int = experiment.STUDENT_EPOCHS, seed: int = 0, lr: float = SWEEP_LR,
          batch_size: int = SWEEP_BATCH_SIZE, repeats: int = 1, device=None, progress: bool = True) -> Grid:
    """Distil `repeats` students per (T, alpha) on `transfer`, all in one batched pass, and score each on `test`.

    Repetition r of cell k (row-major) starts from `build_model(spec, seed=seed + r * cells + k)`;
    see `distill_students`. Ctrl-C raises TrainingInterrupted: a part of a grid is not a grid.
    """
    temperatures, alphas = _check_axes(temperatures, alphas)
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    cells = [(T, alpha) for T in temperatures for alpha in alphas] * repeats
    students = distill_students(
        spec, teacher, transfer, seeds=[seed + k for k in range(len(cells))],
        temperatures=[T for T, _ in cells], alphas=[alpha for _, alpha in cells],
        epochs=epochs, seed=seed, lr=lr, batch_size=batch_size, device=device, progress=progress)
    runs = np.array([evaluate(student, test, device=device)["accuracy"] for student in students])
    runs = runs.reshape(repeats, len(temperatures), len(alphas))
    settings = {"epochs": epochs, "seed": seed, "lr": lr, "batch_size": batch_size,
                "transfer_size": len(transfer), "student": spec, "repeats": repeats}
    return Grid(temperatures, alphas, runs.mean(axis=0), transfer.name, settings, runs=runs)


def sweep_transfer_sets(teacher, pool: TensorData, scored_on: TensorData, spec: dict, temperatures=GRID_TEMPERATURES,
                        alphas=GRID_ALPHAS, *, transfer_size: int, seeds=range(5),
                        epochs: int = experiment.STUDENT_EPOCHS, device=None, progress: bool = True) -> Grid:
    """A grid whose run s is one student per cell on seed s's own transfer set of `transfer_size` drawn from
    `pool`: its intervals cover the luck of the draw, as a paired comparison's do. How kdlab chooses T and alpha
    (scored on validation images; see `best_cell`)."""
    seeds = list(seeds)  # iterated twice below: a generator would leave "seeds" empty
    if not seeds:
        raise ValueError("sweep_transfer_sets needs at least one seed")
    grids = [sweep(teacher, pool.subset(transfer_size, seed=seed), scored_on, spec, temperatures, alphas,
                   epochs=epochs, seed=seed, device=device, progress=progress) for seed in seeds]
    runs = np.stack([grid.runs[0] for grid in grids])
    settings = {**{key: value for key, value in grids[0].settings.items() if key != "seed"},  # seed 0's, not all
                "seeds": seeds, "scored_on": len(scored_on)}
    return Grid(grids[0].temperatures, grids[0].alphas, runs.mean(axis=0), pool.name, settings, runs=runs)


def best_cell(grid: Grid) -> tuple[float, float]:
    """(T, alpha) of the cell with the highest mean accuracy: the choice, made on whatever the grid was scored on."""
    row, column = np.unravel_index(int(np.argmax(grid.accuracy)), grid.accuracy.shape)
    return grid.temperatures[row], grid.alphas[column]


def distill_students(spec: dict, teacher: nn.Module, transfer: TensorData, *, seeds, temperatures, alphas,
                     dkd_weights=None, epochs: int = experiment.STUDENT_EPOCHS, seed: int = 0, lr: float = 1e-3,
                     batch_size: int = 64, device=None, progress: bool = True) -> list[nn.Module]:
    """Train len(seeds) students of one architecture at once; student k starts from
    `build_model(spec, seeds[k])` and is distilled at temperatures[k], alphas[k]: with kd_loss, or, where
    `dkd_weights[k]` is a pair (tckd_weight, nckd_weight) rather than None, with decoupled_kd_loss.

    Equivalent, within float rounding, to `distill(build_model(spec, seeds[k]), teacher, transfer,
    T=temperatures[k], alpha=alphas[k], seed=seed, ...)` for every k (with method="dkd" and the weights for
    a DKD student): the same batches, the same loss and the same Adam. The students' parameters are stacked
    along a new first dimension (torch.func.stack_module_state) and one batched pass computes every student's
    gradient: for MLPs written out (`stacked_mlp_activations`, `stacked_mlp_gradients`), for other families vmap
    over functional_call and autograd; the loss's gradient with respect to the logits in closed form
    (`batched_kd_gradient`, `batched_dkd_gradient`). Each student's slice of the gradient is its own gradient, and
    Adam, elementwise, updates each slice as it would update that student alone. (Adam divides by the gradient's
    size, so once a DKD student's gradient is tiny the rounding of its two computations can steer the two runs
    apart: after about 50 epochs on the digits their weights differ by more than rounding; each is still the same
    training, rounded differently.)
    Returns the trained students in eval mode. Ctrl-C stops at once and raises TrainingInterrupted
    (partial=None: students stopped mid-way are no grid).
    """
    seeds, temperatures, alphas = list(seeds), list(temperatures), list(alphas)
    dkd_weights = [None] * len(seeds) if dkd_weights is None else list(dkd_weights)
    if not len(seeds) == len(temperatures) == len(alphas) == len(dkd_weights) > 0:
        raise ValueError(f"seeds, temperatures, alphas (and dkd_weights, if given) need one entry per student, got "
                         f"{len(seeds)}, {len(temperatures)}, {len(alphas)} and {len(dkd_weights)}")
    for weights in dkd_weights:
        if weights is not None:
            if not isinstance(weights, (tuple, list)) or len(weights) != 2:
                raise ValueError(f"each dkd_weights entry is None (kd_loss) or a pair (tckd_weight, nckd_weight), "
                                 f"got {weights!r}")
            check_method("dkd", *weights)
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be at least 1 (got epochs={epochs}, batch_size={batch_size})")
    if spec.get("dropout"):
        raise ValueError("distill_students trains students without dropout (the students kdlab builds have none): "
                         "dropout masks could not match one-at-a-time training; use a spec with dropout=0")
    for T, alpha in zip(temperatures, alphas):
        check_hyperparameters(T, alpha)
    device = pick_device(device)
    students = [build_model(spec, seed=student_seed).to(device).train() for student_seed in seeds]
    parameters, buffers = stack_module_state(students)
    teacher.to(device)
    teacher_logits = predict_logits(teacher, transfer.inputs, device=device)
    loader = make_loader(transfer, batch_size, shuffle=True, device=device, seed=seed, extras=(teacher_logits,))
    optimizer = torch.optim.Adam(parameters.values(), lr=lr, fused=True)
    T = torch.tensor(temperatures, dtype=torch.float32, device=device)
    alpha = torch.tensor(alphas, dtype=torch.float32, device=device)
    decoupled = [k for k, weights in enumerate(dkd_weights) if weights is not None]
    if decoupled:  # the DKD students' gradient, computed for them alone
        decoupled_index = torch.tensor(decoupled, device=device)
        tckd_weight, nckd_weight = (torch.tensor([float(dkd_weights[k][part]) for k in decoupled], device=device)
                                    for part in (0, 1))

    def logit_gradients(student_logits, teacher_batch, labels):
        gradients = batched_kd_gradient(student_logits, teacher_batch, labels, T, alpha)
        if decoupled:
            gradients[decoupled_index] = batched_dkd_gradient(
                student_logits[decoupled_index], teacher_batch, labels, T[decoupled_index], alpha[decoupled_index],
                tckd_weight, nckd_weight)
        return gradients

    if spec["family"] == "mlp":
        linear_names = [name for name, layer in students[0].named_children() if isinstance(layer, nn.Linear)]

        def set_gradients(inputs, labels, teacher_batch):
            with torch.no_grad(), autocast(device):
                activations = stacked_mlp_activations(parameters, linear_names, inputs)
                gradients = stacked_mlp_gradients(parameters, linear_names, activations,
                                                  logit_gradients(activations[-1].float(), teacher_batch, labels))
            for name, gradient in gradients.items():
                parameters[name].grad = gradient.to(parameters[name].dtype)
    else:
        skeleton = copy.deepcopy(students[0]).to("meta")  # the architecture, without weights

        def logits_of_one(parameters, buffers, inputs):
            return functional_call(skeleton, (parameters, buffers), (inputs,))

        all_logits = vmap(logits_of_one, in_dims=(0, 0, None))

        def set_gradients(inputs, labels, teacher_batch):
            with autocast(device):
                logits = all_logits(parameters, buffers, inputs)  # (K, B, C)
            gradients = logit_gradients(logits.detach().float().transpose(1, 2), teacher_batch, labels)
            optimizer.zero_grad(set_to_none=True)
            logits.backward(gradients.transpose(1, 2).to(logits.dtype))
    try:
        with TrainingLoop(epochs, "epochs", f"{len(students)} students", progress=progress, device=device) as loop:
            for _ in loop:
                for inputs, labels, teacher_batch in loader:
                    set_gradients(inputs, labels, teacher_batch)
                    optimizer.step()
    except TrainingInterrupted as stop:
        raise TrainingInterrupted(f"the sweep of {len(students)} students: {stop.message}; nothing was saved") from None
    stacked = {**parameters, **buffers}
    with torch.no_grad():
        for k, student in enumerate(students):
            for name, tensor in (*student.named_parameters(), *student.named_buffers()):
                tensor.copy_(stacked[name][k])
    return [student.eval() for student in students]


def stacked_mlp_activations(parameters: dict, linear_names: list[str], inputs: torch.Tensor) -> list[torch.Tensor]:
    """The input and every layer's output (after its ReLU) of K stacked MLP students, each (K, features, B): the
    last is the logits, class-major (K, C, B). `parameters` holds stack_module_state's (K, out, in) weights.

    Activations are kept transposed so that each layer is one baddbmm(bias, W, h) on the weights as they are
    stacked, and every product forward and backward has the batch as its long side: vmap over functional_call
    instead copied transposed weights and gradients at every step, and multiplied (B, 100) by (100, 10)
    matrices, a shape MKL runs at a quarter of the speed of (10, 100) by (100, B).
    """
    flat = inputs.flatten(1).t()
    activations = [flat.expand(len(parameters[f"{linear_names[0]}.weight"]), *flat.shape)]  # one batch for all
    for position, name in enumerate(linear_names):
        output = torch.baddbmm(parameters[f"{name}.bias"].unsqueeze(-1), parameters[f"{name}.weight"],
                               activations[-1])
        activations.append(output if position == len(linear_names) - 1 else output.relu_())
    return activations


def stacked_mlp_gradients(parameters: dict, linear_names: list[str], activations: list[torch.Tensor],
                          logit_gradients: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every stacked parameter's gradient, in its own layout, from `stacked_mlp_activations` and the loss's
    (K, C, B) gradient with respect to the logits: backpropagation written out, which with the same products
    takes about a third less time per step than autograd did."""
    gradients = {}
    upstream = logit_gradients
    for position in reversed(range(len(linear_names))):
        name, below = linear_names[position], activations[position]
        gradients[f"{name}.weight"] = torch.bmm(upstream, below.transpose(1, 2))
        gradients[f"{name}.bias"] = upstream.sum(dim=-1)
        if position:  # the inputs need no gradient
            # ReLU's backward as autograd runs it: masked_fill_ and torch.where take about 25x longer on the CPU
            upstream = torch.ops.aten.threshold_backward(
                torch.bmm(parameters[f"{name}.weight"].transpose(1, 2), upstream), below, 0)
    return gradients


def batched_kd_gradient(student_logits, teacher_logits, labels, T, alpha):
    """The gradient of kdlab.losses.kd_loss with respect to the logits, for K students at once: (K, C, B) from
    class-major (K, C, B) student logits, (B, C) teacher logits, (B,) labels and per-student T, alpha of shape (K,).

    alpha * T^2 * KL (batchmean) contributes alpha * T * (q - p) / B, with q and p the student's and the teacher's
    softmax at T (kdlab.losses.soft_term_gradient), and (1 - alpha) * CE contributes (1 - alpha) * (s - y) / B, with
    s the student's softmax and y the one-hot labels. Softmaxes run over dim 1: on the CPU torch's softmax over a
    last dimension of 10 classes is about 20x slower than over the same numbers laid out class-major.
    """
    T, alpha = T[:, None, None], alpha[:, None, None]
    soft = torch.softmax(student_logits / T, dim=1) - torch.softmax(teacher_logits.t() / T, dim=1)
    hard = torch.softmax(student_logits, dim=1) - F.one_hot(labels, student_logits.shape[1]).t()
    return (alpha * T * soft + (1 - alpha) * hard) / student_logits.shape[-1]


def batched_dkd_gradient(student_logits, teacher_logits, labels, T, alpha, tckd_weight, nckd_weight):
    """The gradient of kdlab.losses.decoupled_kd_loss with respect to the logits, for K students at once: shapes as
    batched_kd_gradient's, with per-student tckd_weight and nckd_weight of shape (K,).

    With s = z/T, p the student's softmax at T, g the target, p^t the teacher's, and q, q^t the two softmaxes over
    the non-target classes alone: TCKD's gradient with respect to s is (p_g - p^t_g) at g and -(p_g - p^t_g) q_j
    elsewhere (TCKD depends on s only through the log-odds s_g - logsumexp of the others); NCKD's is q_j - q^t_j
    off the target and 0 on it. The soft term alpha * T^2 * mean(w_t TCKD + w_n NCKD) then contributes
    alpha * T * (w_t dTCKD/ds + w_n dNCKD/ds) / B, and the hard term (1 - alpha) * (s - y) / B as in KD. With
    w_t = 1 and w_n = 1 - p^t_g this is KD's (q - p), which the tests check.
    """
    T, alpha = T[:, None, None], alpha[:, None, None]
    tckd_weight, nckd_weight = tckd_weight[:, None, None], nckd_weight[:, None, None]
    is_target = F.one_hot(labels, student_logits.shape[1]).t().bool()  # (C, B), class-major
    scaled_student, scaled_teacher = student_logits / T, teacher_logits.t() / T
    gap = torch.softmax(scaled_student, dim=1) - torch.softmax(scaled_teacher, dim=1)
    target_gap = gap.masked_fill(~is_target, 0).sum(dim=1, keepdim=True)  # p_g - p^t_g, (K, 1, B)
    non_target = torch.softmax(scaled_student.masked_fill(is_target, -math.inf), dim=1)  # q, 0 on the target
    non_target_teacher = torch.softmax(scaled_teacher.masked_fill(is_target, -math.inf), dim=1)
    tckd = torch.where(is_target, target_gap, -target_gap * non_target)
    nckd = non_target - non_target_teacher
    hard = torch.softmax(student_logits, dim=1) - F.one_hot(labels, student_logits.shape[1]).t()
    return (alpha * T * (tckd_weight * tckd + nckd_weight * nckd) + (1 - alpha) * hard) / student_logits.shape[-1]


def _check_axes(temperatures, alphas) -> tuple[tuple[float, ...], tuple[float, ...]]:
    temperatures, alphas = tuple(temperatures), tuple(alphas)
    if not temperatures or not alphas:
        raise ValueError("a grid needs at least one temperature and one alpha")
    for T in temperatures:
        for alpha in alphas:
            check_hyperparameters(T, alpha)
    return tuple(float(T) for T in temperatures), tuple(float(a) for a in alphas)


def load_or_run_grid(root="data", *, dataset: str = "digits", temperatures=GRID_TEMPERATURES, alphas=GRID_ALPHAS,
                     epochs: int = experiment.STUDENT_EPOCHS, seed: int = 0, transfer_sets: int = GRID_TRANSFER_SETS,
                     device=None, progress: bool = True, offline: bool = False) -> Grid:
    """The default experiment's grid, one student per cell on each of `transfer_sets` transfer sets (seeds
    `seed`, `seed + 1`, ...) scored on the validation images, from `<root>/grid-<dataset>-seed<seed>.json`,
    or swept and saved first.

    Loads the dataset and the teacher, then `grid_from_cache_or_sweep`. A missing or corrupt file,
    or one made with other settings, is recomputed with a message saying why.
    """
    temperatures, alphas = _check_axes(temperatures, alphas)
    (pool, validation, _), teacher, teacher_metadata = experiment.load_data_and_teacher(
        dataset, root, offline=offline, device=device, progress=progress)
    return grid_from_cache_or_sweep(root, pool, validation, teacher, teacher_metadata, temperatures=temperatures,
                                    alphas=alphas, epochs=epochs, seeds=range(seed, seed + transfer_sets),
                                    device=device, progress=progress)


def grid_from_cache_or_sweep(root, pool: TensorData, scored_on: TensorData, teacher: nn.Module, teacher_metadata: dict,
                             *, temperatures=GRID_TEMPERATURES, alphas=GRID_ALPHAS,
                             epochs: int = experiment.STUDENT_EPOCHS, transfer_size: int = experiment.TRANSFER_SIZE,
                             seeds=range(GRID_TRANSFER_SETS), device=None, progress: bool = True) -> Grid:
    """`load_or_run_grid` for a caller that already holds the pool, what to score on and the teacher (with the
    metadata its checkpoint was saved with): `sweep_transfer_sets` of STUDENT_SIZE students, one per cell on
    each seed's own transfer set of `transfer_size` drawn from `pool`, from `<root>/grid-<dataset>-seed<first
    seed>.json` if it matches these settings, else swept and saved first. Its intervals and `within_noise`
    cover the luck of the transfer set, as notebook 06's do.
    An interrupted sweep raises TrainingInterrupted and saves nothing."""
    temperatures, alphas = _check_axes(temperatures, alphas)
    seeds = [int(seed) for seed in seeds]
    if not seeds:
        raise ValueError("the grid needs at least one transfer set (seed)")
    spec = student_spec(pool.input_shape, experiment.STUDENT_SIZE, pool.num_classes)
    expected = {"seeds": seeds, "epochs": epochs, "lr": SWEEP_LR, "batch_size": SWEEP_BATCH_SIZE,
                "transfer_size": transfer_size, "student": spec,
                "teacher_accuracy": teacher_metadata["accuracy"],  # a retrained teacher makes the grid stale
                "scored_on": len(scored_on)}

    def read(path):
        try:
            grid = Grid.from_json(json.loads(path.read_text()))
        except (ValueError, RecursionError) as error:  # json.JSONDecodeError is a ValueError; deep nesting recurses
            raise ValueError(f"{path} is corrupt ({error})") from None
        if (grid.temperatures, grid.alphas) != (temperatures, alphas):
            raise ValueError(f"{path} holds T={grid.temperatures}, alpha={grid.alphas}")
        for key, value in expected.items():
            if grid.settings.get(key) != value:
                raise ValueError(f"{path} was made with {key}={grid.settings.get(key)!r}, expected {value!r}")
        if grid.runs is None or len(grid.runs) != len(seeds):
            raise ValueError(f"{path} holds {0 if grid.runs is None else len(grid.runs)} runs, expected {len(seeds)}")
        return grid

    path = cache_path(root, "grid", pool.name, seed=seeds[0], suffix=".json")

    def compute():
        print(f"Sweeping the {len(temperatures)}x{len(alphas)} grid (one student per cell on each of {len(seeds)} "
              f"transfer sets) into {path}.")
        grid = sweep_transfer_sets(teacher, pool, scored_on, spec, temperatures, alphas, transfer_size=transfer_size,
                                   seeds=seeds, epochs=epochs, device=device, progress=progress)
        grid.settings["teacher_accuracy"] = teacher_metadata["accuracy"]
        return grid

    def write(path, grid):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(path, json.dumps(grid.to_json(), indent=1))

    return load_or_compute(path, read, compute, write, what="grid")
