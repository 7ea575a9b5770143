"""Tests for kdlab.viz: each plot draws what it says (bars, lines, labels, values), on Agg."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from kdlab import soft_targets  # noqa: E402
from kdlab.train import History  # noqa: E402
from kdlab.viz import (  # noqa: E402
    PROJECTOR_STYLE,
    class_similarity,
    plot_class_similarity,
    plot_learning_curves,
    plot_soft_targets,
    show_digits,
    use_projector_style,
)

CLASSES = tuple(str(c) for c in range(10))


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_projector_style_sets_large_fonts():
    with plt.rc_context():
        use_projector_style()
        assert plt.rcParams["font.size"] == PROJECTOR_STYLE["font.size"] >= 14
        assert plt.rcParams["axes.labelsize"] == PROJECTOR_STYLE["axes.labelsize"]


@pytest.mark.parametrize("shape", [(12, 8, 8), (12, 1, 8, 8), (12, 3, 6, 6)])
def test_show_digits_draws_one_titled_image_per_input(shape):
    images = torch.randn(shape)
    titles = [f"digit {i}" for i in range(12)]
    figure = show_digits(images, titles, columns=5, title="twelve images")
    assert figure.get_suptitle() == "twelve images"
    drawn = [ax for ax in figure.axes if ax.images]
    assert len(drawn) == 12 and len(figure.axes) == 15  # 3 rows of 5, the last 3 left empty
    assert [ax.get_title() for ax in drawn] == titles
    shown = drawn[0].images[0].get_array()
    assert shown.min() == 0 and shown.max() == 1  # rescaled to its own range for display
    expected = images[0].squeeze(0) if shape[1] == 1 else images[0]
    if len(shape) == 4 and shape[1] == 3:
        expected = expected.permute(1, 2, 0)
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    np.testing.assert_allclose(shown, expected.numpy(), rtol=1e-6)


def test_show_digits_rejects_mismatched_titles_and_shapes():
    with pytest.raises(ValueError, match="one title per image"):
        show_digits(torch.zeros(3, 8, 8), ["a", "b"])
    with pytest.raises(ValueError, match="batch"):
        show_digits(torch.zeros(8, 8))


def test_soft_target_bars_one_group_per_temperature():
    logits = torch.linspace(-3, 6, 10)
    ax = plot_soft_targets(logits, [1, 4, 20], CLASSES)
    assert len(ax.patches) == 30
    heights = np.array([bar.get_height() for bar in ax.patches]).reshape(3, 10)
    for row, T in zip(heights, [1, 4, 20]):
        np.testing.assert_allclose(row, soft_targets(logits, T).numpy(), rtol=1e-6)
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["T = 1", "T = 4", "T = 20"]
    assert ax.get_xlabel() == "class" and ax.get_ylabel() == "probability"
    assert plot_soft_targets(logits, [1], CLASSES, log_scale=True).get_yscale() == "log"


def test_soft_target_bars_need_one_logit_per_class():
    with pytest.raises(ValueError, match="one logit per class"):
        plot_soft_targets(torch.zeros(9), [1], CLASSES)


def test_class_similarity_renormalises_the_wrong_classes():
    logits = torch.tensor([[5.0, 1.0, 1.0 + np.log(3.0)], [0.0, 9.0, 0.0], [2.0, 0.0, 40.0]])
    labels = torch.tensor([0, 1, 2])
    similarity = class_similarity(logits, labels, T=1.0)
    assert torch.isnan(similarity.diagonal()).all()
    np.testing.assert_allclose(similarity[0, 1:], [0.25, 0.75], rtol=1e-6)  # exp(1) : 3 exp(1)
    np.testing.assert_allclose(similarity[1, [0, 2]], [0.5, 0.5], rtol=1e-6)
    # a very confident example (p(true) rounds to 1 in float32) still gives a distribution
    assert torch.isfinite(similarity[2, :2]).all() and similarity[2, :2].sum() == pytest.approx(1)


def test_class_similarity_gets_flatter_with_temperature():
    logits = torch.tensor([[5.0, 1.0, 3.0]])
    cold, hot = class_similarity(logits, torch.tensor([0]), 1.0), class_similarity(logits, torch.tensor([0]), 10.0)
    assert cold[0, 2] > hot[0, 2] > 0.5


def test_similarity_heatmap_shows_the_matrix_and_its_values():
    matrix = torch.rand(10, 10)
    matrix.fill_diagonal_(float("nan"))
    ax = plot_class_similarity(matrix, CLASSES)
    np.testing.assert_array_equal(ax.images[0].get_array().filled(np.nan), matrix.numpy().astype(float))
    assert len(ax.texts) == 90  # the NaN diagonal stays blank
    assert ax.texts[0].get_text() == f"{matrix[0, 1].item():.2f}"
    assert ax.get_xlabel() == "wrong class" and ax.get_ylabel() == "true class"
    with pytest.raises(ValueError, match=r"\(10, 10\)"):
        plot_class_similarity(torch.rand(3, 3), CLASSES)


def test_learning_curves_one_line_per_name_from_history_or_dict():
    history = History(test_accuracy=[0.5, 0.7, 0.8])
    as_dict = History(test_accuracy=[0.4, 0.6, 0.9]).as_dict()
    ax = plot_learning_curves({"baseline": history, "distilled": as_dict})
    assert len(ax.lines) == 2
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [0.4, 0.6, 0.9])
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["baseline", "distilled"]
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "test accuracy"


def test_learning_curves_average_seeds_with_a_band():
    seeds = [History(train_loss=[1.0, 0.5]), History(train_loss=[3.0, 0.7, 0.1])]  # the second ran longer
    ax = plot_learning_curves({"student": seeds}, metric="train_loss")
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [2.0, 0.6])
    assert len(ax.collections) == 1  # the +-1 sd band
    assert ax.get_legend().get_texts()[0].get_text() == "student (mean of 2)"


def test_learning_curves_explain_bad_input():
    with pytest.raises(ValueError, match="unknown metric"):
        plot_learning_curves({"a": History(test_accuracy=[1.0])}, metric="accuracy")
    with pytest.raises(ValueError, match="pass test data"):
        plot_learning_curves({"a": History(train_loss=[1.0])})
    with pytest.raises(ValueError, match="at least one history"):
        plot_learning_curves({})


def test_plots_draw_onto_a_given_axes():
    figure, (left, right) = plt.subplots(1, 2)
    assert plot_learning_curves({"a": History(test_accuracy=[0.5])}, ax=left) is left
    assert plot_soft_targets(torch.zeros(10), [1], CLASSES, ax=right) is right
