"""The README's quick start is what CI runs: exactly two commands, the second one in .ci/run."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _quick_start_commands():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_quick_start_has_two_commands():
    commands = _quick_start_commands()
    assert len(commands) == 2, commands
    assert "pip install" in commands[0] and "pip install" in commands[1]
    assert "pytest" in commands[1]
    assert "runs/" in commands[0]


def test_ci_runs_the_readme_test_command():
    with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as f:
        ci = f.read()
    assert _quick_start_commands()[1] in ci.splitlines()
    assert "-eq 5" in ci  # pytest's "no tests collected" must fail CI
    assert "export JOINTVAE_REQUIRE_TEST_DATA=1" in ci  # CI has ../shared/data: its tests may not skip
