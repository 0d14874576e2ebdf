"""Writing files safely: atomic writes, permissions that follow the umask, outputs kept off inputs.

The one implementation of the project's file writing; `jointvae_tf.fileio` re-exports it.
It lives here, and imports only the standard library, because `export.decode_tflite` runs on
devices without TensorFlow, and importing anything under `jointvae_tf` loads TensorFlow
(`jointvae_tf/__init__.py` imports the model).

    atomic_path(path)       a temporary file next to `path`, renamed onto it when the block succeeds
    write_bytes, write_json whole files through `atomic_path`
    make_unique_dir         a new, uniquely named folder (e.g. a staging folder)
    check_output_location   refuses an output that is, contains or sits inside an input
    list_names              names for a one-line error (the files an --overwrite would not delete)

Permissions: files are created with mode 0o666 and folders with 0o777, both reduced by the
process umask, as `open()` and `os.makedirs` create them: 0644 / 0755 under the usual umask
022, 0600 / 0700 under 077. (`tempfile.mkstemp` and `mkdtemp` would create 0600 / 0700
whatever the umask, and the rename would carry that mode to the published file.) The umask
is never changed, not even briefly, so other threads are unaffected.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from typing import Any, Callable, Iterator, Mapping, Sequence

_ATTEMPTS = 100


def _create_unique(folder: str, prefix: str, suffix: str, create: Callable[[str], None]) -> str:
    """`create(path)` on a new random name `folder/prefix<random>suffix`; returns the path."""
    for _ in range(_ATTEMPTS):
        path = os.path.join(folder, f"{prefix}{secrets.token_hex(6)}{suffix}")
        try:
            create(path)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no unused name {prefix}...{suffix} in {folder} after {_ATTEMPTS} attempts")


def _create_file(path: str) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the kernel applies the umask


def make_unique_dir(parent: str | os.PathLike, prefix: str) -> str:
    """Creates a new folder `parent/prefix<random>` (like `tempfile.mkdtemp`, mode 0o777 less the umask).

    Returns:
      Its absolute path. `parent` must exist.
    """
    parent = os.path.abspath(os.fspath(parent))
    return _create_unique(parent, prefix, "", lambda path: os.mkdir(path, 0o777))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yields a temporary path next to `path` (same extension); renames it onto `path` on success.

    For writers that take a file name, e.g. `model.save(tmp)`. The file exists (empty) when
    yielded; the published file has mode 0o666 less the umask, also when the writer replaced
    the temporary file with one of its own. On any error the temporary file is removed and
    `path` is left as it was.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = _create_unique(folder, f".tmp-{os.path.basename(path)}-", os.path.splitext(path)[1], _create_file)
    try:
        mode = stat.S_IMODE(os.stat(tmp).st_mode)  # 0o666 less the umask, as created
        yield tmp
        if stat.S_IMODE(os.stat(tmp).st_mode) != mode:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)


def write_bytes(path: str | os.PathLike, data: bytes) -> str:
    """Writes `data` to `path` atomically; returns the path."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return os.fspath(path)


def write_json(path: str | os.PathLike, value: Any, sort_keys: bool = True, allow_nan: bool = True) -> str:
    """Writes `value` as indented JSON (keys sorted unless `sort_keys=False`) to `path` atomically.

    `allow_nan=False` writes strict JSON: NaN and infinities are refused (ValueError naming the
    file) rather than written as bare NaN/Infinity, which parsers other than Python's reject;
    settings files use it. Measurements keep Python's extension: infinity can be the true
    value (the PSNR of an exact decoder), and a NaN metric is a result to keep, not to lose.
    """
    try:
        text = json.dumps(value, indent=2, sort_keys=sort_keys, allow_nan=allow_nan)
    except ValueError as error:
        raise ValueError(f"cannot write {os.fspath(path)}: {error} (NaN or infinity in the values)") from None
    return write_bytes(path, (text + "\n").encode("utf-8"))


# --------------------------------------------------------------------------- outputs and inputs
def list_names(names: Sequence[str], limit: int = 5) -> str:
    """"a, b, c" for an error message; past `limit` names, "a, b, c, d, e, ... (12 in all)"."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names)} in all)"


def _is_inside(path: str, folder: str) -> bool:
    """Whether the real path `path` lies strictly below the real path `folder`."""
    return path != folder and os.path.commonpath([path, folder]) == folder


def _shown(path: str | os.PathLike) -> str:
    """`path` as given, with its real path when a symlink or `..` makes them differ."""
    path = os.fspath(path)
    real = os.path.realpath(path)
    return path if real == os.path.abspath(path) else f"{path} (real path {real})"


def check_output_location(
    output: str | os.PathLike, inputs: Mapping[str, str | os.PathLike], output_name: str = "output"
) -> None:
    """Raises ValueError if `output` is, contains or sits inside one of `inputs`.

    A tool that replaces its output folder would otherwise delete what it reads (and, for an
    output above an input, everything beside it). Paths are compared as real paths
    (`os.path.realpath`), so symlinks and `..` cannot hide an overlap; they need not exist.

    Args:
      output: the file or folder a tool writes or replaces.
      inputs: {name: path} of what it reads, e.g. {"--model_dir": "runs/mnist"}; names appear in the error.
      output_name: how the error names `output`, e.g. "--output_dir".

    Raises:
      ValueError: one line naming both paths.
    """
    real_output = os.path.realpath(output)
    for name, path in inputs.items():
        real_input = os.path.realpath(path)
        if real_output == real_input:
            relation = "is"
        elif _is_inside(real_input, real_output):
            relation = "contains"
        elif _is_inside(real_output, real_input):
            relation = "is inside"
        else:
            continue
        raise ValueError(
            f"{output_name} {_shown(output)} {relation} {name} {_shown(path)}: an output may not be, contain or "
            "sit inside an input, since replacing it would delete the input"
        )
