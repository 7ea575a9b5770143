"""Every numbered notebook is framed (issue 20, item 3): it opens with what you will learn, what you need first and
how long it runs, and its summary closes with a recap of its numbers and a pointer to its exercises and the next
notebook.

Reads the committed notebooks and benchmarks/results/notebook_times.json; nothing is executed. The run times are the
benchmark's, not a notebook output: the opening cell quotes them in the one sentence that
``test_prose_numbers.RUN_TIME`` matches (which is why that test exempts it), they must equal the JSON (so a
re-measured JSON fails here until the notebooks say the same), and no parameters-cell comment states a time, so the
opening cell is the one place. A notebook over ``GOAL_SECONDS`` of bench_notebooks.py with warm caches says why
(issue 21), after the sentence. Notebook 00, the explorer, has a frame of its own: only its run time is checked here.
"""

import ast
import copy
import json
import re
from pathlib import Path

import pytest
from test_prose_numbers import RUN_TIME, quoted_numbers

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
PATHS = {path.name[:2]: path for path in sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))}
NUMBERS = [number for number in PATHS if number != "00"]
TIMES_FILE = ROOT / "benchmarks" / "results" / "notebook_times.json"
BENCHMARK = ROOT / "benchmarks" / "bench_notebooks.py"

NEED = "**What you need first:**"
NEXT = "**Next:**"
LEARN = re.compile(r"\byou will(?: learn)?:[ \t]*\n", re.I)
LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
EXERCISE_HEADING = re.compile(r"^### Exercise `(\d\d\.\d+)`", re.M)
EXERCISE_ID = re.compile(r"`(\d\d\.\d+)`")
TIME = re.compile(r"\d+(?:\.\d+)?\s*(?:s|secs?|seconds?|mins?|minutes?)\b")
MIN_SUMMARY_NUMBERS = 3  # a recap of what the notebook measured quotes some of it


def read_cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def goal_seconds():
    """bench_notebooks.py's GOAL_SECONDS, read without importing the benchmark."""
    for node in ast.parse(BENCHMARK.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and [target.id for target in node.targets] == ["GOAL_SECONDS"]:
            return ast.literal_eval(node.value)
    raise AssertionError("benchmarks/bench_notebooks.py defines no GOAL_SECONDS")


def title(path):
    """A notebook's title: its first cell's '# ' heading."""
    first_line = source(read_cells(path)[0]).splitlines()[0]
    return first_line.removeprefix("# ").strip()


def paragraph(text, start):
    """The paragraph of a markdown text that begins with `start`, or None."""
    return next((part.strip() for part in re.split(r"\n\s*\n", text) if part.lstrip().startswith(start)), None)


def normalised(text):
    return " ".join(text.split())


def slug(heading):
    """The anchor GitHub and JupyterLab give a markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def link_problems(text, number, earlier_only):
    """Links that do not resolve to a file beside the notebooks, or to a notebook under its own title; with
    `earlier_only`, links to a notebook that does not come before notebook `number`."""
    problems = []
    for label, target in LINK.findall(text):
        name, _, anchor = target.partition("#")
        path = (NOTEBOOK_DIR / name).resolve()
        if not name or not path.is_file():
            problems.append(f"link {target!r} does not resolve to a file")
            continue
        if path.suffix == ".ipynb":
            if not normalised(title(path)).startswith(normalised(label)):
                problems.append(f"link text {label!r} is not the start of {path.name}'s title {title(path)!r}")
            if earlier_only and path.name[:2] >= number:
                problems.append(f"{path.name} does not come before notebook {number}")
        elif anchor and anchor not in {slug(line.lstrip("#")) for line in path.read_text(encoding="utf-8").splitlines()
                                       if line.startswith("#")}:
            problems.append(f"link {target!r}: {path.name} has no heading with that anchor")
    return problems


def opening_problems(cells, number):
    """The first cell: its title, the numbered list of what you will learn, and what you need first."""
    opening = source(cells[0]) if cells and cells[0]["cell_type"] == "markdown" else ""
    title_line = f"# {number} · "
    problems = [] if opening.startswith(title_line) else [f"the first cell is not a markdown {title_line!r} title"]
    learn = LEARN.search(opening)
    items = re.findall(r"^(\d+)\. ", re.split(r"\n\s*\n", opening[learn.end():].strip("\n"))[0], re.M) if learn else []
    if len(items) < 2 or items != [str(count) for count in range(1, len(items) + 1)]:
        problems.append("no numbered list of at least two items after 'you will:' / 'You will learn:'")
    need = paragraph(opening, NEED)
    if need is None:
        problems.append(f"no paragraph starting {NEED!r}")
    else:
        problems += link_problems(need, number, earlier_only=True)
        if number != NUMBERS[0] and not LINK.search(need):
            problems.append(f"{NEED!r} links no earlier notebook")
    return problems


def run_time_problems(cells, number, times, goal):
    """The opening cell states the benchmark's times, once, and nothing else in the notebook restates them."""
    opening = source(cells[0])
    found = list(RUN_TIME.finditer(opening))
    if len(found) != 1:
        return [f"the first cell has {len(found)} run-time sentences, not one (see test_prose_numbers.RUN_TIME)"]
    stated = found[0].groupdict()
    measured = times["notebooks"].get(number, {})
    expected = {"warm": measured.get("warm"), "cold": measured.get("cold"), "cores": times["cores"],
                "measured_on": times["measured_on"]}
    problems = [f"run time: {key} is {stated[key]}, notebook_times.json says {value}"
                for key, value in expected.items() if str(stated[key]) != str(value)]
    rest_of_paragraph = re.split(r"\n\s*\n", opening[found[0].end():])[0]
    if measured.get("warm", 0) > goal and len(rest_of_paragraph.split()) < 5:
        problems.append(f"over the {goal} s goal with warm caches ({measured.get('warm')} s), and not saying why")
    problems += [f"cell {index} restates the run time: the opening cell is the one place"
                 for index, cell in enumerate(cells[1:], start=1)
                 if cell["cell_type"] == "markdown" and RUN_TIME.search(source(cell))]
    return problems


def parameters_problems(cells):
    """The parameters cell's comment lines state no time: the measured one is in the opening cell."""
    parameters = [cell for cell in cells if "parameters" in cell["metadata"].get("tags", [])]
    if len(parameters) != 1:
        return [f"{len(parameters)} cells tagged 'parameters', not one"]
    return [f"parameters comment states a time: {line.strip()!r}" for line in source(parameters[0]).splitlines()
            if line.lstrip().startswith("#") and TIME.search(line)]


def summary_text(cells):
    """The summary: from the '## Summary' heading up to the '## Exercises' cell; None if it is not there."""
    start = next((index for index, cell in enumerate(cells) if cell["cell_type"] == "markdown"
                  and "## Summary" in source(cell).splitlines()), None)
    end = next((index for index, cell in enumerate(cells) if cell["cell_type"] == "markdown"
                and source(cell).startswith("## Exercises")), None)
    if start is None or end is None or start > end:
        return None
    first = source(cells[start])
    parts = [first[first.index("## Summary"):]] + [source(cell) for cell in cells[start + 1:end]
                                                     if cell["cell_type"] == "markdown"]
    return "\n\n".join(parts)


def closing_problems(cells, number):
    """The summary recaps numbers and ends by naming every exercise and linking the next notebook."""
    summary = summary_text(cells)
    if summary is None:
        return ["no '## Summary' before '## Exercises'"]
    problems = []
    quoted = quoted_numbers(summary)
    if len(quoted) < MIN_SUMMARY_NUMBERS:
        problems.append(f"the summary quotes {len(quoted)} measured numbers, fewer than {MIN_SUMMARY_NUMBERS}")
    pointer = paragraph(summary, NEXT)
    if pointer is None:
        return problems + [f"the summary has no paragraph starting {NEXT!r}"]
    exercises = [exercise for cell in cells if cell["cell_type"] == "markdown"
                 for exercise in EXERCISE_HEADING.findall(source(cell))]
    if not exercises or EXERCISE_ID.findall(pointer) != exercises:
        problems.append(f"{NEXT!r} names exercises {EXERCISE_ID.findall(pointer)}, the notebook has {exercises}")
    problems += link_problems(pointer, number, earlier_only=False)
    targets = [target.partition("#")[0] for _, target in LINK.findall(pointer)]
    later = [other for other in NUMBERS if other > number]
    if later and PATHS[later[0]].name not in targets:
        problems.append(f"{NEXT!r} does not link the next notebook, {PATHS[later[0]].name}")
    if not later and ("last notebook" not in normalised(pointer) or not targets):
        problems.append(f"the last notebook's {NEXT!r} does not say it is the last and link where to go back to")
    return problems


@pytest.fixture(scope="module")
def times():
    return json.loads(TIMES_FILE.read_text(encoding="utf-8"))


def test_the_numbered_notebooks_are_there():
    assert NUMBERS == [f"{count:02d}" for count in range(1, len(NUMBERS) + 1)] and len(NUMBERS) >= 10


@pytest.mark.parametrize("number", NUMBERS)
def test_it_opens_with_what_you_will_learn_and_what_you_need_first(number):
    assert opening_problems(read_cells(PATHS[number]), number) == []


@pytest.mark.parametrize("number", list(PATHS))  # the explorer's frame too
def test_it_opens_with_its_measured_run_time(number, times):
    assert run_time_problems(read_cells(PATHS[number]), number, times, goal_seconds()) == []


@pytest.mark.parametrize("number", NUMBERS)
def test_its_parameters_cell_states_no_time(number):
    assert parameters_problems(read_cells(PATHS[number])) == []


@pytest.mark.parametrize("number", NUMBERS)
def test_its_summary_recaps_and_points_to_the_exercises_and_the_next_notebook(number):
    assert closing_problems(read_cells(PATHS[number]), number) == []


def test_the_times_file_covers_every_notebook(times):
    assert set(PATHS) <= set(times["notebooks"]), "run python benchmarks/bench_notebooks.py for the new ones"


# The checks catch what they are for: each case below breaks one thing in a copy of a real notebook.

def _opening_of(cells):
    return source(cells[0])


def _with_opening(cells, text):
    changed = copy.deepcopy(cells)
    changed[0]["source"] = text
    return changed


def test_a_re_measured_json_fails_until_the_notebook_says_the_same(times):
    cells = read_cells(PATHS["05"])
    remeasured = copy.deepcopy(times)
    remeasured["notebooks"]["05"]["warm"] += 1
    assert run_time_problems(cells, "05", remeasured, goal_seconds()) != []
    remeasured = {**copy.deepcopy(times), "measured_on": "2031-01-01"}
    assert run_time_problems(cells, "05", remeasured, goal_seconds()) != []


def test_a_missing_or_doubled_run_time_or_an_unexplained_slow_notebook_fails(times):
    cells = read_cells(PATHS["12"])  # over the minute, and saying why
    sentence = RUN_TIME.search(_opening_of(cells)).group()
    assert run_time_problems(_with_opening(cells, _opening_of(cells).replace(sentence, "")), "12", times, 60)
    assert run_time_problems(_with_opening(cells, _opening_of(cells) + "\n\n" + sentence), "12", times, 60)
    unexplained = _opening_of(cells)[:_opening_of(cells).index(sentence) + len(sentence)]
    assert run_time_problems(_with_opening(cells, unexplained), "12", times, 60) != []
    later = copy.deepcopy(cells)
    prose = next(cell for cell in later[1:] if cell["cell_type"] == "markdown")
    prose["source"] = source(prose) + "\n\n" + sentence
    assert run_time_problems(later, "12", times, 60) != []


def test_a_time_in_a_parameters_comment_fails():
    cells = copy.deepcopy(read_cells(PATHS["05"]))
    parameters = next(cell for cell in cells if "parameters" in cell["metadata"].get("tags", []))
    parameters["source"] = "# Defaults: the digits (measured: 59 s with warm caches).\n" + source(parameters)
    assert parameters_problems(cells) != []


def test_a_broken_or_later_prerequisite_link_fails():
    cells = read_cells(PATHS["05"])
    opening = _opening_of(cells)
    assert opening_problems(_with_opening(cells, opening.replace("04_training_the_teacher.ipynb",
                                                                 "04_training_the_teachers.ipynb")), "05")
    assert opening_problems(_with_opening(cells, opening.replace("04_training_the_teacher.ipynb",
                                                                 "06_sweeping_T_and_alpha.ipynb")), "05")
    assert opening_problems(_with_opening(cells, opening.replace(NEED, "**Before you start:**")), "05")
    assert opening_problems(_with_opening(cells, opening.replace("\n2. ", "\n- ")), "05")


def test_a_summary_that_misses_an_exercise_or_the_next_notebook_fails():
    cells = read_cells(PATHS["05"])
    summary_index = next(index for index, cell in enumerate(cells) if source(cell).startswith("## Summary"))

    def with_summary(edit):
        changed = copy.deepcopy(cells)
        changed[summary_index]["source"] = edit(source(changed[summary_index]))
        return changed

    assert closing_problems(with_summary(lambda text: text.replace("`05.3`", "`05.4`")), "05") != []
    assert closing_problems(with_summary(lambda text: text.replace("06_sweeping_T_and_alpha.ipynb",
                                                                   "07_dark_knowledge_the_missing_class.ipynb")),
                            "05") != []
    assert closing_problems(with_summary(lambda text: text.replace(NEXT, "Then:")), "05") != []
    assert closing_problems(with_summary(lambda text: "## Summary\n\nSee below.\n\n" + text[text.index(NEXT):]),
                            "05") != []


def test_a_link_to_a_missing_readme_heading_fails():
    assert link_problems("[the list](../README.md#the-notebooks)", "10", earlier_only=False) == []
    assert link_problems("[the list](../README.md#no-such-heading)", "10", earlier_only=False) != []
