"""Atomic file writes: a reader sees the old file or the complete new one, never a partial one.

Every writer in the package goes through `atomic_path`: the content is written to a
temporary file in the destination's folder (same file system), then renamed over the
destination with `os.replace`. On any error the temporary file is removed. Files get the
usual permissions (0o666 less the umask), folders from `make_unique_dir` 0o777 less the umask.

`check_output_location` keeps a tool's output off its inputs: an output that is, contains
or sits inside an input (compared as real paths) is refused with a ValueError.

The implementation is `export.fileio` (standard library only, so that the TensorFlow-free
`export.decode_tflite` shares it); this module is its name inside the package.
"""

from export.fileio import (
    atomic_path,
    check_output_location,
    list_names,
    make_unique_dir,
    write_bytes,
    write_json,
)

__all__ = ["atomic_path", "check_output_location", "list_names", "make_unique_dir", "write_bytes", "write_json"]
