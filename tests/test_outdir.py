import pytest

from tinyprune.errors import BadInput
from tinyprune.outdir import MARKER, staged_output, write_file_atomic


def test_success_renames_into_place(tmp_path):
    out = tmp_path / "run"
    with staged_output(out) as tmp:
        (tmp / "a.txt").write_text("x")
        assert not out.exists()
    assert (out / "a.txt").read_text() == "x"
    assert (out / MARKER).exists()
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_failure_leaves_nothing(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError):
        with staged_output(out) as tmp:
            (tmp / "a.txt").write_text("x")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_existing_needs_force_and_keeps_old_on_failure(tmp_path):
    out = tmp_path / "run"
    with staged_output(out) as tmp:
        (tmp / "v").write_text("1")
    with pytest.raises(BadInput, match="already exists"):
        with staged_output(out):
            pass
    with pytest.raises(KeyboardInterrupt):
        with staged_output(out, force=True) as tmp:
            (tmp / "v").write_text("2")
            raise KeyboardInterrupt
    assert (out / "v").read_text() == "1"
    with staged_output(out, force=True) as tmp:
        (tmp / "v").write_text("2")
    assert (out / "v").read_text() == "2"


def test_never_replaces_a_directory_tinyprune_did_not_create(tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(BadInput, match="not created by tinyprune"):
        with staged_output(out, force=True):
            pass
    assert (out / "thesis.tex").read_text() == "years of work"


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    stale = tmp_path / ".run.tinyprune-tmp-999999999-abcd"
    stale.mkdir()
    with staged_output(tmp_path / "run"):
        pass
    assert not stale.exists()


def test_write_file_atomic(tmp_path):
    path = tmp_path / "r.json"
    write_file_atomic(path, "{}")
    assert path.read_text() == "{}"
    with pytest.raises(BadInput, match="cannot write"):
        write_file_atomic(tmp_path / "missing" / "r.json", "{}")
