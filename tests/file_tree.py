"""A snapshot of a folder's tree, to assert that a refused command touched nothing."""

import os


def snapshot(root):
    """{relative path: bytes, or None for a folder} of everything under root."""
    files = {}
    for folder, dirs, names in os.walk(root):
        for name in dirs:
            files[os.path.relpath(os.path.join(folder, name), root)] = None
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                files[os.path.relpath(os.path.join(folder, name), root)] = f.read()
    return files
