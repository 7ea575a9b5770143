"""The learner's copies: no reference solution, no output of an exercise cell, everything else as committed; and a
writer that refuses, before writing anything, every OUT_DIR it could only damage."""

import json

import nbformat
import pytest

from kdlab.__main__ import main
from kdlab.student_notebooks import NOTEBOOKS, student_copy, write_student_notebooks


def _notebook(cells):
    return nbformat.v4.new_notebook(cells=cells)


def _output(text):
    return nbformat.v4.new_output("stream", text=text)


def _tags(cell):
    return cell.metadata.get("tags", [])


def test_a_copy_drops_solutions_clears_exercise_outputs_and_keeps_the_rest():
    lesson = nbformat.v4.new_code_cell("print(1)", outputs=[_output("1\n")], execution_count=1)
    starter = nbformat.v4.new_code_cell('check("01.1", f)', outputs=[_output("✗ 01.1: hint\n")], execution_count=2,
                                        metadata={"tags": ["exercise"]})
    solution = nbformat.v4.new_code_cell("def f(): ...", metadata={"tags": ["solution"],
                                                                   "jupyter": {"source_hidden": True}})
    notebook = _notebook([nbformat.v4.new_markdown_cell("# 01"), lesson, starter, solution])
    copy = student_copy(notebook)
    assert [cell.source for cell in copy.cells] == ["# 01", "print(1)", 'check("01.1", f)']
    assert copy.cells[1].outputs == lesson.outputs and copy.cells[1].execution_count == 1
    assert copy.cells[2].outputs == [] and copy.cells[2].execution_count is None
    assert copy.metadata["kdlab"] == {"student_copy": True}
    assert len(notebook.cells) == 4 and starter.outputs, "the original is left as it was"


def test_the_learners_copies_of_the_repository_notebooks(tmp_path):
    written = write_student_notebooks(tmp_path)
    committed = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    assert [path.name for path in written] == [path.name for path in committed] and len(written) >= 13
    for original_path, copy_path in zip(committed, written):
        original, copy = (nbformat.read(path, as_version=4) for path in (original_path, copy_path))
        kept = [cell for cell in original.cells if "solution" not in _tags(cell)]
        assert len(copy.cells) == len(kept), copy_path.name
        for before, after in zip(kept, copy.cells):
            assert after.source == before.source and after.metadata == before.metadata
            if after.cell_type == "code" and "exercise" in _tags(after):
                assert after.outputs == [] and after.execution_count is None
            else:
                assert after == before, f"{copy_path.name}: a cell outside the exercises changed"
        if original_path.name[:2] != "00":
            assert any("solution" in _tags(cell) for cell in original.cells)
            assert not any("solution" in _tags(cell) for cell in copy.cells)
            assert any('check("' in cell.source for cell in copy.cells), "the starters stay"


def test_a_second_run_replaces_its_own_copies_and_leaves_other_files_alone(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    first = write_student_notebooks(tmp_path)
    edited = nbformat.read(first[1], as_version=4)
    edited.cells[0].source = "an edit"
    nbformat.write(edited, first[1])
    assert write_student_notebooks(tmp_path) == first
    assert nbformat.read(first[1], as_version=4) == student_copy(nbformat.read(NOTEBOOKS / first[1].name,
                                                                               as_version=4))
    assert notes.read_text() == "mine"


@pytest.mark.parametrize("occupant", ["the committed notebook", "some other text", "a folder", "a symbolic link"])
def test_a_name_taken_by_anything_kdlab_did_not_write_is_refused_and_nothing_is_written(tmp_path, occupant):
    name = "03_gradients_and_the_T2_factor.ipynb"
    target, elsewhere = tmp_path / name, tmp_path.parent / f"{tmp_path.name}-elsewhere.txt"
    if occupant == "the committed notebook":
        target.write_bytes((NOTEBOOKS / name).read_bytes())
    elif occupant == "some other text":
        target.write_text("a learner's own work")
    elif occupant == "a folder":
        target.mkdir()
    else:
        elsewhere.write_text("not a notebook")
        target.symlink_to(elsewhere)
    before = sorted(path.name for path in tmp_path.iterdir())
    with pytest.raises(ValueError, match=f"{name}.*nothing was written"):
        write_student_notebooks(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == before
    if occupant == "some other text":
        assert target.read_text() == "a learner's own work"
    if occupant == "a symbolic link":
        assert elsewhere.read_text() == "not a notebook"


def test_an_out_dir_that_is_a_file_empty_or_unwritable_is_refused(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        write_student_notebooks(a_file)
    with pytest.raises(ValueError, match="cannot write into"):
        write_student_notebooks(a_file / "below a file")
    with pytest.raises(ValueError, match="empty"):
        write_student_notebooks(" ")
    assert a_file.read_text() == "x"


def test_a_folder_without_notebooks_says_so(tmp_path):
    with pytest.raises(ValueError, match="no notebooks"):
        write_student_notebooks(tmp_path / "out", source=tmp_path)


def test_the_command_line(run_cli, tmp_path, capsys):
    done = run_cli("student-notebooks", str(tmp_path / "learners"))
    assert done.returncode == 0, done.stderr
    assert f"{len(list(NOTEBOOKS.glob('[0-9][0-9]_*.ipynb')))} notebooks" in done.stdout
    assert json.loads((tmp_path / "learners" / "01_soft_targets_and_temperature.ipynb").read_text())["metadata"][
        "kdlab"] == {"student_copy": True}
    (tmp_path / "file").write_text("x")
    assert main(["student-notebooks", str(tmp_path / "file")]) == 1
    assert "is a file" in capsys.readouterr().err
    assert (tmp_path / "file").read_text() == "x"
