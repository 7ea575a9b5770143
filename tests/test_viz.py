"""Tests for kdlab.viz: each plot draws what it says (bars, lines, labels, values), on Agg, and a figure shown
with `show` carries its alt text where JupyterLab, nbconvert and static sites read it."""

import matplotlib

matplotlib.use("Agg")

import base64  # noqa: E402
import io  # noqa: E402
import warnings  # noqa: E402
from html.parser import HTMLParser  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from nbconvert import HTMLExporter  # noqa: E402

from kdlab import soft_targets  # noqa: E402
from kdlab.panels import GridPanel, static_figure  # noqa: E402
from kdlab.sweep import Grid  # noqa: E402
from kdlab.train import History  # noqa: E402
from kdlab.viz import (  # noqa: E402
    COLOURS,
    PROJECTOR_STYLE,
    class_similarity,
    figure_bundle,
    mean_soft_targets,
    plot_class_similarity,
    plot_heatmap,
    plot_learning_curves,
    plot_paired_gains,
    plot_soft_targets,
    show,
    show_digits,
    show_table,
    smallest_font_px,
    table_bundle,
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


def test_projector_style_is_colour_blind_safe_and_never_tells_lines_apart_by_colour_alone():
    with plt.rc_context():
        use_projector_style()
        cycle = plt.rcParams["axes.prop_cycle"].by_key()
        assert cycle["color"] == plt.style.library["tableau-colorblind10"]["axes.prop_cycle"].by_key()["color"]
        assert plt.rcParams["image.cmap"] == "viridis"
        _, ax = plt.subplots()
        lines = [ax.plot([0, 1], [i, i])[0] for i in range(len(cycle["color"]))]
        dashes = [(line.get_linestyle(), str(line._dash_pattern)) for line in lines]
        assert len(set(dashes)) == len(lines)  # ten lines, ten dash patterns, as well as ten colours


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
    hatches = [bar.get_hatch() or "" for bar in ax.patches[::10]]
    assert len(set(hatches)) == 3  # each temperature its own hatching, not only its own colour
    assert [patch.get_hatch() or "" for patch in ax.get_legend().get_patches()] == hatches  # and the key says so
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
    np.testing.assert_array_equal(ax.collections[0].get_array().filled(np.nan), matrix.numpy().astype(float))
    assert len(ax.texts) == 90  # the NaN diagonal stays blank
    assert ax.texts[0].get_text() == f"{matrix[0, 1].item():.2f}"
    assert ax.get_xlabel() == "wrong class" and ax.get_ylabel() == "true class"
    with pytest.raises(ValueError, match=r"\(10, 10\)"):
        plot_class_similarity(torch.rand(3, 3), CLASSES)


def test_mean_soft_targets_average_each_class_and_leave_an_absent_class_nan():
    logits = torch.tensor([[0.0, 0.0, np.log(2.0)], [np.log(3.0), 0.0, 0.0], [2.0, 0.0, 2.0]])
    labels = torch.tensor([0, 0, 2])  # no example of class 1
    means = mean_soft_targets(logits, labels, T=1.0)
    # class 0: mean of (1, 1, 2)/4 and (3, 1, 1)/5; class 2: (e^2, 1, e^2) / (2 e^2 + 1)
    np.testing.assert_allclose(means[0], [(1 / 4 + 3 / 5) / 2, (1 / 4 + 1 / 5) / 2, (2 / 4 + 1 / 5) / 2], rtol=1e-6)
    e2 = np.exp(2.0)
    np.testing.assert_allclose(means[2], [e2 / (2 * e2 + 1), 1 / (2 * e2 + 1), e2 / (2 * e2 + 1)], rtol=1e-6)
    assert torch.isnan(means[1]).all()
    np.testing.assert_allclose(means[[0, 2]].sum(dim=1), [1.0, 1.0], rtol=1e-6)
    hot = mean_soft_targets(logits, labels, T=4.0)
    np.testing.assert_allclose(hot[2], soft_targets(logits[2], 4.0), rtol=1e-6)
    with pytest.raises(ValueError, match=r"\(n, C\)"):
        mean_soft_targets(logits, labels[:2])


def _hatched(ax):
    """(row, column) of each hatched cell: seaborn's cell (r, c) spans [c, c + 1] x [r, r + 1]."""
    return [(int(patch.get_y()), int(patch.get_x())) for patch in ax.patches if patch.get_hatch()]


def _outlined_in_red(ax):
    """(row, column) of each cell outlined in red."""
    return [(int(patch.get_y()), int(patch.get_x())) for patch in ax.patches
            if patch.get_edgecolor()[:3] == (1.0, 0.0, 0.0) and patch.get_linewidth() == 3]


def _dark(colour) -> bool:
    return sum(to_rgb(colour)) / 3 < 0.5


def test_heatmap_writes_values_hatches_the_mask_and_outlines_the_highlight():
    values = np.array([[0.1, np.nan, 0.9], [0.5, 0.2, 2.0]])
    hatched = np.array([[True, False, False], [False, True, True]])
    labels = [["a", "b", "c"], ["d", "e*", "f"]]
    with plt.rc_context({"axes.grid": True}):  # as use_projector_style sets it: a heatmap still has no grid lines
        ax = plot_heatmap(values, ["r0", "r1"], ["c0", "c1", "c2"], labels=labels, hatched=hatched, highlight=(1, 2),
                          vmax=1.0, title="grid", xlabel="columns", ylabel="rows", colorbar_label="accuracy")
    texts = {(int(text.get_position()[1]), int(text.get_position()[0])): text for text in ax.texts}
    assert {cell: text.get_text() for cell, text in texts.items()} == {
        (0, 0): "a", (0, 2): "c", (1, 0): "d", (1, 1): "e*", (1, 2): "f"}  # the NaN cell stays blank
    # text colour from the cell's luminance: dark low end in light text, bright top (and beyond vmax) in dark
    assert not _dark(texts[0, 0].get_color()) and _dark(texts[0, 2].get_color()) and _dark(texts[1, 2].get_color())
    cells = ax.collections[0]  # seaborn's mesh of cells
    np.testing.assert_array_equal(cells.get_array().filled(np.nan), values)
    assert cells.cmap(cells.norm(2.0)) == cells.cmap(1.0)  # above vmax: the top colour
    assert sorted(_hatched(ax)) == [(0, 0), (1, 1), (1, 2)]
    assert _outlined_in_red(ax) == [(1, 2)]
    assert [label.get_text() for label in ax.get_xticklabels()] == ["c0", "c1", "c2"]
    assert [label.get_text() for label in ax.get_yticklabels()] == ["r0", "r1"]
    assert all(label.get_rotation() == 0 for label in ax.get_yticklabels())  # level, not on end as seaborn has them
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("grid", "columns", "rows")
    assert ax.figure.axes[1].get_ylabel() == "accuracy" and cells.colorbar.ax is ax.figure.axes[1]
    assert ax.get_aspect() == "auto"
    assert not any(line.get_visible() for line in ax.get_xgridlines() + ax.get_ygridlines())


def test_heatmap_formats_values_and_draws_nothing_it_was_not_asked_for():
    ax = plot_heatmap(torch.tensor([[0.25, 0.5]]), ["r"], ["a", "b"], fmt="{:.1%}", colorbar=False)
    assert [text.get_text() for text in ax.texts] == ["25.0%", "50.0%"]
    assert not ax.patches and len(ax.figure.axes) == 1
    assert not plot_heatmap(np.ones((1, 2)), ["r"], ["a", "b"], fmt=None).texts


def test_heatmap_refuses_a_wrong_shape():
    with pytest.raises(ValueError, match=r"values must be \(2, 3\)"):
        plot_heatmap(np.zeros((3, 2)), ["a", "b"], ["x", "y", "z"])
    with pytest.raises(ValueError, match=r"hatched must be \(2, 3\)"):
        plot_heatmap(np.zeros((2, 3)), ["a", "b"], ["x", "y", "z"], hatched=np.zeros((3, 2), bool))
    with pytest.raises(ValueError, match=r"labels must be \(2, 3\)"):
        plot_heatmap(np.zeros((2, 3)), ["a", "b"], ["x", "y", "z"], labels=[["1", "2", "3"]])


def test_the_static_grid_panel_draws_the_browsers_heatmap_through_plot_heatmap():
    temperatures, alphas = (1.0, 4.0), (0.0, 0.5, 1.0)
    runs = np.array([[[0.80, 0.81, 0.90], [0.70, 0.71, 0.72]],
                     [[0.81, 0.80, 0.91], [0.71, 0.70, 0.73]],
                     [[0.82, 0.82, 0.92], [0.72, 0.72, 0.71]]])
    panel = GridPanel(Grid(temperatures, alphas, runs.mean(axis=0), "digits", {}, runs=runs))
    spec = panel.spec()
    np.testing.assert_allclose(spec["values"], runs.mean(axis=0), atol=1e-4)
    data = {"highlight": [1, 2], "title": "(d) grid"}
    (ax, *_) = static_figure([(spec, data)], columns=1).axes
    cells = ax.collections[0]
    drawn = cells.cmap(cells.norm(np.asarray(spec["values"])))  # the browser's min-max viridis colours
    np.testing.assert_allclose(drawn, [[matplotlib.colors.to_rgba(cell) for cell in row] for row in spec["colours"]],
                               atol=2 / 255)
    assert [text.get_text() for text in ax.texts] == sum(spec["text"], [])
    assert [_dark(text.get_color()) for text in ax.texts] == [_dark(c) for c in sum(spec["text_colours"], [])]
    marks = np.array(spec["marks"])
    assert marks.any() and not marks.all()
    assert sorted(_hatched(ax)) == sorted(zip(*np.nonzero(marks)))
    assert _outlined_in_red(ax) == [(1, 2)]
    assert [label.get_text() for label in ax.get_xticklabels()] == ["0", "0.5", "1"]
    assert [label.get_text() for label in ax.get_yticklabels()] == ["1", "4"]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == (spec["xlabel"], spec["ylabel"], "(d) grid")


def _curves(ax):
    """The lines that carry data (seaborn also adds empty ones, for the legend)."""
    return [line for line in ax.lines if len(line.get_xdata())]


def test_learning_curves_one_line_per_name_from_history_or_dict():
    history = History(test_accuracy=[0.5, 0.7, 0.8])
    as_dict = History(test_accuracy=[0.4, 0.6, 0.9]).as_dict()
    ax = plot_learning_curves({"baseline": history, "distilled": as_dict})
    drawn = _curves(ax)
    assert len(drawn) == 2
    np.testing.assert_array_equal(drawn[0].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(drawn[1].get_ydata(), [0.4, 0.6, 0.9])
    assert [to_rgb(line.get_color()) for line in drawn] == [to_rgb(colour) for colour in COLOURS[:2]]
    assert drawn[0].get_linestyle() != drawn[1].get_linestyle()  # told apart without colour too
    assert not any(len(band.get_paths()) for band in ax.collections)  # one run each: no band
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["baseline", "distilled"]
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "test accuracy"
    ax.axhline(0.95, label="teacher")
    ax.legend()  # as a notebook adds a line of its own: the legend keeps the curves
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["baseline", "distilled", "teacher"]


def test_learning_curves_average_seeds_with_a_band():
    seeds = [History(train_loss=[1.0, 0.5]), History(train_loss=[3.0, 0.7, 0.1])]  # the second ran longer
    ax = plot_learning_curves({"student": seeds}, metric="train_loss")
    np.testing.assert_allclose(_curves(ax)[0].get_ydata(), [2.0, 0.6])
    (band,) = ax.collections  # the +-1 sd band (ddof=1) around the mean of the epochs both seeds reached
    upper = band.get_paths()[0].vertices[:, 1]
    np.testing.assert_allclose([upper.min(), upper.max()], [0.6 - np.std([0.5, 0.7], ddof=1),
                                                            2.0 + np.std([1.0, 3.0], ddof=1)])
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


def test_paired_gains_show_the_interval_as_computed_and_every_seed():
    gains = {"distilled": {"mean": 0.02, "ci_low": 0.005, "ci_high": 0.04},
             "smoothed": {"mean": -0.01, "ci_low": -0.03, "ci_high": 0.012}}
    per_seed = {"distilled": [0.01, 0.03, 0.02], "smoothed": [-0.02, 0.0, -0.01]}
    ax = plot_paired_gains(gains, per_seed, title="gains")
    assert [label.get_text() for label in ax.get_yticklabels()] == ["distilled", "smoothed"]
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # the first name on top
    dots = [collection for collection in ax.collections if collection.get_offsets().size][:2]
    for row, (dot, name) in enumerate(zip(dots, gains)):  # seaborn's strip of seeds, one row per name
        offsets = np.asarray(dot.get_offsets())
        np.testing.assert_allclose(sorted(offsets[:, 0]), sorted(100 * np.array(per_seed[name])))
        assert np.all(np.abs(offsets[:, 1] - row) < 0.5)
    (mean_marker, *_) = [line for line in ax.lines if line.get_marker() == "D"]
    np.testing.assert_allclose(mean_marker.get_xdata(), [2.0, -1.0])
    (bars,) = [collection for collection in ax.collections if collection.get_label() == "_nolegend_"]
    ends = sorted(tuple(np.round(segment[:, 0], 6)) for segment in bars.get_segments())
    assert ends == [(-3.0, 1.2), (0.5, 4.0)]  # ci_low to ci_high, in points, not re-estimated from the seeds
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["one seed", "mean, 95 % interval"]
    assert any(line.get_xdata()[0] == 0 for line in ax.lines if line.get_marker() != "D")  # zero marked
    with pytest.raises(ValueError, match="no differences for"):
        plot_paired_gains(gains, {"distilled": [0.0]})


class _Images(HTMLParser):
    """The <img> tags of an HTML page, as attribute dicts."""

    def __init__(self):
        super().__init__()
        self.images = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))


def _images(page: str) -> list[dict]:
    parser = _Images()
    parser.feed(page)
    return parser.images


def test_figure_bundle_carries_the_alt_text_beside_the_picture():
    png = b"\x89PNG\r\n\x1a\n a picture"
    data, metadata = figure_bundle(png, ' Accuracy rises with T; the "plateau" starts at T = 4 & stays. ')
    alt = 'Accuracy rises with T; the "plateau" starts at T = 4 & stays.'
    assert base64.b64decode(data["image/png"]) == png
    assert metadata == {"image/png": {"alt": alt}} and data["text/plain"] == alt
    (image,) = _images(data["text/html"])  # quotes and ampersands escaped, read back whole
    assert image == {"src": "data:image/png;base64," + data["image/png"], "alt": alt}
    for blank in ("", "   "):
        with pytest.raises(ValueError, match="alt text"):
            figure_bundle(png, blank)


def test_show_displays_the_figure_once_with_its_alt_text(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *args, **kwargs: shown.append((args, kwargs)))
    figure, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    show(ax, alt="A line falling from 1 to 0.")
    ((args, kwargs),) = shown
    (data,) = args
    assert kwargs["raw"] is True and kwargs["metadata"]["image/png"]["alt"] == "A line falling from 1 to 0."
    assert base64.b64decode(data["image/png"]).startswith(b"\x89PNG")
    assert not plt.fignum_exists(figure.number)  # closed: the inline backend will not show it again


def test_show_records_the_smallest_font_in_pixels_at_the_pictures_natural_size(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *args, **kwargs: shown.append(kwargs["metadata"]))
    figure, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot([0, 1], [1, 0], label="a line")
    ax.set_title("a title", fontsize=20)
    ax.tick_params(labelsize=9)
    ax.legend(fontsize=12)
    assert smallest_font_px(figure) == pytest.approx(9 * 100 / 72)  # the ticks', in points x dpi / 72
    assert smallest_font_px(ax, dpi=200) == pytest.approx(9 * 200 / 72)
    show(figure, alt="A line falling from 1 to 0.")
    assert shown == [{"image/png": {"alt": "A line falling from 1 to 0.", "smallest_font_px": 12.5}}]


def test_smallest_font_ignores_what_is_not_drawn():
    figure, (drawn, off) = plt.subplots(1, 2, figsize=(8, 3), dpi=72)
    drawn.set_title("drawn", fontsize=14)
    drawn.tick_params(labelsize=13)
    off.tick_params(labelsize=5)
    off.set_axis_off()  # its tick labels are not drawn
    drawn.text(0.5, 0.5, "", fontsize=3)  # nor is an empty text
    drawn.text(0.5, 0.5, "hidden", fontsize=4).set_visible(False)
    assert smallest_font_px(figure) == pytest.approx(13)
    assert smallest_font_px(plt.figure()) is None  # no text at all


def test_show_warns_when_jupyterlab_would_shrink_the_text_below_what_a_class_can_read(monkeypatch):
    monkeypatch.setattr("IPython.display.display", lambda *args, **kwargs: None)
    figure, ax = plt.subplots(figsize=(30, 3), dpi=100)  # 3,000 pixels wide: a third of it shows in a cell
    ax.tick_params(labelsize=14)
    with pytest.warns(UserWarning, match="under 11 px"):
        show(figure, alt="A very wide figure.")
    figure, ax = plt.subplots(figsize=(8, 3), dpi=100)
    ax.tick_params(labelsize=14)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        show(figure, alt="A figure that fits a cell.")


def _cells(html_table: str) -> list[list[str]]:
    """The text of each row's cells (th and td) of an HTML table, in order."""
    class Rows(HTMLParser):
        def __init__(self):
            super().__init__()
            self.rows, self.cell = [], None

        def handle_starttag(self, tag, attrs):
            if tag == "tr":
                self.rows.append([])
            elif tag in ("th", "td"):
                self.cell = ""

        def handle_data(self, data):
            if self.cell is not None:
                self.cell += data

        def handle_endtag(self, tag):
            if tag in ("th", "td"):
                self.rows[-1].append(self.cell)
                self.cell = None

    parser = Rows()
    parser.feed(html_table)
    return parser.rows


def test_a_table_is_shown_as_html_with_its_rows_headers_and_caption_and_as_text():
    frame = pd.DataFrame({"gain": [0.0421, -0.25], "95% CI": ["+0.75 to +3.25", "-0.480 to -0.259"],
                          "verdict": ["helps", "hurts"]}, index=pd.Index([100, 10], name="epochs"))
    bundle = table_bundle(frame, "validation accuracy <paired>:", formatters={"gain": "{:+.3f}".format})
    rows = _cells(bundle["text/html"])
    assert rows[0] == ["", "gain", "95% CI", "verdict"] and rows[1] == ["epochs", "", "", ""]
    assert [row[1] for row in rows[2:]] == ["+0.042", "-0.250"]  # formatted as to_string formats them
    assert rows[2][2] == "+0.75\u00a0to\u00a0+3.25"  # an interval never breaks across lines
    table = bundle["text/html"][bundle["text/html"].index("<table"):]
    assert table.startswith('<table class="dataframe kdlab-table">\n'
                            '  <caption>validation accuracy &lt;paired&gt;:</caption>')
    assert bundle["text/html"].startswith("<style>") and bundle["text/html"].count("<caption>") == 1
    assert bundle["text/plain"] == ("validation accuracy <paired>:\n"
                                    + frame.to_string(formatters={"gain": "{:+.3f}".format}))
    assert "+0.75 to +3.25" in bundle["text/plain"]  # the text keeps plain spaces


def test_show_table_displays_the_bundle_raw(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *args, **kwargs: shown.append((args, kwargs)))
    series = pd.Series([0.5, 0.25], index=["a", "b"], name="share")
    show_table(series, float_format="{:.1%}".format, na_rep="-")
    show_table(pd.DataFrame({"x": [1.5]}), index=False)
    (((data,), kwargs), ((no_index,), _)) = shown
    assert kwargs == {"raw": True} and set(data) == {"text/html", "text/plain"}
    assert data["text/plain"] == series.to_frame().to_string(float_format="{:.1%}".format)
    assert _cells(data["text/html"])[1:] == [["a", "50.0%"], ["b", "25.0%"]]
    assert _cells(no_index["text/html"]) == [["x"], ["1.5"]] and no_index["text/plain"] == "  x\n1.5"
    blank = table_bundle(pd.DataFrame({"x": [float("nan"), 2.0]}), na_rep="")
    assert _cells(blank["text/html"])[1][1] == "" and "NaN" not in blank["text/plain"]


def test_a_table_refuses_what_is_not_a_table_or_formats_a_column_it_lacks():
    with pytest.raises(TypeError, match="DataFrame"):
        table_bundle([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="empty"):
        table_bundle(pd.DataFrame())
    with pytest.raises(ValueError, match=r"formatters for columns the table does not have: \['gian'\]"):
        table_bundle(pd.DataFrame({"gain": [1.0]}), formatters={"gian": "{:.1f}".format})


@pytest.mark.parametrize("template", ["lab", "classic"])
def test_nbconvert_html_gives_the_figure_its_alt_text(template):
    figure, ax = plt.subplots()
    ax.bar([0, 1], [1, 2])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    data, metadata = figure_bundle(buffer.getvalue(), "Two bars, the second twice as tall.")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("show(figure, alt=...)", outputs=[
        nbformat.v4.new_output("display_data", data=data, metadata=metadata)])])
    page, _ = HTMLExporter(template_name=template).from_notebook_node(notebook)
    pictures = [image for image in _images(page) if image.get("src", "").startswith("data:image/png")]
    assert [image.get("alt") for image in pictures] == ["Two bars, the second twice as tall."]
