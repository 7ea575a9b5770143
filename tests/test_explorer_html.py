"""The single-file explorer (`python -m kdlab explorer-html OUT.html`) without a browser: what the file holds and what
the command does. tests/test_explorer_browser.py opens it in Chromium, offline, at two screen sizes."""

import dataclasses
import json
import re

import numpy as np
import pytest
import torch

from kdlab import explorer_html as module
from kdlab.__main__ import main
from kdlab.canvas import STATIC
from kdlab.explorer_data import ExplorerData
from kdlab.explorer_html import TRAIN_ELSEWHERE, explorer_html
from kdlab.models import build_model, mlp_spec
from kdlab.sweep import Grid
from kdlab.widgets import page_payload

HOSTILE = "</script><img src=x onerror=alert(1)><!--"


@pytest.fixture(scope="module")
def data(digits):
    """Untrained models on 30 test digits, a grid of 3 runs: a page to look into, nothing to wait for."""
    train, test = digits
    test = test.subset(30)
    spec = mlp_spec(train.input_shape, hidden=(16,))
    teacher, student = build_model(mlp_spec(train.input_shape, hidden=(32,)), seed=1), build_model(spec, seed=2)
    runs = np.random.default_rng(0).uniform(0.8, 0.95, (3, 5, 3))
    grid = Grid((1.0, 2.0, 4.0, 8.0, 16.0), (0.0, 0.5, 1.0), runs.mean(axis=0), "digits", {"seeds": [0, 1, 2]}, runs)
    return ExplorerData(test=test, validation=test, teacher_logits=teacher(test.inputs).detach(),
                        student_logits=student(test.inputs).detach(), grid=grid, teacher=teacher, transfer=test,
                        student_spec=spec, baseline_curve=[0.5, 0.7, 0.8], epochs=3, device=torch.device("cpu"),
                        teacher_accuracy=0.9)


def _embedded(page: str) -> dict:
    (text,) = re.findall(r'<script type="application/json" id="kdlab-data">(.*?)</script>', page, re.S)
    return json.loads(text)


def test_the_page_holds_its_data_code_and_style_and_asks_for_nothing(data):
    page = explorer_html(data)
    assert _embedded(page) == json.loads(json.dumps(page_payload(data, train=TRAIN_ELSEWHERE)))
    assert (STATIC / "explorer.js").read_text(encoding="utf-8") in page
    assert (STATIC / "explorer.css").read_text(encoding="utf-8") in page
    assert "http://" not in page and "https://" not in page  # nothing from a CDN, or anywhere else
    assert all(address.startswith("data:") for address in re.findall(r'(?:src|href)="([^"]*)"', page))
    assert len(page.encode()) < 400_000


def test_text_in_the_data_cannot_end_its_script_early(data):
    test = dataclasses.replace(data.test, classes=(HOSTILE,) * 10)
    page = explorer_html(dataclasses.replace(data, test=test))
    assert page.count("</script>") == 2 and "<img" not in page  # the two scripts' own ends, nothing of the text
    assert _embedded(page)["classes"] == [HOSTILE] * 10


def test_the_command_writes_the_page_with_the_test_images_asked_for(data, tmp_path, monkeypatch, capsys):
    asked = {}

    def load(dataset, root, **options):
        asked.update(dataset=dataset, root=root, **options)
        return data
    monkeypatch.setattr(module, "load_explorer_data", load)
    out = tmp_path / "explorer.html"
    assert main(["explorer-html", str(out), "--data-root", str(tmp_path), "--examples", "10", "--offline"]) == 0
    assert asked["dataset"] == "digits" and asked["root"] == str(tmp_path) and asked["offline"]
    payload = _embedded(out.read_text(encoding="utf-8"))
    assert len(payload["examples"]["labels"]) == 10 and payload["controls"]["example"]["high"] == 9
    assert f"wrote {out}" in capsys.readouterr().out


@pytest.mark.parametrize("where, why", [("", "is a folder; give a file name such as"),
                                        ("missing/explorer.html", "is not a folder; create it first")])
def test_the_command_refuses_an_output_it_cannot_write_before_any_work(tmp_path, monkeypatch, capsys, where, why):
    monkeypatch.setattr(module, "load_explorer_data", lambda *args, **kwargs: pytest.fail("loaded data"))
    assert main(["explorer-html", str(tmp_path / where), "--data-root", str(tmp_path)]) == 1
    assert why in capsys.readouterr().err
