"""Set `slideshow.slide_type` on every cell of the numbered notebooks (metadata only; sources and outputs untouched).

    python scripts/slide_metadata.py        # after adding or rewriting cells; safe to run again at any time

Each cell gets a rule's slide type, unless OVERRIDES names it (by the start of its source) for its notebook and
the rule would show it:
prose that opens a section (a `#`/`##` heading anywhere in it) opens a slide, other prose a vertical slide;
an output is a fragment under the prose that introduces it; the set-up cell's printout (the data and the
teacher) is the title slide's speaker notes; code without output and tagged cells (parameters, solution,
lesson) are skipped; in an "Exercises" section each exercise is a vertical slide and its code is skipped.
"""

import sys
from pathlib import Path

import nbformat

SKIPPED_TAGS = {"parameters", "solution", "lesson"}

# Per notebook: the start of a cell's source -> its slide type, where the rule is not what a lecturer needs:
# notes for long readings a lecturer says aloud, a slide of its own for a figure too tall to share one.
OVERRIDES = {
    "00": {"from kdlab.explorer_data import": "subslide",
           "## What the panels show": "notes",
           "# Panel (d) in numbers": "subslide"},
    "01": {"def show_image_and_targets": "subslide",
           "table = pd.DataFrame": "subslide",
           "Read the table down a column": "fragment",
           "def entropy(logits, T)": "subslide",
           "similarity = class_similarity": "subslide",
           "closest = similarity": "subslide",
           "mistakes = torch.nonzero": "subslide"},
    "02": {"Then on the real batch": "fragment",
           "**$\\alpha$ moves the weight": "fragment",
           "In eval mode every call agrees": "fragment",
           "from kdlab.conventions import": "subslide"},
    "03": {"The same check on the real logits": "fragment",
           "gradient_size = np.array": "subslide",
           "T = 1000.0": "subslide"},
    "04": {"teacher = build_model(spec, seed=seed)": "subslide",
           "pool_logits = predict_logits": "subslide",
           "wrong_mass = ": "subslide"},
    "05": {"def summary_table(results)": "subslide",
           "class UniformTeacher": "subslide",
           "weak_spec = student_spec": "subslide",
           "The student is 87x smaller": "fragment"},
    "06": {"Is the batched pass really": "fragment",
           "chosen = best_cell(grid)": "subslide"},
    "07": {"students = {kind: students_by_seed": "subslide",
           "biases = torch.linspace": "subslide",
           "runs, right = [], {}": "subslide"},
    "08": {'curves = {name: np.array(': "subslide",
           "passes_per_step = student_steps": "notes",
           'prompt = "The "': "subslide",
           "widgets.interact(plot_next_character": "subslide"},
    "09": {"spec = student_spec(pool.input_shape, student_size": "notes",
           "**The budget first.**": "notes"},
    "10": {"with torch.no_grad():": "subslide"},
    "12": {"def plot_toy(mix=0.1)": "subslide",
           "points = pd.DataFrame([": "subslide",
           "differences = {name: paired(results": "subslide"},
}


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def sections(cell) -> list[str]:
    """The `#` and `##` headings in a markdown cell."""
    lines = cell.source.splitlines() if cell.cell_type == "markdown" else []
    return [line for line in lines if line.startswith(("# ", "## "))]


def rule(cell, section: str, after_parameters: bool) -> str:
    tags = set(cell.metadata.get("tags", []))
    if cell.cell_type == "markdown":
        return "slide" if sections(cell) else "subslide"
    outputs = cell.get("outputs", [])
    if cell.cell_type != "code" or tags & SKIPPED_TAGS or not outputs or "exercise" in section.lower():
        return "skip"
    if after_parameters and not any(WIDGET_VIEW in output.get("data", {}) for output in outputs):
        return "notes"
    return "fragment"


def slide_types(notebook, overrides: dict) -> list[str]:
    types, section, previous_tags = [], "", set()
    for cell in notebook.cells:
        section = (sections(cell) or [section])[-1]
        kind = rule(cell, section, "parameters" in previous_tags)
        chosen = [chosen for start, chosen in overrides.items() if cell.source.lstrip().startswith(start)]
        types.append(chosen[0] if chosen and kind != "skip" else kind)  # what the rule skips stays skipped
        previous_tags = set(cell.metadata.get("tags", []))
    return types


def main(repo: Path) -> None:
    for path in sorted((repo / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        overrides = OVERRIDES.get(path.name[:2], {})
        unused = [start for start in overrides if not any(c.source.lstrip().startswith(start) for c in notebook.cells)]
        if unused:
            print(f"{path.name}: no cell starts with {unused}", file=sys.stderr)
        changed = 0
        for cell, kind in zip(notebook.cells, slide_types(notebook, overrides)):
            if cell.metadata.get("slideshow", {}).get("slide_type") != kind:
                cell.metadata["slideshow"] = {**cell.metadata.get("slideshow", {}), "slide_type": kind}
                changed += 1
        if changed:
            nbformat.write(notebook, path)
        print(f"{path.name}: {changed} of {len(notebook.cells)} cells changed")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
