"""Every exercise in the numbered notebooks (01 on) checks itself: its reference solution passes, its blank starter
and each plausible wrong answer fail, and no answer, however malformed, makes a check raise.

The ids come from the notebooks, so a new exercise cannot escape these tests. Its starter and solution are the
notebook's own cells, run in a namespace that holds only the exercise section's setup cell (so they cannot
lean on what the notebook trained), with `check` replaced by a recorder of its verdicts.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from kdlab.exercises import EXERCISES, check, feedback

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHECK = re.compile(r'^check\("(\d\d\.\d+)", ', re.M)


def _source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _tags(cell):
    return cell["metadata"].get("tags", [])


def exercise_sections():
    """{notebook name: (its setup cell's source, [its cells from the '## Exercises' heading on])}."""
    sections = {}
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        heading = next((index for index, cell in enumerate(cells)
                        if cell["cell_type"] == "markdown" and _source(cell).startswith("## Exercises")), None)
        if heading is not None:
            section = cells[heading:]
            setup = next(_source(cell) for cell in section if cell["cell_type"] == "code")
            sections[path.name] = setup, section
    return sections


def exercise_cells():
    """{exercise id: {"notebook", "setup", "starter": [cells], "solution": [cells]}}, from the notebooks."""
    found = {}
    for name, (setup, section) in exercise_sections().items():
        for cell in section:
            for exercise_id in CHECK.findall(_source(cell)) if cell["cell_type"] == "code" else ():
                entry = found.setdefault(exercise_id, {"notebook": name, "setup": setup, "starter": [], "solution": []})
                entry["solution" if "solution" in _tags(cell) else "starter"].append(cell)
    return found


SECTIONS = exercise_sections()
CELLS = exercise_cells()
IDS = sorted(CELLS)


def run_cell(setup, cell):
    """The verdicts of the `check` calls in `cell`, run after `setup` alone."""
    namespace, verdicts = {}, []
    exec(setup, namespace)
    namespace["check"] = lambda exercise_id, answer: verdicts.append((exercise_id, *feedback(exercise_id, answer)))
    exec(_source(cell), namespace)
    return verdicts


def test_every_numbered_notebook_but_the_explorer_ends_with_two_to_four_exercises():
    numbered = {path.name[:2]: path.name for path in NOTEBOOKS}
    assert {f"{number:02d}" for number in range(1, 13)} <= set(numbered)
    for number in sorted(set(numbered) - {"00"}):
        name = numbered[number]
        assert name in SECTIONS, f"{name} has no '## Exercises' section"
        ids = [exercise_id for exercise_id, cells in CELLS.items() if cells["notebook"] == name]
        assert 2 <= len(ids) <= 4, f"{name} has {len(ids)} exercises"
        assert all(exercise_id.startswith(f"{number}.") for exercise_id in ids), (name, ids)
        _, section = SECTIONS[name]
        assert all({"exercise", "solution"} & set(_tags(cell)) for cell in section), \
            f"{name}: every cell from the exercises' heading on is tagged exercise or solution (the section is last)"


def test_every_exercise_in_kdlab_is_in_a_notebook_and_every_notebook_exercise_in_kdlab():
    assert set(IDS) == set(EXERCISES)


@pytest.mark.parametrize("exercise_id", IDS)
def test_the_notebooks_reference_solution_passes_and_is_collapsed(exercise_id):
    cells = CELLS[exercise_id]
    assert len(cells["solution"]) == 1, f"{exercise_id} needs exactly one cell tagged solution"
    (solution,) = cells["solution"]
    assert solution["metadata"].get("jupyter", {}).get("source_hidden") is True
    verdicts = run_cell(cells["setup"], solution)
    assert [(found_id, passed) for found_id, passed, _ in verdicts] == [(exercise_id, True)], verdicts


@pytest.mark.parametrize("exercise_id", IDS)
def test_the_notebooks_blank_starter_runs_and_fails(exercise_id):
    cells = CELLS[exercise_id]
    assert len(cells["starter"]) == 1, f"{exercise_id} needs exactly one starter cell"
    verdicts = run_cell(cells["setup"], cells["starter"][0])
    assert [(found_id, passed) for found_id, passed, _ in verdicts] == [(exercise_id, False)], verdicts


@pytest.mark.parametrize("exercise_id", IDS)
def test_every_plausible_wrong_answer_fails(exercise_id):
    wrong_answers = EXERCISES[exercise_id].wrong_answers
    assert wrong_answers, f"{exercise_id} keeps no plausible wrong answer"
    for wrong in wrong_answers:
        passed, hint = feedback(exercise_id, wrong)
        assert not passed, f"{exercise_id} accepts {wrong.__name__}"
        assert hint


def _raises(*arguments):
    raise RuntimeError("a bug inside the learner's function")


MALFORMED = {
    "None": None, "a number": 42, "a string": "softmax", "a function that raises": _raises,
    "the wrong arity": lambda: 1, "a string back": lambda *arguments: "text",
    "NaN back": lambda *arguments: float("nan"),
    "a NaN tensor back": lambda *arguments: torch.full((3, 3), float("nan")),
    "the wrong shape back": lambda *arguments: torch.zeros(2, 2),
    "three numbers back": lambda *arguments: (1, 2, 3),
    "a dict back": lambda *arguments: {"a": 1},
    "text in an array back": lambda *arguments: np.array(["x"]),
    "its first input back": lambda *arguments: arguments[0],
    "an empty tensor back": lambda *arguments: torch.zeros(0),
    "infinity in a pair back": lambda *arguments: (float("inf"), 1.0),
    "a huge integer back": lambda *arguments: 10**400,
    "an object back": lambda *arguments: object(),
}


@pytest.mark.parametrize("exercise_id", IDS)
def test_a_malformed_answer_gets_a_cross_and_a_hint_never_an_exception(exercise_id):
    for what, answer in MALFORMED.items():
        passed, hint = feedback(exercise_id, answer)
        assert passed is False and isinstance(hint, str) and hint, (exercise_id, what)


def test_check_prints_a_tick_or_a_cross_with_its_hint(capsys):
    check("05.3", lambda mass, classes: mass * classes / (classes - 1))
    check("05.3", lambda mass, classes: mass)
    check("99.9", lambda: None)
    ticked, crossed, unknown = capsys.readouterr().out.splitlines()
    assert ticked.startswith("✓ 05.3: ")
    assert crossed.startswith("✗ 05.3: ") and "label" in crossed
    assert unknown.startswith("✗ 99.9: there is no exercise") and "05.3" in unknown


def test_a_check_judges_what_a_function_does_not_how_it_is_written():
    def in_place(logits, T):  # edits its input: the check's own inputs must not change under it
        logits /= T
        return torch.softmax(logits, dim=-1)

    def via_log_softmax(logits, T):
        return torch.log_softmax(logits / T, dim=-1).exp().numpy()  # another route, and a numpy array back

    assert feedback("01.1", in_place)[0] and feedback("01.1", via_log_softmax)[0]


def test_a_check_leaves_the_global_random_state_alone():
    state = torch.get_rng_state()
    feedback("01.2", lambda logits, labels: 8.0)
    assert torch.equal(state, torch.get_rng_state())
