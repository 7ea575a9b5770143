"""kdlab.lessons: a notebook's lesson as one record, and on the digits the same lesson as measured on real MNIST."""

import json

import pytest

from kdlab import lessons


def test_a_record_says_claim_measurement_and_verdict(capsys, tmp_path):
    record = lessons.report("05", "distillation helps", "+4.20 points", True, "mnist", results=tmp_path / "none.json")
    assert record == {"notebook": "05", "dataset": "mnist", "claim": "distillation helps", "measured": "+4.20 points",
                      "holds": True}
    # on MNIST itself there is no second line
    assert capsys.readouterr().out == "distillation helps, on mnist: +4.20 points; the lesson holds\n"


def test_on_the_digits_the_mnist_record_is_printed_beside_it(capsys, tmp_path):
    results = tmp_path / "mnist_lessons.json"
    results.write_text(json.dumps({"lessons": {"09": {"record": {"measured": "+0.30 points", "holds": False}}}}))
    lessons.report("09", "a smaller teacher teaches better", "+4.64 points", True, "digits", results=results)
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["a smaller teacher teaches better, on digits: +4.64 points; the lesson holds",
                       "on real MNIST: +0.30 points; the lesson does not hold"]


@pytest.mark.parametrize("content", [None, "{not json", json.dumps({"lessons": {}}), json.dumps([1, 2])])
def test_without_an_mnist_record_it_says_how_to_measure_it(capsys, tmp_path, content):
    results = tmp_path / "mnist_lessons.json"
    if content is not None:
        results.write_text(content)
    lessons.report("07", "the missing class", "0-1 missed", True, "digits", results=results)
    assert "on real MNIST: not measured here (python benchmarks/mnist_lessons.py" in capsys.readouterr().out


def test_holds_must_be_a_verdict_not_a_number(tmp_path):
    with pytest.raises(TypeError, match="holds must be True or False"):
        lessons.report("05", "claim", "measured", 0.02, "digits", results=tmp_path / "none.json")
