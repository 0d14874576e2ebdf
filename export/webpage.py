"""The offline latent explorer page of an export: `jointvae-export ... --web` writes output_dir/web/.

    web/index.html              the page: a slider per continuous latent, a button per category, a canvas
    web/app.js, explorer.js     its script (the DOM and LiteRT.js) and its logic (metadata, latents, pixels)
    web/decoder_int8.tflite     the decoder it runs, a copy of the export's
    web/litert/                 the LiteRT.js runtime: core.js, wasm-utils.js, wasm/*.{js,wasm}

The page's sources live in export/web/ beside package.json and package-lock.json, which pin
@litertjs/core; `npm ci` installs that into a temporary folder at export time and only the
runtime files the page loads are copied (RUNTIME_FILES), so web/ needs no network: serve it
with `python -m http.server -d web`. The page reads the latent layout from the decoder's
metadata, as `export.decode_tflite` does.

Standard library only; needs Node.js's npm on PATH (`check_npm` says so in one line).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from typing import Any

from export import fileio

SOURCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web")
WEB_DIR = "web"
MODEL_FILE = "decoder_int8.tflite"
PAGE_FILES = ("index.html", "app.js", "explorer.js")
LOCK_FILES = ("package.json", "package-lock.json")
PACKAGE = "@litertjs/core"
# node_modules path -> web/ path. LiteRT.js loads litert_wasm_internal.* where WebAssembly relaxed
# SIMD is supported (Chrome, Edge, Firefox) and litert_wasm_compat_internal.* elsewhere (Safari);
# its threaded and JSPI builds are not used (the page asks for neither).
RUNTIME_FILES = {
    "@litertjs/core/dist/index.js": "litert/core.js",
    "@litertjs/wasm-utils/dist/index.js": "litert/wasm-utils.js",
    **{f"@litertjs/core/wasm/litert_wasm{kind}_internal.{ext}": f"litert/wasm/litert_wasm{kind}_internal.{ext}"
       for kind in ("", "_compat") for ext in ("js", "wasm")},
}
NPM_TIMEOUT_S = 600


def check_npm() -> str:
    """The path of npm, or a one-line ValueError saying that --web needs Node.js and npm."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        missing = "npm" if shutil.which("node") else "node"
        raise ValueError(
            f"--web needs Node.js and npm to install the pinned LiteRT.js runtime ({PACKAGE}), but {missing} is not "
            "on PATH: install them (e.g. apt-get install nodejs npm) or export without --web"
        )
    return npm


def pinned_version() -> str:
    """The @litertjs/core version package.json pins (an exact version, as `npm ci` installs it)."""
    with open(os.path.join(SOURCE_DIR, "package.json"), encoding="utf-8") as f:
        return json.load(f)["dependencies"][PACKAGE]


def install_runtime(folder: str) -> str:
    """Runs `npm ci` on the pinned package.json and package-lock.json in `folder`; returns its node_modules.

    Raises:
      ValueError: npm or node missing.
      OSError: npm ci failed (its last error line is in the message).
    """
    npm = check_npm()
    for name in LOCK_FILES:
        shutil.copyfile(os.path.join(SOURCE_DIR, name), os.path.join(folder, name))
    command = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"]
    try:
        result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=NPM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise OSError(f"npm ci did not finish in {NPM_TIMEOUT_S} s installing {PACKAGE}") from None
    if result.returncode != 0:
        reason = npm_error_reason(result.stderr or result.stdout) or f"exit code {result.returncode}"
        raise OSError(f"npm ci failed to install {PACKAGE} {pinned_version()}: {reason}")
    return os.path.join(folder, "node_modules")


def npm_error_reason(output: str) -> str | None:
    """The line of npm's error output that says what went wrong, or None.

    npm prints `npm error code ...`, `syscall`, `errno`, then the message, a stack and the path of
    its log (`npm ERR!` before npm 10); the message is the first line that is none of those.
    """
    lines = []
    for raw in output.splitlines():
        match = re.match(r"npm (?:error|ERR!)(\s*)(.*)", raw)
        if match and match.group(2) and not match.group(1).startswith("   "):  # deeper indents: stack, fields
            lines.append(match.group(2).strip())
    for line in lines:
        if not re.match(r"(code|syscall|errno|path|dest)\b|at |A complete log|[{}]|If you are behind a proxy", line):
            return line
    return lines[0] if lines else None


def _copy(source: str, target: str) -> None:
    """Copies a file with the usual permissions (0o666 less the umask), atomically."""
    with open(source, "rb") as f:
        fileio.write_bytes(target, f.read())


def write_web(web_dir: str, decoder_path: str) -> dict[str, Any]:
    """Writes the page, `decoder_path` (an int8 decoder .tflite) and the LiteRT.js runtime into web_dir.

    Returns:
      What the export report records: {"path", "model", "litertjs", "files", "bytes"}.
    """
    os.makedirs(web_dir, exist_ok=True)
    for name in PAGE_FILES:
        _copy(os.path.join(SOURCE_DIR, name), os.path.join(web_dir, name))
    _copy(decoder_path, os.path.join(web_dir, MODEL_FILE))
    with tempfile.TemporaryDirectory(prefix="jointvae-litertjs-") as tmp:
        node_modules = install_runtime(tmp)
        with open(os.path.join(node_modules, *PACKAGE.split("/"), "package.json"), encoding="utf-8") as f:
            installed = json.load(f)["version"]
        for source, target in RUNTIME_FILES.items():
            path = os.path.join(node_modules, *source.split("/"))
            if not os.path.isfile(path):
                raise OSError(f"{PACKAGE} {installed} has no {source}: package.json pins a version this page "
                              f"was not written for ({pinned_version()} expected)")
            _copy(path, os.path.join(web_dir, *target.split("/")))
    files = sorted([*PAGE_FILES, MODEL_FILE, *RUNTIME_FILES.values()])
    return {
        "path": os.path.basename(os.path.normpath(web_dir)),
        "model": MODEL_FILE,
        "litertjs": installed,
        "files": files,
        "bytes": sum(os.path.getsize(os.path.join(web_dir, *name.split("/"))) for name in files),
        "serve": f"python -m http.server -d {WEB_DIR}",
    }
