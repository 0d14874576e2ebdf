import json
import os
import stat

import pytest

from jointvae_tf import fileio


def test_writes_complete_files_with_usual_permissions(tmp_path):
    path = fileio.write_json(tmp_path / "a" / "x.json", {"b": 1, "a": [1, 2]})
    assert json.load(open(path)) == {"a": [1, 2], "b": 1}
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
    fileio.write_bytes(path, b"new")
    assert open(path, "rb").read() == b"new"
    assert os.listdir(tmp_path / "a") == ["x.json"]


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with fileio.atomic_path(path) as tmp:
            assert tmp.endswith(".keras") and os.path.dirname(tmp) == str(tmp_path)
            open(tmp, "wb").write(b"half")
            raise RuntimeError("crash mid-write")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.keras"]
