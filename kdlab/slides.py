"""The notebooks as reveal.js decks: `python -m kdlab slides OUT_DIR` writes one static deck per notebook.

A deck is made from the notebook's committed outputs and opens from file:// with no network: reveal.js (in
`slides_static/`, see its README) and KaTeX (the website's copy) are written beside the decks. Like Voila's live
deck (`voila --template=reveal`), it shows the markdown and the outputs, not the code. A widget needs a kernel,
so a static deck shows what the notebook captured of it (the picture an anywidget or an `interact` left) and the
command that runs it live. Slide boundaries and speaker notes are the cells' `slideshow` metadata.
"""

from __future__ import annotations

import copy
import html
import json
from pathlib import Path

import nbformat

from kdlab.checkpoints import check_writable_folder

__all__ = ["NOTEBOOKS", "slide_count", "static_notebook", "deck_html", "write_decks"]

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
STATIC = Path(__file__).with_name("slides_static")
KATEX = Path(__file__).with_name("website_static") / "katex"  # the one copy of KaTeX, shared with the website
TEMPLATE = "kdlab-deck.html.j2"
MANIFEST = ".kdlab-slides.json"  # the files a previous run wrote, which a later run may replace
SIZE = (1280, 720)  # a projector's pixels: a deck is laid out for them, then scaled to the window
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def slide_count(notebook) -> int:
    """How many slides reveal.js shows for `notebook`: as nbconvert lays a deck out, the first shown cell opens
    one, and so does every later cell marked `slide` or `subslide`; skipped cells and speaker notes open none."""
    kinds = [cell.metadata.get("slideshow", {}).get("slide_type", "-") for cell in notebook.cells]
    shown = [index for index, kind in enumerate(kinds) if kind not in ("skip", "notes")]
    if not shown:
        return 0
    return 1 + sum(kind in ("slide", "subslide") for kind in kinds[shown[0] + 1:])


def static_notebook(notebook, live_command: str):
    """A copy of `notebook` whose widget outputs are replaced by what they captured and a note that says how to
    run them live; its widget state is dropped, so the deck needs no widget renderer."""
    deck = copy.deepcopy(notebook)
    state = deck.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    note = nbformat.v4.new_output("display_data", data={
        "text/html": f'<p class="kdlab-live">Live, with its controls: <code>{html.escape(live_command)}</code></p>'})
    for cell in deck.cells:
        if cell.cell_type == "code":
            cell.outputs = [shown for output in cell.outputs for shown in _static_outputs(output, state, note)]
    return deck


def _static_outputs(output, state: dict, note) -> list:
    view = output.get("data", {}).get(WIDGET_VIEW)
    if view is None:
        return [output]
    picture = {kind: data for kind, data in output["data"].items() if kind.startswith("image/")}
    pictures = [nbformat.v4.new_output("display_data", data=picture)] if picture else []
    return pictures + _captured(view["model_id"], state) + [note]


def _captured(model_id: str, state: dict) -> list:
    """The outputs that Output widgets in widget `model_id` hold, depth first: an `interact`'s figure and text."""
    model = state.get(model_id, {}).get("state", {})
    found = [nbformat.from_dict(output) for output in model.get("outputs", [])]
    for child in model.get("children", []):
        found += _captured(child.removeprefix("IPY_MODEL_"), state)
    return found


def deck_html(path: Path) -> str:
    """The static deck of the notebook at `path`, as HTML that loads its assets from beside itself."""
    from nbconvert import SlidesExporter  # loaded by this command only

    exporter = SlidesExporter(
        extra_template_paths=[str(STATIC)], template_file=TEMPLATE, reveal_url_prefix="reveal.js",
        reveal_theme="kdlab", reveal_width=str(SIZE[0]), reveal_height=str(SIZE[1]),
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    notebook = static_notebook(nbformat.read(path, as_version=4),
                               f"voila --template=reveal notebooks/{path.name}")
    body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": path.stem}})
    return body


def _assets() -> dict[Path, Path]:
    """The files the decks load: their paths relative to the decks, and where they come from."""
    folders = {Path("reveal.js"): STATIC / "reveal.js", Path("katex"): KATEX}
    files = {target / path.relative_to(source): path
             for target, source in folders.items() for path in sorted(source.rglob("*")) if path.is_file()}
    return files | {Path(name): STATIC / name for name in ("kdlab-deck.css", "kdlab-deck.js")}


def _previous_files(out_dir: Path) -> set[str]:
    """The files that earlier runs wrote into `out_dir`, as their manifest lists them."""
    manifest = out_dir / MANIFEST
    if not manifest.exists() and not manifest.is_symlink():
        return set()
    try:
        if manifest.is_symlink():
            raise ValueError("a symbolic link")
        return set(json.loads(manifest.read_text())["written by kdlab slides"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"{manifest} is not the list of files that kdlab slides writes; "
                         "give a folder of your own for the decks") from None


def _check_out_dir(out_dir: Path, targets: list[Path]) -> set[str]:
    """The files earlier runs wrote into `out_dir`, after refusing a folder that is a file, cannot be written
    to, or holds something where a deck's file goes that kdlab slides did not write."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} is a file; give a folder for the decks")
    check_writable_folder(out_dir, "OUT_DIR")
    previous = _previous_files(out_dir)
    in_the_way = set()
    for target in targets:
        for part in (*reversed(target.parents[:-1]), target):  # katex, katex/fonts, katex/fonts/x.woff2
            path = out_dir / part
            ours = part.as_posix() in previous or (part != target and path.is_dir())
            if path.is_symlink() or (path.exists() and not ours):
                in_the_way.add(part.as_posix())
                break
    if in_the_way:
        raise ValueError(f"{out_dir} holds {', '.join(sorted(in_the_way)[:5])}, which kdlab slides did not write, "
                         "where the decks go; nothing was written. Choose another folder, or move those away")
    return previous


def write_decks(out_dir, source=NOTEBOOKS) -> list[Path]:
    """Write a deck of every numbered notebook in `source` (`NN_name.html`), and what the decks load, into
    `out_dir`; the decks' paths.

    Replaces only files that earlier runs wrote there (listed in `MANIFEST`). ValueError, before anything is
    written, for an out_dir that is a file or unwritable, or that holds something else where a file goes."""
    notebooks = sorted(Path(source).glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise ValueError(f"no notebooks (NN_name.ipynb) in {source}: slides makes decks of a kdlab checkout's")
    if not str(out_dir).strip():
        raise ValueError("OUT_DIR needs a folder name, got an empty one")
    out_dir = Path(out_dir)
    decks = [Path(f"{notebook.stem}.html") for notebook in notebooks]
    assets = _assets()
    previous = _check_out_dir(out_dir, decks + list(assets))
    written = sorted(previous | {path.as_posix() for path in decks + list(assets)})
    # The manifest first, so that an interrupted run's files are still known to be this command's own.
    (out_dir / MANIFEST).write_text(json.dumps({"written by kdlab slides": written}, indent=1))
    for target, path in assets.items():
        (out_dir / target).parent.mkdir(parents=True, exist_ok=True)
        (out_dir / target).write_bytes(path.read_bytes())
    for notebook, deck in zip(notebooks, decks):
        (out_dir / deck).write_text(deck_html(notebook), encoding="utf-8")
    return [out_dir / deck for deck in decks]
