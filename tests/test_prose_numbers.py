"""A number in prose is a number printed by an output of the same notebook, at the precision written.

Checks every markdown cell of every notebook, and each row of README.md's notebook table against the
notebook it names, from the committed JSON: nothing is executed. A quoted number is *printed* when some
number in the notebook's code-cell outputs (stream text and every text/* output, HTML without its tags)
rounds to it at the quoted precision, and is written with at least that many decimals:

- "3.38" matches 3.3829, "3.35" does not; "0.73" matches 0.7301; "13 %" matches 12.9 % but not 12.29 %;
  "0.950" does not match a printed 0.95 (the prose claims a digit the output never showed).
- Percentages, percentage points and fractions are one quantity: a printed 0.934 also prints 93.4 % (and
  93.4 points), a printed 93.4 % also prints 0.934, the decimals shifted by two. A quoted percentage needs a
  printed percentage or fraction: "13 %" is not the 13.3 of "13.3 s".
- A sign written in the prose must be the printed one ("+2.00" matches +2.00 or 2.0012, not -2.00);
  an unsigned number matches either sign, because the prose says "below" or "fewer" in words.
- Thousands separators are ignored on both sides: "1,531,210" matches 1531210; "1.5 M" is 1,500,000 to
  the nearest 100,000.

Not every number in prose is a measurement. The exceptions, each because a reader sees at once what the
number is:

- Not prose: LaTeX maths, inline and fenced code, link targets and HTML are not read.
- Names: a number after a naming word (notebook 05, section 2.1, cell 3, step 2, bug 1, generations 1-3),
  glued to a word (CIFAR-10, vgg13, 3s, 1st), a shape (2×100, 8×8) or the level of an interval (95 % CI)
  names a thing rather than measuring it.
- Literature: a figure followed in its sentence, within a short distance, by an author-year citation
  ("146 errors (Hinton et al. 2015)", "Mirzadeh et al. (2020)") is the cited paper's number.
- Settings: a number that is a literal in a code cell's source of the same notebook (150 epochs, T = 4,
  5 seeds) is shown to the reader in the code that sets it; it counts as printed at its exact value (a
  percentage as its fraction: "90 %" is 0.9).
- Small counts and labels: a bare integer from 0 to 10 is a counting word or, here, a digit's class.
- Years: a bare integer from 1950 to 2049.
- Run times: the one sentence of a notebook's opening cell that ``RUN_TIME`` matches ("**Run time:** 59 s with
  warm caches, 80 s from a fresh clone, on a 2-core laptop CPU (measured by `python benchmarks/bench_notebooks.py`,
  2026-12-04).") quotes the benchmark, not an output of the notebook; test_notebook_frames.py holds its numbers to
  benchmarks/results/notebook_times.json instead. The same numbers anywhere else are measurements like any other.
- Anything else that is not a measurement carries an explicit marker right after it, invisible when the
  markdown is rendered: ``<!-- not measured -->``.

Prose that no output supports, and that needs a re-run to settle, is listed in ``KNOWN_OPEN`` with why;
the test fails when a listed discrepancy no longer occurs, so the list cannot go stale.
"""
import ast
import io
import json
import math
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# (notebook, cell index, number as written): why the prose cannot be fixed without a re-run.
KNOWN_OPEN: dict[tuple[str, int, str], str] = {}

MARKER = "<!-- not measured -->"
# The run-time sentence, exempt here because test_notebook_frames.py checks it against the benchmark's JSON.
# Written with single spaces; any run of whitespace (a wrapped line) matches one.
RUN_TIME = re.compile(
    r"\*\*Run time:\*\* (?P<warm>\d+) s with warm caches, (?P<cold>\d+) s from a fresh clone, on a "
    r"(?P<cores>\d+)-core laptop CPU \(measured by `python benchmarks/bench_notebooks\.py`, "
    r"(?P<measured_on>\d{4}-\d\d-\d\d)\)\.".replace(" ", r"\s+"))
NOT_PROSE = re.compile(
    r"```.*?```"                      # fenced code
    r"|\$\$.*?\$\$|\$[^$]*\$"         # maths
    r"|`[^`]*`"                       # inline code
    r"|<!--.*?-->|<[^>]+>"            # HTML comments and tags
    r"|\]\([^)]*\)"                   # link and image targets
    r"|https?://\S+",
    re.S)
NUMBER = r"\d{1,3}(?:,\d{3})+(?!\d)|\d+"
QUOTED = re.compile(rf"(?<![\w.,])([+\-−]?)({NUMBER})(\.\d+)?(?![\w]|\.\d)(\s?%|\s(?:M|million)\b)?")
NAMING = re.compile(
    r"\b(?:notebooks?|sections?|cells?|steps?|bugs?|generations?|chapters?|figures?|tables?)"
    rf"\s+(?:{NUMBER})(?:\.\d+)*(?:\s*(?:–|-|,|and|to)\s*(?:{NUMBER})(?:\.\d+)*)*"
    r"|\d+(?:×\d+)+"                                      # a shape: 2×100, 8×8
    r"|\b\d+\s?%(?=\s(?:confidence|intervals?|t-intervals?|CI)\b)",  # the level that names an interval
    re.I)
GLUED = re.compile(r"[A-Za-z]-?\d|\d[A-Za-z]")
AUTHOR_YEAR = re.compile(r"\b[A-Z][\w'’-]+(?: et al\.?| (?:&|and) [A-Z][\w'’-]+)?,? \(?(?:19|20)\d\d\b")
SENTENCE_END = re.compile(r"(?<!\bal)(?<!\be\.g)(?<!\bi\.e)[.!?](?:\s|$)|\n\s*\n|\n\s*[-*|]")
CITATION_REACH = 200
PRINTED = re.compile(rf"({NUMBER})(\.\d+)?(?:[eE]([+\-−]?\d+))?(\s?%)?")


@dataclass(frozen=True)
class Number:
    text: str
    value: float
    decimals: int
    sign: str = ""
    percent: bool = False


def _value(sign, integer, fraction):
    magnitude = float(integer.replace(",", "") + (fraction or ""))
    return -magnitude if sign in ("-", "−") else magnitude


def quoted_numbers(markdown):
    """The numbers a markdown text quotes as measurements, with the exceptions of the module docstring."""
    masked = RUN_TIME.sub(lambda m: " " * len(m.group()), markdown)
    masked = NOT_PROSE.sub(lambda m: " " * len(m.group()), masked)
    masked = NAMING.sub(lambda m: " " * len(m.group()), masked)
    numbers = []
    for match in QUOTED.finditer(masked):
        sign, integer, fraction, unit = match.groups()
        start, end = match.span()
        if GLUED.search(markdown[max(start - 2, 0):start + 1]) or GLUED.search(markdown[end - 1:end + 1]):
            continue
        if markdown[end:].lstrip(" ").startswith(MARKER):
            continue
        value, decimals = _value(sign, integer, fraction), len(fraction or ".") - 1
        bare_integer = not (sign or fraction or unit or "," in integer)
        if bare_integer and (value <= 10 or 1950 <= value <= 2049):
            continue
        if _cited(markdown, end):
            continue
        percent = "%" in (unit or "")
        if unit and not percent:
            value, decimals = value * 1e6, decimals - 6
        numbers.append(Number(match.group().strip(), value, decimals, sign, percent))
    return numbers


def _cited(markdown, end):
    """Whether an author-year citation follows, before the sentence ends."""
    rest = markdown[end:end + CITATION_REACH]
    sentence_end = SENTENCE_END.search(rest)
    citation = AUTHOR_YEAR.search(rest)
    return citation is not None and (sentence_end is None or citation.start() < sentence_end.start())


def printed_numbers(text):
    """Every number in an output's text; a fraction also as a percentage, a percentage also as a fraction."""
    numbers = []
    for match in PRINTED.finditer(text):
        integer, fraction, exponent, percent = match.groups()
        before = text[max(match.start() - 2, 0):match.start()]
        # a sign, unless the dash joins two numbers or words ("0.95-0.97", "seed-3")
        sign = before[-1] if before[-1:] in ("+", "-", "−") and not before[:-1].isalnum() else ""
        power = int(exponent.replace("−", "-")) if exponent else 0
        value = _value(sign, integer, fraction) * 10 ** power
        decimals = len(fraction or ".") - 1 - power
        written = sign + match.group().strip()
        as_other_unit = (Number(written, value / 100, decimals + 2) if percent
                         else Number(written, value * 100, decimals - 2, percent=True))
        numbers += [Number(written, value, decimals, percent=bool(percent)), as_other_unit]
    return numbers


def code_literals(source):
    """The numeric literals of a code cell: the settings a reader sees in the code."""
    literals = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.NUMBER and not token.string.lower().endswith("j"):
                literals.add(float(ast.literal_eval(token.string)))
    except tokenize.TokenError:
        pass  # an unfinished statement at the end: the literals before it still count
    return literals


def is_printed(quoted, printed):
    """Whether a printed number shows the quoted one, at the quoted precision and with its sign."""
    if printed.decimals < quoted.decimals or (quoted.percent and not printed.percent):
        return False
    if quoted.sign and (printed.value < 0) != (quoted.value < 0):
        return False
    difference = abs(abs(printed.value) - abs(quoted.value)) if not quoted.sign else abs(printed.value - quoted.value)
    return difference <= 0.5 * 10 ** -quoted.decimals + 1e-9


def nearest(quoted, printed):
    """The printed number closest to the quoted one in ratio, as written in the output."""
    same_unit = [number for number in printed if number.percent == quoted.percent] or printed
    if not same_unit:
        return "nothing printed"
    return min(same_unit, key=lambda number: abs(math.log((abs(number.value) + 1e-12) / (abs(quoted.value) + 1e-12)))
               ).text


@dataclass
class Notebook:
    name: str
    cells: list

    @classmethod
    def read(cls, path):
        return cls(path.name, json.loads(path.read_text(encoding="utf-8"))["cells"])

    def printed(self):
        numbers = []
        for cell in self.cells:
            for output in cell.get("outputs", []):
                numbers += printed_numbers(_output_text(output))
        return numbers

    def literals(self):
        return set().union(*(code_literals(_source(cell)) for cell in self.cells if cell["cell_type"] == "code"))

    def markdown_cells(self):
        return [(index, _source(cell)) for index, cell in enumerate(self.cells) if cell["cell_type"] == "markdown"]


def _source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _output_text(output):
    parts = [output.get("text", "")]
    for mime, content in output.get("data", {}).items():
        if mime.startswith("text/"):
            text = "".join(content) if isinstance(content, list) else content
            parts.append(re.sub(r"<[^>]+>", " ", text) if mime == "text/html" else text)
    return "\n".join("".join(part) if isinstance(part, list) else part for part in parts)


def discrepancies(prose, printed, literals):
    """(number as written, nearest printed) for each quoted number neither printed nor set in the code.

    A signed number is a change, never a setting: only an output can show it.
    """
    return [(quoted.text, nearest(quoted, printed)) for quoted in quoted_numbers(prose)
            if not (_set_in_code(quoted, literals) and not quoted.sign)
            and not any(is_printed(quoted, number) for number in printed)]


def _set_in_code(quoted, literals):
    return (round(quoted.value / 100, 12) if quoted.percent else quoted.value) in literals


def notebook_discrepancies(notebook):
    printed, literals = notebook.printed(), notebook.literals()
    return [(index, written, closest) for index, prose in notebook.markdown_cells()
            for written, closest in discrepancies(prose, printed, literals)]


def readme_rows():
    """README's notebook table: {notebook file: the row's text}."""
    rows = {}
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        row = re.match(r"\|\s*`(\d\d_\w+\.ipynb)`\s*\|(.*)\|\s*$", line)
        if row:
            rows[row.group(1)] = row.group(2)
    return rows


def unlisted_and_stale(name, found, known_open):
    """The discrepancies of a notebook that known_open does not list, and its entries that no longer occur."""
    listed = {key for key in known_open if key[0] == name}
    unlisted = [(f"{name} cell {index}", written, found[name, index, written])
                for name, index, written in sorted(found.keys() - listed)]
    return unlisted, sorted(listed - found.keys())


def _report(failures):
    return "\n".join(f"  {where}: prose {written!r}, nearest printed {closest!r}"
                     for where, written, closest in failures)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_every_number_in_a_notebooks_prose_is_printed_by_it(path):
    found = {(path.name, index, written): closest
             for index, written, closest in notebook_discrepancies(Notebook.read(path))}
    unlisted, stale = unlisted_and_stale(path.name, found, KNOWN_OPEN)
    assert not unlisted and not stale, (
        (f"numbers in prose that no output of {path.name} prints:\n{_report(unlisted)}\n" if unlisted else "")
        + (f"KNOWN_OPEN entries that no longer occur (remove them): {stale}" if stale else ""))


def test_readme_notebook_table_quotes_what_each_notebook_prints():
    rows = readme_rows()
    assert {path.name for path in NOTEBOOKS} <= rows.keys(), "every notebook has a row in README's table"
    failures = []
    for name, row in rows.items():
        notebook = Notebook.read(ROOT / "notebooks" / name)
        failures += [(f"README row {name}", written, closest)
                     for written, closest in discrepancies(row, notebook.printed(), notebook.literals())]
    assert not failures, "numbers in README's notebook table that the notebook does not print:\n" + _report(failures)


@pytest.mark.parametrize("prose, output, printed", [
    ("the scaled gradient reaches 3.38", "3.3829", True),
    ("the scaled gradient reaches 3.35", "3.3829", False),
    ("grows from 0.73", "tensor(0.7301)", True),
    ("about 13 % of them", "12.9%", True),
    ("about 13 % of them", "12.29 %", False),
    ("a gain of 93.4%", "distilled 0.934", True),
    ("a gain of 0.934", "distilled 93.4 %", True),
    ("about 13 % of them", "trained in 13.3 s", False),
    ("+2.00 points", "gain +2.00", True),
    ("+2.00 points", "gain 2.0012", True),
    ("+2.00 points", "gain -2.00", False),
    ("2.04 points below", "-2.04", True),
    ("+0.97 at most", "range 0.95-0.97", True),
    ("1,531,210 parameters", "1531210", True),
    ("1.5 M parameters", "1,531,210", True),
    ("1.6 M parameters", "1,531,210", False),
    ("0.950 of the digits", "0.95", False),
    ("a loss of 1.2e-05", "1.2e-05", True),
])
def test_a_quoted_number_is_printed_at_the_precision_written(prose, output, printed):
    assert (discrepancies(prose, printed_numbers(output), set()) == []) == printed


def test_deleting_a_digit_from_a_quoted_number_breaks_the_match():
    output = "student: 17,610 parameters; agreement 0.9496"
    assert discrepancies("17,610 parameters agree on 0.950", printed_numbers(output), set()) == []
    assert discrepancies("1,610 parameters agree on 0.950", printed_numbers(output), set()) == [
        ("1,610", "17,610")]
    assert discrepancies("17,610 parameters agree on 0.90", printed_numbers(output), set()) == [("0.90", "0.9496")]


@pytest.mark.parametrize("prose", [
    "146 errors (Hinton et al. 2015)",
    "3.5 % and 15.5 % validation error, as Furlanello et al. (2018) found",
    "see notebook 05 and section 2.1, cell 13",
    "at $T=20$ with `epochs=300`",
    "on CIFAR-10 and vgg13 in 2019",
    "a 2 and a 3, 10 classes",
    "a 2×1200 teacher on 28×28 images, a 95 % CI",
    "ImageNet's 1000 <!-- not measured --> classes",
    "**Run time:** 59 s with warm caches, 80 s from a fresh clone, on a 2-core laptop CPU (measured by\n"
    "`python benchmarks/bench_notebooks.py`, 2026-12-04).",
])
def test_names_citations_maths_code_and_marked_numbers_are_not_measurements(prose):
    assert discrepancies(prose, [], set()) == []


def test_only_the_run_time_sentence_itself_is_exempt():
    sentence = ("**Run time:** 59 s with warm caches, 80 s from a fresh clone, on a 2-core laptop CPU (measured by "
                "`python benchmarks/bench_notebooks.py`, 2026-12-04).")
    assert discrepancies(sentence + " The sweep takes 36 s.", [], set()) == [("36", "nothing printed")]
    assert discrepancies("It runs in 59 s with warm caches.", [], set()) == [("59", "nothing printed")]
    assert discrepancies(sentence.replace("80 s from a fresh clone", "80 s cold"), [], set()) != []


def test_a_literature_figure_needs_its_citation_in_the_same_sentence():
    assert discrepancies("146 errors. Hinton et al. 2015 say so.", [], set()) == [("146", "nothing printed")]


def test_a_known_discrepancy_that_no_longer_occurs_fails():
    found = {("05.ipynb", 6, "0.015"): "0.020"}
    known_open = {("05.ipynb", 6, "0.015"): "needs a re-run", ("05.ipynb", 8, "3.1"): "since fixed"}
    assert unlisted_and_stale("05.ipynb", found, known_open) == ([], [("05.ipynb", 8, "3.1")])
    assert unlisted_and_stale("05.ipynb", found, {}) == ([("05.ipynb cell 6", "0.015", "0.020")], [])


def test_a_setting_in_the_code_may_be_quoted():
    literals = code_literals("epochs = 150\nseeds = list(range(5))  # 20 in the paper\n")
    assert literals == {150.0, 5.0}
    assert discrepancies("150 epochs", [], literals) == []
    assert discrepancies("20 epochs", [], literals) == [("20", "nothing printed")]
    assert discrepancies("the first 90 % trains", [], code_literals("train_share = 0.9")) == []
    assert discrepancies("+150 points", [], literals) == [("+150", "nothing printed")]
