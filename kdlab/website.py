"""The course as a static website: `python -m kdlab website OUT_DIR`.

Each numbered notebook becomes one page, in course order, from its committed outputs (nothing is
re-executed, so a build takes seconds and needs no data). nbconvert, already needed for the notebooks'
tests, renders the pages; KaTeX, vendored in website_static/katex, renders the equations in the reader's
browser, so a page loads nothing from another machine and the build needs no network either.

What a static page cannot do is said on it: a widget's controls need a running kernel, so each widget
shows what it captured when the notebook ran (its figure and the values of its controls) with the
command that makes it live. Cells tagged `solution` are collapsed dropdowns, closed until the reader
opens them; other cells whose code was hidden in JupyterLab stay hidden behind "Show code".

OUT_DIR must be new, empty, or a folder this command built before: it records what it wrote in
OUT_DIR/.kdlab-website and never replaces or removes a file that is not on that list.
"""

from __future__ import annotations

import html
import json
import os
import re
import secrets
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbconvert.filters import markdown2html

__all__ = ["NOTEBOOKS", "build", "course_notebooks"]

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
STATIC = Path(__file__).resolve().parent / "website_static"
MANIFEST = ".kdlab-website"
COURSE_TITLE = "kdlab: knowledge distillation, a course"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def course_notebooks(folder=NOTEBOOKS) -> list[Path]:
    """The numbered notebooks (`00_explorer.ipynb`, `01_...`) in course order."""
    folder = Path(folder)
    notebooks = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise ValueError(f"no course notebooks (NN_name.ipynb) in {folder}; run from a kdlab checkout, "
                         "or pass --notebooks with the folder that holds them")
    return notebooks


def build(out_dir, notebooks=None) -> list[Path]:
    """Write the site of the notebooks in `notebooks` (default: the repository's) into `out_dir`; return the paths
    written, index.html first.

    Raises ValueError, before anything is written, for an OUT_DIR that is not new, empty or an earlier
    build, or for a file of an earlier build's folder that the user put where a page now goes.
    """
    sources = course_notebooks(notebooks or NOTEBOOKS)
    assets = {f"assets/katex/{path.relative_to(STATIC / 'katex').as_posix()}": path
              for path in sorted((STATIC / "katex").rglob("*")) if path.is_file()}
    assets |= {f"assets/{name}": STATIC / name for name in ("site.css", "render-math.js")}
    names = ["index.html", *(f"{source.stem}.html" for source in sources), *assets, "assets/jupyterlab.css"]
    out_dir, previous = _check_out_dir(out_dir, names)

    read = [nbformat.read(source, as_version=4) for source in sources]
    chapters = [{"href": name, "title": _title(notebook)} for name, notebook in zip(names[1:], read)]
    contents = {"index.html": _render_index(read, chapters)}
    exporter = HTMLExporter(template_name="lab", extra_template_paths=[str(STATIC / "templates")],
                            template_file="page.html.j2")
    for position, (source, notebook) in enumerate(zip(sources, read)):
        contents[chapters[position]["href"]] = _render_notebook(
            exporter, notebook, f"notebooks/{source.name}", previous=chapters[position - 1] if position else None,
            following=chapters[position + 1] if position + 1 < len(chapters) else None)
    contents |= {name: path.read_bytes() for name, path in assets.items()}
    contents["assets/jupyterlab.css"] = "\n".join(
        exporter.environment.loader.get_source(exporter.environment, f"static/{name}")[0]
        for name in ("index.css", "theme-light.css")).encode()

    try:  # the manifest first, so that an interrupted build is still known to be this command's own
        out_dir.mkdir(parents=True, exist_ok=True)
        _replace(out_dir / MANIFEST, _manifest(sorted(set(previous) | set(names))))
        for name, data in contents.items():
            (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
            _replace(out_dir / name, data)
        for stale in set(previous) - set(names):
            if (out_dir / stale).is_file() and not (out_dir / stale).is_symlink():
                (out_dir / stale).unlink()
        _replace(out_dir / MANIFEST, _manifest(names))
    except OSError as error:
        raise ValueError(f"cannot write the website into {out_dir}: {error.strerror or error}") from None
    return [out_dir / name for name in names]


def _check_out_dir(out_dir, names: list[str]) -> tuple[Path, list[str]]:
    """OUT_DIR as a Path, with the files an earlier build wrote there (an empty list for a new folder)."""
    if not str(out_dir).strip():
        raise ValueError("OUT_DIR needs a folder name, got an empty one")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"OUT_DIR {out_dir} is a file; give a new or empty folder for the website")
    if not out_dir.exists():
        return out_dir, []
    mine = out_dir / MANIFEST
    present = sorted(child.name for child in out_dir.iterdir())
    if not mine.is_file() or mine.is_symlink():
        if present:
            shown = ", ".join(present[:5]) + (", ..." if len(present) > 5 else "")
            raise ValueError(f"OUT_DIR {out_dir} is not empty ({shown}) and was not built by `python -m kdlab "
                             "website`; give a new or empty folder, so that no file of yours is overwritten")
        return out_dir, []
    try:
        previous = json.loads(mine.read_text(encoding="utf-8"))["files"]
        if not all(isinstance(name, str) and _inside(name) for name in previous):  # a stale file is deleted
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"{mine} is not the list of files that `python -m kdlab website` writes; give a new "
                         "or empty folder") from None
    foreign = [name for name in names if os.path.lexists(out_dir / name) and name not in previous]
    foreign += [name for name in names if name in previous and os.path.lexists(out_dir / name)
                and ((out_dir / name).is_symlink() or not (out_dir / name).is_file())]
    if foreign:
        raise ValueError(f"OUT_DIR {out_dir} holds {', '.join(foreign)}, which an earlier build did not write "
                         "(or which is no longer a regular file); move it away or give another folder")
    return out_dir, previous


def _inside(name: str) -> bool:
    """Whether a name from a manifest stays inside OUT_DIR: relative, with no `..`."""
    path = Path(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts


def _manifest(names: list[str]) -> bytes:
    return json.dumps({"written_by": "python -m kdlab website", "files": names}, indent=1).encode()


def _replace(path: Path, data: bytes) -> None:
    """Write a temp file beside `path` and rename it over `path`, which replaces a link, never its target."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _title(notebook) -> str:
    """The notebook's first heading, as Markdown ("03 · Gradients and the $T^2$ factor")."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            heading = re.search(r"^#\s+(.+)$", cell.source, re.MULTILINE)
            if heading:
                return heading.group(1).strip()
    return "untitled"


def _summary(notebook) -> str:
    """The first paragraph after the notebook's title, to its last full sentence (most end in "You will:"), as
    HTML with its TeX left for KaTeX."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            paragraphs = [part for part in re.split(r"\n\s*\n", cell.source) if not part.lstrip().startswith("#")]
            if not paragraphs:
                return ""
            sentences = re.match(r"(.*[.?!])(\s|$)", paragraphs[0], re.DOTALL)
            return markdown2html(sentences.group(1) if sentences else paragraphs[0].rstrip(" ,;:") + "…")
    return ""


def _head() -> str:
    """The site's stylesheet and KaTeX, from the site's own files."""
    return ('<link rel="stylesheet" href="assets/katex/katex.min.css">\n'
            '<link rel="stylesheet" href="assets/site.css">\n'
            '<script defer src="assets/katex/katex.min.js"></script>\n'
            '<script defer src="assets/katex/auto-render.min.js"></script>\n'
            '<script defer src="assets/render-math.js"></script>\n')


def _render_index(notebooks: list, chapters: list[dict]) -> bytes:
    entries = "\n".join(f'<li><a href="{chapter["href"]}">{html.escape(chapter["title"], quote=False)}</a>\n'
                        f'{_summary(notebook)}</li>' for notebook, chapter in zip(notebooks, chapters))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{COURSE_TITLE}</title>
{_head()}</head>
<body class="kd-index">
<main>
<h1>{COURSE_TITLE}</h1>
<p>A large trained <em>teacher</em> gives a soft distribution over classes; a small <em>student</em> learns
from it and from the hard labels at once:</p>
$$L = \\alpha\\,T^2\\,\\mathrm{{KL}}\\big(\\mathrm{{softmax}}(z_t/T)\\,\\|\\,\\mathrm{{softmax}}(z_s/T)\\big)
+ (1-\\alpha)\\,\\mathrm{{CE}}\\big(y, \\mathrm{{softmax}}(z_s)\\big)$$
<p>These pages are the course's notebooks as they were last run, outputs and all. To run them yourself, from
the repository root: <code>jupyter lab notebooks/</code>; the explorer, with its sliders, is served by
<code>voila notebooks/00_explorer.ipynb</code>. Exercises' solutions are folded: open one once you have tried.</p>
<ol class="kd-course">
{entries}
</ol>
</main>
</body>
</html>
""".encode()


def _render_notebook(exporter, notebook, path: str, *, previous: dict | None, following: dict | None) -> bytes:
    """One page: the notebook with its widgets frozen, and links to the course and its neighbours."""
    _freeze_widgets(notebook, path)
    notebook.metadata["title"] = notebook.metadata.get("title") or _title(notebook).replace("$", "")
    body, _ = exporter.from_notebook_node(notebook, resources={
        "kdlab": {"head": _head(), "course": COURSE_TITLE, "previous": previous, "next": following}})
    return body.encode()


def _freeze_widgets(notebook, path: str) -> None:
    """Replace each widget output by what a static page can show: a note with the command that makes it
    live, the values of its controls, and the figure it showed (an Output widget's captured outputs, or what
    the widget saved beside itself for readers without a kernel). The widgets' state leaves the page, so no
    renderer is fetched."""
    state = notebook.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in notebook.cells:
        if cell.cell_type != "code" or not any(WIDGET_VIEW in output.get("data", {}) for output in cell.outputs):
            continue
        outputs = []
        for output in cell.outputs:
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view is None:
                outputs.append(output)
                continue
            controls, captured = _widget_contents(view["model_id"], state)
            outputs.append(nbformat.v4.new_output("display_data", {"text/html": _live_note(path, controls)}))
            outputs.extend(captured)
            beside = {kind: value for kind, value in output.data.items() if kind != WIDGET_VIEW}
            if "image/png" in beside and "text/html" not in beside:  # its text as alt, which nbconvert would not add
                alt = html.escape(beside.get("text/plain", "the widget as it was drawn"))
                beside["text/html"] = f'<img src="data:image/png;base64,{beside["image/png"].strip()}" alt="{alt}">'
            if set(beside) - {"text/plain"}:  # a widget's text alone is its repr, "interactive(children=...)"
                outputs.append(nbformat.v4.new_output("display_data", beside, metadata=output.get("metadata", {})))
        cell.outputs = outputs


def _widget_contents(model_id: str, state: dict) -> tuple[list[str], list]:
    """("T = 12", ...) for the controls under a widget, and the outputs its Output widgets captured."""
    model = state.get(model_id, {})
    values = model.get("state", {})
    controls, captured = [], []
    name, label = model.get("model_name", ""), values.get("description")
    if name == "OutputModel":
        captured.extend(nbformat.from_dict(output) for output in values.get("outputs", []))
    elif not label or "Progress" in name:  # a progress bar's value is no setting
        pass
    elif "index" in values and "_options_labels" in values:
        controls.append(f"{label} = {values['_options_labels'][values['index']]}")
    elif "value" in values:
        value = values["value"]
        controls.append(f"{label} = {value:g}" if isinstance(value, float) else f"{label} = {value!r}")
    for child in values.get("children", []):
        more_controls, more_captured = _widget_contents(child.removeprefix("IPY_MODEL_"), state)
        controls += more_controls
        captured += more_captured
    return controls, captured


def _live_note(path: str, controls: list[str]) -> str:
    shown = f" It is shown at {html.escape(', '.join(controls))}." if controls else ""
    return (f'<p class="kd-live">Interactive: its controls need a running kernel.{shown} To use them, run '
            f"<code>voila {html.escape(path)}</code> from the repository root, or open the notebook in "
            "JupyterLab.</p>")
