"""Several runs of one absl binary in a single fresh Python process: one TensorFlow import instead of one per run.

Each run goes through absl's `app.run` and the binary's `main`, as `python -m MODULE ARGS...` does, with
the flags reset to their defaults before it, its own umask (if given), and its stdout and stderr captured.
What a run returns is what its own process would have: the exit code (`sys.exit`'s), what it printed, and
a traceback in stderr if an exception escaped `app.run`. (absl's log lines go to the helper process's
stderr, not to a run's: tests check the lines the binaries print.)

    results = run_in_one_process("jointvae_tf.train", {"bad": ["--batch_size=0"]}, cwd=ROOT, env=env)
    results["bad"].returncode, results["bad"].stderr
"""

import json
import subprocess
import sys
import textwrap
from typing import NamedTuple, Optional, Sequence

RUNNER = textwrap.dedent("""
    import contextlib, importlib, io, json, os, sys, traceback
    from absl import app, flags

    module_name, cases = sys.argv[1], json.loads(sys.argv[2])
    module = importlib.import_module(module_name)
    if hasattr(module, "__path__"):  # a package: `python -m` runs its __main__
        module = importlib.import_module(module_name + ".__main__")
    if hasattr(module, "define_flags"):  # flags its run() defines before app.run
        module.define_flags()
    results = {}
    for name, case in cases.items():
        flags.FLAGS.unparse_flags()
        stdout, stderr = io.StringIO(), io.StringIO()
        umask = None if case["umask"] is None else os.umask(case["umask"])
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                app.run(module.main, argv=[module_name, *case["argv"]])
                code = 0
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
            except BaseException:
                traceback.print_exc()
                code = 1
        if umask is not None:
            os.umask(umask)
        results[name] = [code, stdout.getvalue(), stderr.getvalue()]
    print(json.dumps(results))
""")


class Run(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def run_in_one_process(module: str, cases: dict, *, cwd: str, env: dict, timeout: float = 600,
                       umasks: Optional[dict] = None, prefix: Sequence[str] = ()) -> dict:
    """{name: Run} of `python -m module *argv` for each {name: argv} in `cases`, all in one new process.

    Args:
      module: what `python -m` runs (a module, or a package with a __main__); it has `main(argv)` for absl's
        `app.run`.
      cases: {name: argv (a list of strings, the flags)}; run in this order.
      umasks: {name: umask} for the runs that need one (the others keep the process's).
      prefix: a command the process runs under (e.g. setpriv, to drop a capability).
    """
    umasks = umasks or {}
    payload = {name: {"argv": list(argv), "umask": umasks.get(name)} for name, argv in cases.items()}
    result = subprocess.run([*prefix, sys.executable, "-c", RUNNER, module, json.dumps(payload)], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = json.loads(result.stdout.strip().splitlines()[-1])
    return {name: Run(*runs[name]) for name in cases}

