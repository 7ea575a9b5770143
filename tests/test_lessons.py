"""kdlab.lessons: a notebook's lesson as one record, and on the digits the same lesson as measured on real MNIST."""

import json

import pytest

from kdlab import lessons


def test_a_record_says_claim_measurement_and_verdict(capsys, tmp_path):
    record = lessons.report("05", "distillation helps", "+4.20 points", True, "mnist", results=tmp_path / "none.json")
    assert record == {"notebook": "05", "dataset": "mnist", "claim": "distillation helps", "measured": "+4.20 points",
                      "holds": True}
    # the claim, what was measured and the verdict each on a line of its own; on MNIST itself nothing follows
    assert capsys.readouterr().out == "distillation helps, on mnist:\n  +4.20 points\n  the lesson holds\n"


def test_on_the_digits_the_mnist_record_is_printed_beside_it(capsys, tmp_path):
    results = tmp_path / "mnist_lessons.json"
    results.write_text(json.dumps({"lessons": {"09": {"record": {"measured": "+0.30 points", "holds": False}}}}))
    lessons.report("09", "a smaller teacher teaches better", "+4.64 points", True, "digits", results=results)
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["a smaller teacher teaches better, on digits:", "  +4.64 points", "  the lesson holds",
                       "on real MNIST:", "  +0.30 points", "  the lesson does not hold"]


def test_no_line_is_wider_than_a_cell_and_every_number_is_printed_whole(capsys, tmp_path):
    claim = "a student distilled without a single 3 recognises most of them, more at a high T, and much more besides"
    measured = ("3s missed after the bias, fewest to most over 5 seeds: hard labels 36-42, T = 1 6-10, T = 4 0-2, "
                "T = 20 0-1 (of 51); T = 20 minus T = 1: +7.60 3s (95 % CI +2.75 to +12.45, 5 seeds and 51 test "
                "images): helps; DKD - KD: -0.46 points (95 % CI -0.87 to -0.05)")
    lessons.report("07", claim, measured, True, "mnist", results=tmp_path / "none.json")
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) > 3 and max(map(len, printed)) <= lessons.WIDTH
    # joined back, the lines say exactly what was measured: no number, range or relation was broken
    assert " ".join(line.strip() for line in printed[:-1]) == f"{claim}, on mnist: {measured}"
    for kept in ("36-42", "T = 20", "95 % CI", "DKD - KD", "-0.87", "+12.45"):
        assert any(kept in line for line in printed)


@pytest.mark.parametrize("content", [None, "{not json", json.dumps({"lessons": {}}), json.dumps([1, 2])])
def test_without_an_mnist_record_it_says_how_to_measure_it(capsys, tmp_path, content):
    results = tmp_path / "mnist_lessons.json"
    if content is not None:
        results.write_text(content)
    lessons.report("07", "the missing class", "0-1 missed", True, "digits", results=results)
    printed = capsys.readouterr().out
    assert "on real MNIST: not measured here\n  (python benchmarks/mnist_lessons.py" in printed


def test_holds_must_be_a_verdict_not_a_number(tmp_path):
    with pytest.raises(TypeError, match="holds must be True or False"):
        lessons.report("05", "claim", "measured", 0.02, "digits", results=tmp_path / "none.json")
