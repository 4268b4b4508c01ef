"""Crash safety of model files: a save killed at any moment leaves the complete old file or the
complete new one; a save that fails (file-size limit, disk full, no folder) says why, names the
file, and leaves the old file as it was."""

import errno
import re

import numpy as np
import pytest
from hardening_workers import distinct_model, run_worker

import slidenet as keras
from slidenet.models import ModelFileError

TRIALS = 40
TEMP = re.compile(r"\.model\.slidenet\.\w+\.tmp")


def identify(model, candidates):
    """Which candidate model ``model`` is, comparing every weight and optimizer array."""
    arrays = [*model.get_weights(), *model.optimizer.variables()]
    for i, other in enumerate(candidates):
        expected = [*other.get_weights(), *other.optimizer.variables()]
        if len(arrays) == len(expected) and all(
            np.array_equal(a, b) for a, b in zip(arrays, expected, strict=True)
        ):
            return i
    return None


def test_sigkill_during_saves_leaves_one_complete_model(tmp_path):
    report = run_worker("kill-saves", tmp_path, TRIALS, 7, timeout=120)
    models = [distinct_model(1), distinct_model(2)]
    seen, killed_mid_write, temps = [], 0, 0
    for trial, info in enumerate(report["trials"]):
        assert info["killed"], f"trial {trial}: the child was not killed by the signal"
        loaded = keras.load_model(tmp_path / f"after-kill-{trial:03d}.bin")
        which = identify(loaded, models)
        assert which is not None, f"trial {trial}: the file is a mix of the two models"
        assert loaded.optimizer.iterations == 1
        seen.append(which)
        others = [n for n in info["listing"] if n != "model.slidenet" and "after-kill" not in n]
        assert all(TEMP.fullmatch(n) for n in others), others  # only hidden temp files
        killed_mid_write += len(others) > temps  # a new temp file: killed inside a save
        temps = len(others)
    # the kills landed both between saves and inside them, and the file alternated
    assert killed_mid_write >= TRIALS // 8, killed_mid_write
    assert set(seen) == {0, 1}, seen
    # a left-over temp file is never taken for the model: the target still loads by its name
    assert identify(keras.load_model(tmp_path / "model.slidenet"), models) in (0, 1)


def test_file_size_limit_gives_a_clear_error_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.slidenet"
    small = distinct_model(1, width=8)
    small.save(target)
    before = target.read_bytes()
    result = run_worker("fsize-save", target, 1_000_000)  # the new model needs about 4 MB
    assert result["error"] == "OSError" and result["errno"] == errno.EFBIG, result
    assert (
        f"cannot save to '{target}': File too large; the existing file is unchanged"
        in (result["message"])
    )
    assert "ulimit -f" in result["message"]
    assert target.read_bytes() == before
    assert result["listing"] == ["model.slidenet"]  # the partial temp file was removed
    assert identify(keras.load_model(target), [small]) == 0


def test_disk_full_gives_a_clear_error_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "model.slidenet"
    model = distinct_model(1, width=8)
    model.save(target)
    before = target.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("slidenet.utils.files.os.fsync", full)
    with pytest.raises(OSError, match=r"No space left on device; the existing file is unchanged"):
        distinct_model(2, width=8).save(target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.slidenet"]


def test_saving_under_a_file_or_a_missing_folder_is_clear(tmp_path):
    model = distinct_model(1, width=8)
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder")
    with pytest.raises(NotADirectoryError, match=r"'.*notes\.txt' is a file, not a folder"):
        model.save(blocker / "model.slidenet")
    with pytest.raises(FileNotFoundError, match="folder '.*missing' does not exist"):
        model.save(tmp_path / "missing" / "model.slidenet")
    assert blocker.read_text() == "a file, not a folder"


def test_a_temp_file_left_by_a_kill_is_not_a_model(tmp_path):
    """What a SIGKILL can leave behind is a hidden temp file; reading one is a clean error."""
    target = tmp_path / "model.slidenet"
    distinct_model(1, width=8).save(target)
    blob = target.read_bytes()
    partial = tmp_path / ".model.slidenet.abc123.tmp"
    partial.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ModelFileError, match="not a valid zip"):
        keras.load_model(partial)


def test_extra_json_members_are_written_in_the_same_atomic_write(tmp_path):
    import json
    import zipfile

    from slidenet.models.saving import save_model

    path = tmp_path / "model.slidenet"
    save_model(distinct_model(1, width=8), path, extra_json={"run.json": {"epochs": 3}})
    with zipfile.ZipFile(path) as zf:
        assert json.loads(zf.read("run.json")) == {"epochs": 3}
    assert keras.load_model(path).epoch == 0
    with pytest.raises(ValueError, match=r"extra_json member '\.\./x\.json' must be"):
        save_model(distinct_model(1, width=8), path, extra_json={"../x.json": {}})
