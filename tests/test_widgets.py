"""The explorer without a browser: pure panel functions, panel objects, and the page's widget driven from Python,
read back through what it sends to the browser (the data, once; the settings, notices and Train now's reports).
What the page computes from that data is tested against these functions in tests/test_explorer_javascript.py."""

import base64
import dataclasses
import json
import math
import time
import urllib.parse

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from traitlets import TraitError

from kdlab import checkpoints, explorer_data, panels, widgets
from kdlab.experiment import TEMPERATURE, VALIDATION_SEED
from kdlab.explorer_data import ExplorerData, load_or_train_baseline, train_with_curve
from kdlab.interrupt import TrainingInterrupted
from kdlab.losses import kd_loss
from kdlab.models import build_model, mlp_spec
from kdlab.panels import (
    ALPHA_RANGE,
    T_RANGE,
    GridPanel,
    all_panels,
    example_picture,
    gradient_limit,
    gradient_panel,
    grid_panel,
    loss_panel,
    soft_target_panel,
)
from kdlab.sweep import Grid
from kdlab.train import evaluate
from kdlab.widgets import T_STOPS, Explorer, page_payload, parse_view

EPOCHS = 3
TEACHER_LOGITS = torch.tensor([6.0, 1.0, -2.0, 0.5, 3.0])
STUDENT_LOGITS = torch.tensor([2.0, 2.5, -1.0, 0.0, 1.0])
LABEL = 0


@pytest.fixture(scope="module")
def small_digits(digits):
    """(transfer, validation, test): 40 pool images, 35 held-out ones and 30 test ones, as split_dataset splits."""
    train, test = digits
    pool, validation = train.split(300, seed=VALIDATION_SEED)
    return pool.subset(40), validation.subset(35), test.subset(30)


@pytest.fixture(scope="module")
def grid():
    temperatures, alphas = (1.0, 2.0, 4.0, 8.0, 16.0), (0.0, 0.5, 1.0)
    noise = np.array([[0.0, 0.01, -0.01], [0.01, -0.01, 0.0], [-0.01, 0.0, 0.01]])[:, None, :]  # (runs, 1, alphas)
    runs = np.arange(15, dtype=float).reshape(1, 5, 3) / 100 + 0.8 + noise
    runs[:, 4, 2] += np.array([0.05, 0.06, 0.07])  # one cell clearly above its alpha=0 cell
    return Grid(temperatures, alphas, runs.mean(axis=0), "digits", {}, runs=runs)


@pytest.fixture(scope="module")
def data(small_digits, grid):
    """A small, untrained teacher and a 3-epoch baseline: enough to exercise every panel and button."""
    transfer, validation, test = small_digits
    teacher = build_model(mlp_spec(transfer.input_shape, hidden=(32,)), seed=1)
    spec = mlp_spec(transfer.input_shape, hidden=(16,))
    student, curve = train_with_curve(spec, transfer, validation, epochs=EPOCHS, device="cpu")
    return ExplorerData(test=test, validation=validation, teacher_logits=teacher(test.inputs).detach() * 5,
                        student_logits=student(test.inputs).detach(), grid=grid, teacher=teacher,
                        transfer=transfer, student_spec=spec, baseline_curve=curve, epochs=EPOCHS,
                        device=torch.device("cpu"), teacher_accuracy=evaluate(teacher, validation)["accuracy"])


@pytest.fixture
def explorer(data):
    return Explorer(data)


# ----------------------------------------------------------------------------- pure panel functions

def test_soft_targets_are_distributions_that_flatten_as_T_rises():
    cold = soft_target_panel(TEACHER_LOGITS, STUDENT_LOGITS, 1.0)
    hot = soft_target_panel(TEACHER_LOGITS, STUDENT_LOGITS, 20.0)
    for panel in (cold, hot):
        for probabilities in panel.values():
            assert probabilities.shape == (5,) and probabilities.sum() == pytest.approx(1.0)
    assert hot["teacher"].max() < cold["teacher"].max()
    assert hot["teacher"].max() - hot["teacher"].min() < 0.1  # nearly uniform at T = 20


@pytest.mark.parametrize("T, alpha", [(1.0, 0.5), (4.0, 0.9), (20.0, 0.0), (0.5, 1.0)])
def test_loss_panel_splits_the_loss_into_its_two_weighted_terms(T, alpha):
    parts = loss_panel(TEACHER_LOGITS, STUDENT_LOGITS, LABEL, T, alpha)
    teacher = np.exp(TEACHER_LOGITS.numpy() / T) / np.exp(TEACHER_LOGITS.numpy() / T).sum()
    student = np.exp(STUDENT_LOGITS.numpy() / T) / np.exp(STUDENT_LOGITS.numpy() / T).sum()
    kl = float(np.sum(teacher * np.log(teacher / student)))
    ce = float(-np.log(np.exp(STUDENT_LOGITS.numpy())[LABEL] / np.exp(STUDENT_LOGITS.numpy()).sum()))
    assert parts["kl"] == pytest.approx(kl, rel=1e-5)
    assert parts["ce"] == pytest.approx(ce, rel=1e-5)
    assert parts["soft"] == pytest.approx(alpha * T**2 * kl, rel=1e-5, abs=1e-9)
    assert parts["hard"] == pytest.approx((1 - alpha) * ce, rel=1e-5, abs=1e-9)
    assert parts["total"] == pytest.approx(parts["soft"] + parts["hard"], rel=1e-6)


@pytest.mark.parametrize("T, alpha", [(1.0, 0.5), (4.0, 0.9), (20.0, 0.3)])
def test_gradient_panel_matches_autograd_of_each_term(T, alpha):
    gradients = gradient_panel(TEACHER_LOGITS, STUDENT_LOGITS, LABEL, T, alpha)
    student = STUDENT_LOGITS.clone().requires_grad_()
    parts = kd_loss(student[None], TEACHER_LOGITS[None], torch.tensor([LABEL]), T=T, alpha=alpha, return_parts=True)
    (soft,) = torch.autograd.grad(parts.soft, student)
    one_hot = F.one_hot(torch.tensor(LABEL), 5).numpy()
    np.testing.assert_allclose(gradients["soft"], soft.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gradients["soft_without_T2"] * T**2, gradients["soft"], rtol=1e-6)
    np.testing.assert_allclose(gradients["hard"], (1 - alpha) * (torch.softmax(STUDENT_LOGITS, 0).numpy() - one_hot),
                               rtol=1e-5, atol=1e-7)


def test_without_T2_the_soft_gradient_falls_as_one_over_T_squared():
    def largest(T):
        gradients = gradient_panel(TEACHER_LOGITS, STUDENT_LOGITS, LABEL, T, alpha=1.0)
        return np.abs(gradients["soft_without_T2"]).max(), np.abs(gradients["soft"]).max()
    (without_40, with_40), (without_80, with_80) = largest(40.0), largest(80.0)
    assert without_40 / without_80 == pytest.approx(4.0, rel=0.03)
    assert with_40 / with_80 == pytest.approx(1.0, rel=0.03)


def _gradient_limit_by_autograd(teacher_logits, student_logits, label):
    """gradient_limit as it was first written: 50 gradient_panel calls, the reference for the closed form."""
    largest = max(np.abs(values).max() for T in panels.LIMIT_TEMPERATURES for alpha in (0.0, 1.0)
                  for values in gradient_panel(teacher_logits, student_logits, label, T, alpha).values())
    return float(largest) * 1.1


@pytest.mark.parametrize("seed", range(4))
def test_gradient_limit_in_closed_form_equals_the_autograd_maximum(seed):
    generator = torch.Generator().manual_seed(seed)
    teacher, student = torch.randn(2, 10, generator=generator) * (1 + 4 * seed)
    label = seed % 10
    assert gradient_limit(teacher, student, label) == pytest.approx(
        _gradient_limit_by_autograd(teacher, student, label), rel=1e-6)
    assert gradient_limit(TEACHER_LOGITS, STUDENT_LOGITS, LABEL) == pytest.approx(
        _gradient_limit_by_autograd(TEACHER_LOGITS, STUDENT_LOGITS, LABEL), rel=1e-6)


def test_gradient_limit_bounds_every_bar_over_the_sliders_ranges():
    limit = gradient_limit(TEACHER_LOGITS, STUDENT_LOGITS, LABEL)
    assert math.isfinite(limit)
    largest = max(np.abs(values).max()
                  for T in np.geomspace(*T_RANGE, 40) for alpha in np.linspace(*ALPHA_RANGE, 5)
                  for values in gradient_panel(TEACHER_LOGITS, STUDENT_LOGITS, LABEL, T, alpha).values())
    assert largest <= limit < 1.5 * largest


@pytest.mark.parametrize("T, alpha, cell", [(3.0, 0.3, (2, 1)), (0.5, 0.0, (0, 0)), (50.0, 0.9, (4, 2)),
                                            (1.4, 0.74, (0, 1)), (1.5, 0.76, (1, 2))])
def test_grid_panel_highlights_the_nearest_trained_cell_on_a_log_T_scale(grid, T, alpha, cell):
    panel = grid_panel(grid, T, alpha)
    assert (panel["row"], panel["column"]) == cell
    assert (panel["T"], panel["alpha"]) == (grid.temperatures[cell[0]], grid.alphas[cell[1]])
    assert panel["cell_accuracy"] == grid.accuracy[cell]
    low, high = panel["interval"]
    assert low < panel["cell_accuracy"] < high


def test_losses_are_never_negative_even_where_rounding_makes_the_kl_minus_zero():
    logits = torch.tensor([0.3, -1.2, 2.0, 0.7])  # student == teacher: KL 0, which float rounding can make < 0
    for T in (0.5, 1.0, 3.3, 50.0):
        parts = loss_panel(logits, logits.clone(), 2, T, 1.0)
        assert min(parts.values()) >= 0.0


def test_all_panels_refuses_a_bad_temperature_with_a_clear_message(data):
    with pytest.raises(ValueError, match="T must be"):
        all_panels(data, -1.0, 0.5, 0)


# ----------------------------------------------------------------------------- panel objects

def test_the_grid_panel_puts_T_1_on_top_and_hatches_cells_within_noise(grid):
    spec = GridPanel(grid).spec()
    assert spec["rows"] == ["1", "2", "4", "8", "16"]  # top to bottom, as notebook 06's heatmap
    assert spec["text"][4][2] == f"{grid.accuracy[4, 2]:.3f}"
    marks = np.array(spec["marks"])
    assert not marks[4, 2] and marks[:, 0].all() and marks[0, 1]  # only the cell well above alpha=0 is signal


# ----------------------------------------------------------------------------- the widget layer

def test_the_page_is_sent_once_what_every_move_is_computed_from(explorer, data):
    payload, count = explorer.view.payload, len(data.test)
    examples = payload["examples"]
    np.testing.assert_array_equal(examples["teacher_logits"], data.teacher_logits.numpy())  # float32, exactly
    np.testing.assert_array_equal(examples["student_logits"], data.student_logits.numpy())
    assert examples["labels"] == data.test.labels.tolist()
    for example in (0, 7, count - 1):
        label = int(data.test.labels[example])
        assert examples["gradient_limits"][example] == pytest.approx(
            gradient_limit(data.teacher_logits[example], data.student_logits[example], label), rel=1e-12)
    pictures = np.frombuffer(base64.b64decode(examples["pictures"]["base64"]), np.uint8)
    pictures = pictures.reshape(count, *examples["pictures"]["shape"]) / 255
    np.testing.assert_allclose(pictures[3], example_picture(data.test.inputs[3]), atol=0.5 / 255)
    assert payload["grid"]["intervals"][4][2] == pytest.approx(data.grid.interval(4, 2))
    assert payload["specs"]["grid"] == GridPanel(data.grid).spec()
    assert payload["controls"]["example"]["high"] == count - 1 and payload["controls"]["T"]["stops"] == T_STOPS
    assert "Distils a 1x16 student on 40 labelled examples" in payload["train"]["description"]


def test_the_page_payload_can_show_the_first_few_test_images_only(data):
    payload = page_payload(data, 5)
    assert len(payload["examples"]["labels"]) == len(payload["examples"]["gradient_limits"]) == 5
    assert payload["controls"]["example"]["stops"] == [0, 1, 2, 3, 4]


def test_the_T_keyboard_stops_are_20_even_log_steps_through_the_grid_rows():
    assert (T_STOPS[0], T_STOPS[-1], len(T_STOPS)) == (T_RANGE[0], T_RANGE[1], 21)
    ratios = np.array(T_STOPS[1:]) / np.array(T_STOPS[:-1])
    assert ratios.min() > 1.2 and ratios.max() < 1.32  # about 2**(1/3) each: steps you can see
    assert {1.0, 2.0, 4.0, 8.0, 16.0} <= set(T_STOPS)


@pytest.mark.parametrize("control, value, shown, message", [
    ("T", -3.0, T_RANGE[0], "T = -3 is outside 0.5 to 50: clamped to 0.5"),
    ("T", 1e6, T_RANGE[1], "clamped to 50"),
    ("alpha", 1.7, 1.0, "α = 1.7 is outside 0 to 1: clamped to 1"),
    ("alpha", -0.2, 0.0, "clamped to 0"),
    ("example", 999.5, 29, "test image = 999.5 is outside 0 to 29: clamped to 29"),
])
def test_out_of_range_values_set_in_python_are_clamped_with_a_notice(explorer, control, value, shown, message):
    view = explorer.view
    setattr(view, control, value)
    assert getattr(view, control) == pytest.approx(shown)
    assert message in view.notice["text"] and view.notice["control"] == control
    other = "example" if control != "example" else "alpha"
    setattr(view, other, 2 if other == "example" else 0.4)  # another control's move keeps the notice
    assert message in view.notice["text"]
    setattr(view, control, T_STOPS[3] if control == "T" else 0.5 if control == "alpha" else 3)  # its own clears it
    assert view.notice == {}


@pytest.mark.parametrize("control, value", [("alpha", 0.0), ("alpha", 1.0), ("T", 0.5), ("T", 50.0)])
def test_the_valid_ends_of_a_range_raise_no_notice(explorer, control, value):
    setattr(explorer.view, control, value)
    assert explorer.view.notice == {}


def test_nan_is_refused_and_the_last_good_value_kept(explorer):
    explorer.view.alpha = 0.3
    explorer.view.alpha = float("nan")
    assert explorer.view.alpha == 0.3
    assert explorer.view.notice["text"] == "α must be a number; kept 0.3."
    explorer.view.alpha = 0.6  # and the explorer carries on
    assert explorer.view.notice == {}


def test_text_is_refused_and_the_explorer_carries_on(explorer):
    before = explorer.view.T
    with pytest.raises(TraitError):
        explorer.view.T = "hot"
    assert explorer.view.T == before
    explorer.view.T = 2.0
    assert explorer.view.T == 2.0


def test_a_link_opens_the_explorer_with_its_settings_and_hidden_panels(data):
    explorer = Explorer.from_query(data, "T=8&alpha=0.5&example=12&hide=grid,train")
    view = explorer.view
    assert (view.T, view.alpha, view.example) == (8.0, 0.5, 12)
    assert view.hide == ["grid", "train"] and view.notes == [] and view.notice == {}


def test_bad_values_in_a_link_are_clamped_or_ignored_and_the_page_says_so(data):
    explorer = Explorer.from_query(data, "T=hot&alpha=3&example=-2&hide=grid,nothing&colour=red")
    view = explorer.view
    assert (view.T, view.alpha, view.example) == (TEMPERATURE, 1.0, 0)
    assert view.notes == ["T='hot' in the link is not a number (write it as 8, 0.5 or 1e-3): ignored",
                          "alpha=3 in the link is outside 0 to 1: 1 is shown",
                          "example=-2 in the link is outside 0 to 29: 0 is shown",
                          "hide='nothing' in the link names no panel (known: picture, soft, loss, gradients, grid, "
                          "train): ignored", "'colour' in the link: not a setting of the explorer, ignored"]
    assert view.hide == ["grid"]


SCRIPT = "<img src=x onerror=alert(1)>"


@pytest.mark.parametrize("query", [f"example={SCRIPT}", f"T={SCRIPT}", f"hide={SCRIPT}",
                                   urllib.parse.urlencode({SCRIPT: 1}), f"alpha=3&example=1{SCRIPT}"])
def test_text_from_a_link_reaches_the_page_as_plain_text(data, query):
    """Notes are text: the page writes them with textContent (tests/test_explorer_browser.py checks it there)."""
    notes = Explorer.from_query(data, query).view.notes
    assert any(SCRIPT in note for note in notes) and not any("&lt;" in note for note in notes)


def test_a_long_link_is_echoed_shortened_and_in_a_few_lines(data):
    long_key, long_value = "k" * 60_000, "9" * 60_000
    many_keys = "&".join(f"key{index}=1" for index in range(1000))
    notes = "\n".join(Explorer.from_query(data, f"{long_key}=1&T={long_value}&hide={long_key}&{many_keys}").view.notes)
    assert len(notes) < 3000
    assert "k" * 39 + "…" in notes and "k" * 41 not in notes
    assert "'key0', 'key1'" in notes and "and 996 more" in notes


@pytest.mark.parametrize("query, shown, note", [
    ("example=3.5", 4, "example=3.5 in the link is not a whole number: 4 is shown"),
    ("example=2.5", 3, "example=2.5 in the link is not a whole number: 3 is shown"),
    ("example=3.2", 3, "example=3.2 in the link is not a whole number: 3 is shown"),
    ("example=999.5", 29, "example=999.5 in the link is outside 0 to 29: 29 is shown"),
])
def test_a_fractional_example_in_a_link_is_said_to_be_rounded_half_up(data, query, shown, note):
    explorer = Explorer.from_query(data, query)
    assert explorer.view.example == shown
    assert note in explorer.view.notes


@pytest.mark.parametrize("text", ["1_0", "１０", "0x10", "nan", "NaN", "inf", "Infinity", "1e309", "--1", "1e", "",
                                  "٣"])
def test_a_link_takes_plain_decimal_numbers_only(text):
    settings, notes = parse_view(f"alpha={urllib.parse.quote(text)}", examples=30)
    assert "alpha" not in settings and notes and "in the link" in notes[0] and "ignored" in notes[0]


@pytest.mark.parametrize("text, value", [("0.5", 0.5), (".5", 0.5), ("5.", 5.0), ("+1e1", 10.0), (" 1 ", 1.0),
                                         ("1E0", 1.0), ("0.1e+2", 10.0), ("007", 7.0)])
def test_a_link_takes_every_plain_decimal_number(text, value):
    settings, notes = parse_view(f"T={urllib.parse.quote(text)}", examples=30)
    assert settings["T"] == value and notes == []


def test_a_fractional_example_set_in_python_is_rounded_half_up_as_the_page_rounds_it(explorer):
    for value, whole in ((3.7, 4), (2.5, 3), (3.5, 4), (3.2, 3)):
        explorer.view.example = value
        assert explorer.view.example == whole


def test_without_a_kernel_the_page_shows_a_picture_and_says_what_to_do(explorer):
    bundle, metadata = explorer._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == explorer.view.model_id
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")
    assert "Run this notebook" in bundle["text/plain"]
    # the picture says what it shows, at the page's settings, wherever a reader looks for alt text
    alt = metadata["image/png"]["alt"]
    assert alt == bundle["text/plain"] and f"T = {explorer.view.T:g}, alpha = {explorer.view.alpha:g}" in alt
    assert 'alt="The distillation explorer at T' in bundle["text/html"]


def test_under_voila_the_live_page_goes_without_the_picture(explorer, monkeypatch):
    monkeypatch.setenv("SERVER_SOFTWARE", "voila/0.5.13")  # what Voila sets in its kernels' environment
    bundle, _ = explorer._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == explorer.view.model_id
    assert "image/png" not in bundle and "text/html" not in bundle


def test_the_picture_before_a_run_shows_its_text_at_11_px_in_a_notebook_cell(explorer):
    bundle, metadata = explorer._repr_mimebundle_()
    png = base64.b64decode(bundle["image/png"])
    width = int.from_bytes(png[16:20], "big")  # the IHDR chunk: JupyterLab shows it unscaled up to 1000 px
    assert width <= 1000 and metadata["image/png"]["smallest_font_px"] >= 11


def test_train_now_distills_a_student_and_reports_each_epoch_to_the_page(explorer, data):
    explorer.view.T, explorer.view.alpha = 2.0, 0.5
    reports = []
    explorer.view.observe(lambda change: reports.append(change["new"]), names="training")
    explorer._on_message(explorer.view, {"train": True}, [])  # what the page's button sends
    assert [report["done"] for report in reports] == list(range(EPOCHS + 1)) + [EPOCHS]
    assert all(report["running"] for report in reports[:-1]) and not reports[-1]["running"]
    result, shown = explorer.last_training, explorer.view.training
    assert (result["T"], result["alpha"], len(result["curve"])) == (2.0, 0.5, EPOCHS)
    np.testing.assert_allclose(shown["curve"], result["curve"], atol=1e-4)
    assert shown["label"] == "distilled, T = 2, α = 0.50" and shown["warning"] == ""
    assert shown["text"].startswith("Distilled at T = 2, α = 0.50") and "validation accuracy" in shown["text"]
    _, curve = train_with_curve(data.student_spec, data.transfer, data.validation, teacher=data.teacher, T=2.0,
                                alpha=0.5, epochs=EPOCHS, device="cpu")
    assert curve == result["curve"]  # the same seed gives the same student, scored on the validation images
    assert all(round(accuracy * 35, 4) == round(accuracy * 35) for accuracy in curve)  # out of 35, not the 30 test
    lines = panels.explorer_panels(data)["curves"].data(shown["curve"], shown["label"])["lines"]
    assert lines[2]["label"] == f"teacher {data.teacher_accuracy:.3f}"  # the teacher's validation accuracy


def test_an_error_in_train_now_is_shown_on_the_page_shortened(explorer, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError(SCRIPT + "x" * 5000)
    monkeypatch.setattr(widgets, "train_with_curve", broken)
    explorer.train()
    assert explorer.view.error.startswith("Could not update: " + SCRIPT) and len(explorer.view.error) < 300
    assert not explorer.view.training["running"]  # the button comes back


def test_the_baseline_is_trained_once_then_loaded(small_digits, tmp_path):
    transfer, validation, test = small_digits
    spec = mlp_spec(transfer.input_shape, hidden=(8,))
    trained, curve = load_or_train_baseline(spec, transfer, validation, root=tmp_path, epochs=EPOCHS, device="cpu")
    assert len(curve) == EPOCHS and len(list(tmp_path.glob("explorer-baseline-*.pt"))) == 1
    assert curve == train_with_curve(spec, transfer, validation, epochs=EPOCHS, device="cpu")[1]
    loaded, loaded_curve = load_or_train_baseline(spec, transfer, validation, root=tmp_path, epochs=EPOCHS,
                                                  device="cpu")
    assert loaded_curve == curve
    for a, b in zip(trained.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    _, longer = load_or_train_baseline(spec, transfer, validation, root=tmp_path, epochs=EPOCHS + 1, device="cpu")
    assert len(longer) == EPOCHS + 1  # other settings: retrained, not reused


def test_a_baseline_scored_on_other_images_is_retrained(small_digits, tmp_path, capsys):
    transfer, validation, test = small_digits
    spec = mlp_spec(transfer.input_shape, hidden=(8,))
    load_or_train_baseline(spec, transfer, test, root=tmp_path, epochs=EPOCHS, device="cpu")  # as before the split
    capsys.readouterr()
    _, curve = load_or_train_baseline(spec, transfer, validation, root=tmp_path, epochs=EPOCHS, device="cpu")
    assert "validation=30, expected 35" in capsys.readouterr().out
    assert curve == train_with_curve(spec, transfer, validation, epochs=EPOCHS, device="cpu")[1]


def _interrupt_after(arm, forward_calls):
    """A build_model whose models raise KeyboardInterrupt (Ctrl-C) on their `forward_calls`-th forward pass."""
    real_build_model = explorer_data.build_model
    return lambda spec, seed: arm(real_build_model(spec, seed=seed), forward_calls)


def test_an_interrupted_baseline_stops_the_start_and_is_never_cached(small_digits, tmp_path, monkeypatch, ctrl_c):
    transfer, validation, _ = small_digits
    spec = mlp_spec(transfer.input_shape, hidden=(8,))
    # the cached baseline is built by checkpoints.load_or_train; 40 examples: 1 batch + 1 evaluation
    monkeypatch.setattr(checkpoints, "build_model", _interrupt_after(ctrl_c, 2))
    with pytest.raises(TrainingInterrupted) as error:
        load_or_train_baseline(spec, transfer, validation, root=tmp_path, epochs=EPOCHS, device="cpu")
    assert len(error.value.partial) < EPOCHS
    assert not list(tmp_path.glob("explorer-baseline-*.pt"))
    monkeypatch.undo()
    _, curve = load_or_train_baseline(spec, transfer, validation, root=tmp_path, epochs=EPOCHS, device="cpu")
    assert len(curve) == EPOCHS and len(list(tmp_path.glob("explorer-baseline-*.pt"))) == 1


def test_train_now_says_when_training_was_cut_short(explorer, monkeypatch, ctrl_c):
    monkeypatch.setattr(explorer_data, "build_model", _interrupt_after(ctrl_c, 1))  # before any epoch finishes
    explorer.train()
    assert explorer.last_training["interrupted"] and explorer.last_training["curve"] == []
    shown = explorer.view.training
    assert shown["warning"] == f"Interrupted after 0 of {EPOCHS} epochs: " and "no epoch finished" in shown["text"]
    assert not shown["running"]


def test_train_now_uses_the_explorers_seed(data):
    explorer = Explorer(dataclasses.replace(data, seed=5))
    explorer.train()
    _, curve = train_with_curve(data.student_spec, data.transfer, data.validation, teacher=data.teacher,
                                T=explorer.view.T, alpha=explorer.view.alpha, epochs=EPOCHS, seed=5, device="cpu")
    assert explorer.last_training["curve"] == curve


# ----------------------------------------------------------------------------- the grid over transfer sets (issue 19)

def test_the_explorers_grid_is_one_student_per_cell_on_each_of_several_transfer_sets(digits, tmp_path, capsys):
    from kdlab.sweep import grid_from_cache_or_sweep, sweep
    train, _ = digits
    pool, validation = train.split(300, seed=VALIDATION_SEED)
    teacher = build_model(mlp_spec(pool.input_shape, hidden=(32,)), seed=1)
    options = {"temperatures": (1.0, 4.0), "alphas": (0.0, 1.0), "epochs": 1, "transfer_size": 30, "progress": False}
    grid = grid_from_cache_or_sweep(tmp_path, pool, validation, teacher, {"accuracy": 0.9}, seeds=range(2, 5),
                                    **options)
    assert "one student per cell on each of 3 transfer sets" in capsys.readouterr().out
    assert grid.runs.shape == (3, 2, 2) and grid.settings["seeds"] == [2, 3, 4]
    assert grid.settings["scored_on"] == len(validation) and grid.settings["transfer_size"] == 30
    assert not torch.equal(pool.subset(30, seed=2).inputs, pool.subset(30, seed=3).inputs)
    for run, seed in enumerate((2, 3, 4)):  # run r: the students of seed r's own transfer set, scored on validation
        alone = sweep(teacher, pool.subset(30, seed=seed), validation, explorer_data.student_spec(
            pool.input_shape, explorer_data.experiment.STUDENT_SIZE, pool.num_classes), (1.0, 4.0), (0.0, 1.0),
            epochs=1, seed=seed, progress=False)
        np.testing.assert_allclose(grid.runs[run], alone.runs[0], atol=1e-6)
    assert grid.within_noise() is not None  # its hatching is paired over transfer sets
    path = tmp_path / "grid-digits-seed2.json"
    cached = grid_from_cache_or_sweep(tmp_path, pool, validation, teacher, {"accuracy": 0.9}, seeds=range(2, 5),
                                      **options)
    assert capsys.readouterr().out == "" and np.array_equal(cached.runs, grid.runs)

    one_transfer_set = json.loads(path.read_text())  # a grid of repeats on one transfer set, as before issue 19
    del one_transfer_set["settings"]["seeds"]
    path.write_text(json.dumps(one_transfer_set))
    grid_from_cache_or_sweep(tmp_path, pool, validation, teacher, {"accuracy": 0.9}, seeds=range(2, 5), **options)
    assert "made with seeds=None, expected [2, 3, 4]; rebuilding it" in capsys.readouterr().out


def test_load_explorer_data_sweeps_the_pool_over_transfer_sets_scored_on_validation(digits, tmp_path, monkeypatch,
                                                                                    grid):
    from kdlab.experiment import Split
    from kdlab.sweep import GRID_TRANSFER_SETS
    train, test = digits
    split = Split(*train.split(300, seed=VALIDATION_SEED), test)
    teacher = build_model(mlp_spec(train.input_shape, hidden=(32,)), seed=1)
    metadata = {"accuracy": 0.9, "validation_accuracy": 0.8}
    monkeypatch.setattr(explorer_data.experiment, "load_data_and_teacher", lambda *args, **kwargs: (split, teacher,
                                                                                                     metadata))
    asked = {}

    def recorded(root, pool, scored_on, *args, **kwargs):
        asked.update(pool=pool, scored_on=scored_on, **kwargs)
        return grid
    monkeypatch.setattr(explorer_data, "grid_from_cache_or_sweep", recorded)
    data = explorer_data.load_explorer_data("digits", tmp_path, epochs=1, seed=2, device="cpu")
    assert asked["pool"] is split.pool and asked["scored_on"] is split.validation
    assert list(asked["seeds"]) == list(range(2, 2 + GRID_TRANSFER_SETS)) and GRID_TRANSFER_SETS >= 5
    assert asked["transfer_size"] == len(data.transfer)
    assert torch.equal(data.transfer.inputs, split.pool.subset(len(data.transfer), seed=2).inputs)  # the first set
    assert data.validation is split.validation and data.teacher_accuracy == 0.8


def test_a_slow_step_says_what_it_does_within_a_second_and_a_quick_one_stays_silent(capsys, monkeypatch):
    assert explorer_data.SAY_AFTER_SECONDS <= 1  # issue 23: no silent "[*]" for more than a second
    monkeypatch.setattr(explorer_data, "SAY_AFTER_SECONDS", 0.05)
    with explorer_data.said_if_slow("Training the teacher..."):
        time.sleep(0.5)
    with explorer_data.said_if_slow("Loading the teacher..."):
        pass
    with explorer_data.said_if_slow("Not asked to say anything...", enabled=False):
        time.sleep(0.2)
    time.sleep(0.2)  # a timer the quick step left behind would have fired by now
    assert capsys.readouterr().out == "Training the teacher...\n"


def _grid_chart(grid, T, alpha):
    """(spec, data) of the grid's chart with the cell nearest (T, alpha) outlined."""
    panel = GridPanel(grid)
    return panel.spec(), panel.data(grid_panel(grid, T, alpha))


def test_the_grid_chart_has_a_colour_bar_over_its_range_and_says_what_it_shows(grid):
    spec, data = _grid_chart(grid, 16.0, 1.0)
    bar = spec["colorbar"]
    assert bar["label"] == "validation accuracy"
    assert (bar["low"], bar["high"]) == (pytest.approx(grid.accuracy.min()), pytest.approx(grid.accuracy.max()))
    assert bar["ticks"] == sorted(bar["ticks"]) and len(bar["ticks"]) >= 2
    assert all(bar["low"] <= tick <= bar["high"] for tick in bar["ticks"])
    assert [float(text) for text in bar["tick_labels"]] == pytest.approx(bar["ticks"])
    lowest, highest = np.unravel_index(grid.accuracy.argmin(), grid.accuracy.shape), np.unravel_index(
        grid.accuracy.argmax(), grid.accuracy.shape)
    assert bar["colours"][0] == spec["colours"][lowest[0]][lowest[1]]  # the bar's ends are the cells' ends
    assert bar["colours"][-1] == spec["colours"][highest[0]][highest[1]]
    assert data["highlight"] == [4, 2]
    low, high = grid.interval(4, 2)
    title = (f"(d) Nearest grid cell: T = 16, α = 1\nvalidation accuracy {grid.accuracy[4, 2]:.3f}\n"
             f"95 % CI over 3 students: {low:.3f}–{high:.3f}")
    assert data["title"] == title
    # Sliders between cells (T = 12, α = 0.9) outline the nearest cell, and the title says it is that cell's
    assert _grid_chart(grid, 12.0, 0.9)[1] == data and data["title"] == title
    over_transfer_sets = Grid(grid.temperatures, grid.alphas, grid.accuracy, "digits", {"seeds": [0, 1, 2]},
                              runs=grid.runs)
    assert "95 % CI over 3 transfer sets" in _grid_chart(over_transfer_sets, 1.0, 0.0)[1]["title"]
    assert "mean of 3 transfer sets" in GridPanel(over_transfer_sets).spec()["note"]


def test_the_static_picture_has_a_colour_bar_beside_the_grid(explorer, data):
    names = ("picture", "soft", "loss", "curves", "gradients", "grid")
    shown = panels.chart_data(data, explorer.panels, explorer.view.T, explorer.view.alpha, 0)
    shown["curves"] = explorer.panels["curves"].data()
    figure = panels.static_figure([(explorer.panels[name].spec(), shown[name]) for name in names])
    bars = [ax for ax in figure.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and bars[0].axison  # drawn, not switched off with the unused subplots
    spec = explorer.panels["grid"].spec()["colorbar"]
    assert bars[0].get_ylabel() == "validation accuracy"
    assert [label.get_text() for label in bars[0].get_yticklabels()] == spec["tick_labels"]
    assert bars[0].get_ylim() == pytest.approx((spec["low"], spec["high"]))
    heatmap = figure.axes[names.index("grid")]
    assert heatmap.get_title() == shown["grid"]["title"]
    assert [patch for patch in heatmap.patches if patch.get_edgecolor()[:3] == (1.0, 0.0, 0.0)]  # the outline
