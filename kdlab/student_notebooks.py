"""The learner's copies of the notebooks: reference solutions removed, exercise outputs cleared.

`python -m kdlab student-notebooks OUT_DIR` writes notebooks 00-10 into OUT_DIR as committed, except that
cells tagged `solution` are removed (nbconvert's TagRemovePreprocessor) and cells tagged `exercise` lose
their outputs, so a learner sees each task and its starter but no answer. Every copy is marked in its
metadata: a later run replaces kdlab's own copies, and refuses, before writing anything, to overwrite a
file it did not write (the committed notebooks included).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from nbconvert.preprocessors import TagRemovePreprocessor

from kdlab.checkpoints import check_writable_folder, write_text_atomically

__all__ = ["NOTEBOOKS", "student_copy", "write_student_notebooks"]

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def student_copy(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A learner's copy of `notebook` (which is left unchanged)."""
    copy = nbformat.from_dict(json.loads(json.dumps(notebook)))
    copy, _ = TagRemovePreprocessor(remove_cell_tags={"solution"}).preprocess(copy, {})
    for cell in copy.cells:
        if cell.cell_type == "code" and "exercise" in cell.metadata.get("tags", []):
            cell.outputs, cell.execution_count = [], None  # the committed outputs show the reference's results
    copy.metadata["kdlab"] = {"student_copy": True}
    return copy


def write_student_notebooks(out_dir, source=NOTEBOOKS) -> list[Path]:
    """Write the learner's copy of every numbered notebook in `source` into `out_dir`; the paths written.

    ValueError, before anything is written, for an out_dir that is empty, a file or unwritable, and for a
    notebook's name there that holds anything but a copy this function wrote.
    """
    sources = sorted(Path(source).glob("[0-9][0-9]_*.ipynb"))
    if not sources:
        raise ValueError(f"no notebooks in {source}: student-notebooks copies the notebooks of a checkout of kdlab")
    if not str(out_dir).strip():
        raise ValueError("OUT_DIR needs a folder name, got an empty one")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file; give a folder for the learner's notebooks")
    check_writable_folder(out, "OUT_DIR")
    targets = [out / path.name for path in sources]
    foreign = [target.name for target in targets if (target.exists() or target.is_symlink())
               and not _is_student_copy(target)]
    if foreign:
        raise ValueError(f"{out} already holds {', '.join(foreign)}, which kdlab did not write as learner's copies; "
                         "nothing was written. Choose another folder, or move those files away")
    for path, target in zip(sources, targets):
        write_text_atomically(target, nbformat.writes(student_copy(nbformat.read(path, as_version=4))) + "\n")
    return targets


def _is_student_copy(path: Path) -> bool:
    """Whether `path` is a regular file holding a notebook that write_student_notebooks wrote."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        metadata = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return False
    return isinstance(metadata, dict) and metadata.get("kdlab") == {"student_copy": True}
