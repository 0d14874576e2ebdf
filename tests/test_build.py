"""Bazel BUILD coverage, checked without Bazel (its rules cannot be fetched offline here).

Every Python module of the project has a target in the BUILD file of its package (the
nearest folder with a BUILD file), every test module a py_test, every file a target names
exists, and every first-party dependency label names a target that is defined.
"""

import ast
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY_RULES = ("py_library", "py_binary", "py_test")
SKIP_DIRS = {".git", ".venv", "runs", "build", "dist", "__pycache__", ".pytest_cache"}


def _project_files():
    """Files git knows of (tracked or untracked, not ignored); falls back to a walk outside git."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
        return [f for f in out.splitlines() if os.path.exists(os.path.join(ROOT, f))]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for folder, dirs, names in os.walk(ROOT):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
            files += [os.path.relpath(os.path.join(folder, n), ROOT) for n in names]
        return files


def _string_list(node, build_file, field):
    if node is None:
        return []
    if isinstance(node, ast.List) and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
        return [e.value for e in node.elts]
    raise AssertionError(f"{build_file}: {field} must be a list of string literals")


def _targets():
    """{package: {name: (rule, srcs, deps)}} from every BUILD file."""
    packages = {}
    for path in _project_files():
        if os.path.basename(path) != "BUILD":
            continue
        package = os.path.dirname(path)
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
        targets = packages.setdefault(package, {})
        for statement in tree.body:
            call = statement.value if isinstance(statement, ast.Expr) else None
            if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
                continue
            fields = {k.arg: k.value for k in call.keywords}
            if "name" not in fields:
                continue
            name = fields["name"].value
            assert name not in targets, f"{path}: target {name!r} defined twice"
            rule = call.func.id
            srcs = _string_list(fields.get("srcs"), path, "srcs") if rule in PY_RULES else []
            deps = _string_list(fields.get("deps"), path, "deps")
            targets[name] = (rule, srcs, deps)
    return packages


PACKAGES = _targets()


def _package_of(path):
    folder = os.path.dirname(path)
    while folder not in PACKAGES:
        assert folder, f"{path} is in no Bazel package: add a BUILD file"
        folder = os.path.dirname(folder)
    return folder


def test_there_are_build_files():
    assert {"", "jointvae_tf", "tests"} <= set(PACKAGES)


def test_every_python_module_has_a_target():
    missing = []
    for path in _project_files():
        if not path.endswith(".py") or path == "setup.py" or path.startswith(".ci/"):
            continue
        package = _package_of(path)
        relative = os.path.relpath(path, package or ".")
        rules = [rule for rule, srcs, _ in PACKAGES[package].values() if relative in srcs]
        if not rules:
            missing.append(path)
        elif os.path.basename(path).startswith("test_") and "py_test" not in rules:
            missing.append(f"{path} (needs a py_test)")
    assert not missing, f"modules without a Bazel target: {missing}"


def test_every_named_source_exists():
    for package, targets in PACKAGES.items():
        for name, (_, srcs, _) in targets.items():
            for src in srcs:
                assert os.path.isfile(os.path.join(ROOT, package, src)), f"//{package}:{name} names missing {src}"


def test_every_dependency_resolves():
    for package, targets in PACKAGES.items():
        for name, (_, _, deps) in targets.items():
            for dep in deps:
                if dep.startswith("@"):
                    continue
                if dep.startswith(":"):
                    dep_package, dep_name = package, dep[1:]
                else:
                    assert dep.startswith("//"), f"//{package}:{name}: bad label {dep!r}"
                    dep_package, _, dep_name = dep[2:].partition(":")
                    dep_name = dep_name or os.path.basename(dep_package)
                assert dep_package in PACKAGES and dep_name in PACKAGES[dep_package], (
                    f"//{package}:{name} depends on {dep}, which no BUILD file defines"
                )


def test_checker_catches_a_module_without_target(tmp_path, monkeypatch):
    """The coverage check itself can fail: a module absent from srcs is reported."""
    monkeypatch.setitem(PACKAGES, "tests", {k: v for k, v in PACKAGES["tests"].items() if k != "test_build"})
    with pytest.raises(AssertionError, match="tests/test_build.py"):
        test_every_python_module_has_a_target()
