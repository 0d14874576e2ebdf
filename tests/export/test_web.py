"""`jointvae-export --web`: the latent explorer page, run by a real headless Chromium on LiteRT.js.

One export of the shared model with --web, web/ served by http.server on a free port, one
Chromium driven over the DevTools protocol (headless_chromium.py). Needs node and npm (the
export runs `npm ci`) and Chromium: without them these tests skip, and CI (which installs
them, see .ci/run) turns the skip into a failure.
"""

import functools
import http.server
import io
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.parse

import numpy as np
import pytest
from export_test_utils import IMAGE_SHAPE, LATENT_DIM, run_python
from headless_chromium import HeadlessChromium, find_chromium

from export import __main__ as export_main
from export import decode_tflite, report, webpage

# Quick verification numbers: this export is about the page, not the decoder's fidelity.
QUICK_FLAGS = ["--fidelity_samples=20", "--latency_invokes=5", "--calibration_samples=20"]
MIN_PSNR_DB = 35.0
MAX_REDRAW_MS = 50.0
SLIDER_MOVES = 8


def _require(*programs):
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not on PATH (CI installs them: .ci/run)")


@pytest.fixture(scope="module")
def web_export(model_dir, tmp_path_factory):
    """`python -m export --variants=int8 --web` of the shared model: output_dir."""
    _require("node", "npm")
    output_dir = str(tmp_path_factory.mktemp("web_export") / "out")
    result = run_python(["-m", "export", f"--model_dir={model_dir}", f"--output_dir={output_dir}",
                         "--variants=int8", "--web", *QUICK_FLAGS])
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir


@pytest.fixture(scope="module")
def page_url(web_export):
    """The base URL of web/ served by http.server (the standard library's) on a free local port."""
    handler = functools.partial(_QuietHandler, directory=os.path.join(web_export, "web"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser(page_url):
    if find_chromium() is None:
        pytest.skip("no Chromium on PATH (CI installs it: .ci/run; apt-get install chromium)")
    with HeadlessChromium() as chromium:
        chromium.log_requests()
        yield chromium


def _open(browser, url):
    """Loads the page and waits until it has decoded its first image; returns its error text or None."""
    browser.navigate(url)
    ready = browser.evaluate("window.latentExplorer.ready")
    error = browser.evaluate("document.getElementById('error').hidden ? null : "
                             "document.getElementById('error').textContent")
    assert ready == (error is None)
    return error


def _decoded(browser):
    """The page's <pre id="decoded">: pixels [1, H, W, C] as float64."""
    text = browser.evaluate("document.getElementById('decoded').textContent")
    shape = [int(d) for d in browser.evaluate("document.getElementById('decoded').dataset.shape").split(",")]
    return np.array(text.split(","), np.float64).reshape(shape)


def _saved_model_decode(output_dir, latent):
    import tensorflow as tf

    decode = tf.saved_model.load(os.path.join(output_dir, "saved_model")).signatures["decode"]
    return decode(latent=tf.constant(latent, tf.float32))["images"].numpy().astype(np.float64)


def _canvas_rgba(browser):
    """The canvas's pixels as uint8 [H, W, 4] (getImageData)."""
    data = browser.evaluate("(() => { const c = document.getElementById('image'); "
                            "return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); })()")
    return np.array(data, np.uint8).reshape(*IMAGE_SHAPE[:2], 4)


# --------------------------------------------------------------------------- the export
def test_the_export_writes_a_self_contained_page(web_export):
    web = os.path.join(web_export, "web")
    with open(os.path.join(web_export, "export_report.json")) as f:
        info = json.load(f)["web"]
    assert info["litertjs"] == webpage.pinned_version() and info["model"] == "decoder_int8.tflite"
    written = sorted(os.path.relpath(os.path.join(folder, name), web).replace(os.sep, "/")
                     for folder, _, names in os.walk(web) for name in names)
    assert written == info["files"]  # the page, its decoder, the runtime files it loads: nothing else
    assert info["bytes"] == sum(os.path.getsize(os.path.join(web, name)) for name in written)
    with open(os.path.join(web, "decoder_int8.tflite"), "rb") as a, \
            open(os.path.join(web_export, "decoder_int8.tflite"), "rb") as b:
        assert a.read() == b.read()
    assert export_main.foreign_entries(web_export) == []  # --overwrite may replace it


def test_web_needs_the_int8_decoder(model_dir, tmp_path):
    options = export_main.ExportOptions(model_dir=model_dir, output_dir=str(tmp_path / "out"),
                                        variants=["float32"], web=True)
    with pytest.raises(ValueError) as error:
        export_main.export(options)
    assert str(error.value) == "--web runs the int8 decoder: add int8 to --variants (got float32)"
    assert os.listdir(tmp_path) == []  # refused before any work


def test_web_without_npm_fails_in_one_line(model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no node, no npm
    options = export_main.ExportOptions(model_dir=model_dir, output_dir=str(tmp_path / "out"), web=True)
    with pytest.raises(ValueError) as error:
        export_main.export(options)
    message = str(error.value)
    assert message.startswith("--web needs Node.js and npm to install the pinned LiteRT.js runtime (@litertjs/core), "
                              "but node is not on PATH") and "\n" not in message
    assert os.listdir(tmp_path) == []


NPM_11_ERROR = """npm error code ECONNREFUSED
npm error syscall connect
npm error errno ECONNREFUSED
npm error FetchError: request to http://127.0.0.1:9/@litertjs%2fcore failed, reason: connect ECONNREFUSED 127.0.0.1:9
npm error     at ClientRequest.<anonymous> (/usr/lib/node_modules/npm/node_modules/minipass-fetch/lib/index.js:130:14)
npm error   code: 'ECONNREFUSED',
npm error }
npm error
npm error A complete log of this run can be found in: /root/.npm/_logs/debug-0.log
"""
NPM_9_ERROR = """npm ERR! code E404
npm ERR! 404 Not Found - GET https://registry.npmjs.org/@litertjs%2fcore - Not found
npm ERR! A complete log of this run can be found in:
"""


def test_npm_error_reason_is_the_message_line():
    assert webpage.npm_error_reason(NPM_11_ERROR) == (
        "FetchError: request to http://127.0.0.1:9/@litertjs%2fcore failed, reason: connect ECONNREFUSED 127.0.0.1:9")
    assert webpage.npm_error_reason(NPM_9_ERROR) == "404 Not Found - GET https://registry.npmjs.org/@litertjs%2fcore - Not found"
    assert webpage.npm_error_reason("npm error code E1\n") == "code E1"
    assert webpage.npm_error_reason("") is None


def test_npm_ci_failing_is_one_line(tmp_path, monkeypatch):
    _require("node", "npm")
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")  # nothing listens there
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "empty_cache"))
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    (tmp_path / "install").mkdir()
    with pytest.raises(OSError) as error:
        webpage.install_runtime(str(tmp_path / "install"))
    message = str(error.value)
    assert message.startswith(f"npm ci failed to install @litertjs/core {webpage.pinned_version()}: ")
    assert "ECONNREFUSED" in message and "\n" not in message


def test_explorer_js_reads_the_metadata_the_export_writes(web_export):
    """explorer.js (plain ES module) under Node: its metadata reader and latent rules against Python's."""
    _require("node")
    web = os.path.join(web_export, "web")
    script = (
        f"import * as e from {json.dumps(urllib.parse.urljoin('file:', os.path.join(web, 'explorer.js')))};"
        "import {readFileSync} from 'node:fs';"
        "const r = e.readDecoderMetadata(new Uint8Array(readFileSync(process.argv[1])));"
        "const bad = [];"
        "for (const t of ['1,2', '0,0,0,0,0.5,0.5,0', '0,0,x,0,1,0,0']) {"
        "  try { e.parseLatent(t, r.layout); bad.push(null); } catch (err) { bad.push(err.message); } }"
        "const ok = Array.from(e.parseLatent('0.5,-1,0,2,0,0,1', r.layout));"
        "const prior = Array.from(e.priorSample(r.layout));"
        "console.log(JSON.stringify({...r, bad, ok, prior}));"
    )
    result = subprocess.run(["node", "--input-type=module", "-e", script, os.path.join(web, "decoder_int8.tflite")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    decoder = decode_tflite.TFLiteDecoder(os.path.join(web, "decoder_int8.tflite"))
    assert out["metadata"] == decoder.metadata
    assert out["layout"] == {"continuous": 4, "discrete": [3], "latentDim": LATENT_DIM}
    assert out["imageShape"] == list(IMAGE_SHAPE)
    for text, message in zip(["1,2", "0,0,0,0,0.5,0.5,0", "0,0,x,0,1,0,0"], out["bad"]):
        with pytest.raises(ValueError) as python_error:
            decoder.parse_latent(text)
        assert message == str(python_error.value).replace("'", '"')  # the same rule, the same words
    assert out["ok"] == [0.5, -1, 0, 2, 0, 0, 1]
    prior = decoder.check_latent(np.array(out["prior"], np.float32))  # one-hot where it must be
    assert prior.shape == (LATENT_DIM,)


# --------------------------------------------------------------------------- in Chromium
@pytest.mark.parametrize("which", ["chosen", "prior"])
def test_the_page_decodes_a_latent_as_the_saved_model_does(web_export, page_url, browser, which):
    if which == "chosen":
        latent = np.array([[0.5, -1.0, 0.25, 1.25, 0.0, 1.0, 0.0]], np.float32)
    else:
        decoder = decode_tflite.TFLiteDecoder(os.path.join(web_export, "decoder_int8.tflite"))
        latent = decoder.random_latents(1, seed=3)
    text = ",".join(repr(float(v)) for v in latent[0])
    assert _open(browser, f"{page_url}index.html?latent={text}") is None
    pixels = _decoded(browser)
    assert pixels.shape == (1, *IMAGE_SHAPE) and np.all((pixels >= 0) & (pixels <= 1))
    fidelity = report.fidelity(pixels, _saved_model_decode(web_export, latent))
    # LiteRT.js runs the same int8 kernels as Python's LiteRT: within one output quantisation step.
    python = decode_tflite.TFLiteDecoder(os.path.join(web_export, "web", "decoder_int8.tflite")).decode(latent)
    print(f"\nbrowser int8 decode vs SavedModel ({which} latent): PSNR {fidelity['psnr_db']:.2f} dB, "
          f"max abs error {fidelity['max_abs_error']:.4f}; vs Python LiteRT: max abs difference "
          f"{np.max(np.abs(pixels - python)):.3g}")
    assert fidelity["psnr_db"] >= MIN_PSNR_DB
    np.testing.assert_allclose(pixels, python, atol=1 / 256 + 1e-6)
    # The canvas shows those pixels.
    expected = np.clip(np.rint(pixels[0] * 255), 0, 255)
    np.testing.assert_allclose(_canvas_rgba(browser)[..., :3], np.repeat(expected, 3, axis=-1), atol=1)
    # Offline: every request went to the page's own server; Chromium has relaxed SIMD, so LiteRT.js's default build.
    assert browser.requests and all(url.startswith(page_url) for url in browser.requests), browser.requests
    assert "litert/wasm/litert_wasm_internal.wasm" in {url[len(page_url):] for url in browser.requests}


# A browser without WebAssembly relaxed SIMD (Safari): LiteRT.js probes it by instantiating a tiny module
# that uses it; failing every tiny instantiation makes it load its compatible build instead.
NO_RELAXED_SIMD = """
const instantiate = WebAssembly.instantiate;
WebAssembly.instantiate = function (source, ...rest) {
  if (source instanceof Uint8Array && source.length < 200) {
    return Promise.reject(new WebAssembly.CompileError('relaxed SIMD is off (test)'));
  }
  return instantiate.call(this, source, ...rest);
};
"""


def test_the_compatible_runtime_decodes_alike(web_export, page_url, browser):
    latent = "0.5,-1.0,0.25,1.25,0.0,1.0,0.0"
    assert _open(browser, f"{page_url}index.html?latent={latent}") is None
    default = _decoded(browser)
    with HeadlessChromium() as compat:
        compat.add_init_script(NO_RELAXED_SIMD)
        compat.log_requests()
        assert _open(compat, f"{page_url}index.html?latent={latent}") is None
        loaded = [url.rsplit("/", 1)[1] for url in compat.requests if url.endswith(".wasm")]
        assert loaded == ["litert_wasm_compat_internal.wasm"]
        pixels = _decoded(compat)
    print(f"\ncompatible (no relaxed SIMD) build vs the default one: max abs difference {np.max(np.abs(pixels - default)):.3g}")
    np.testing.assert_allclose(pixels, default, atol=1 / 256 + 1e-6)


def test_a_bad_latent_is_refused_in_one_line(page_url, browser):
    error = _open(browser, f"{page_url}index.html?latent=0,0,0,0,0.5,0.5,0")
    assert error == ('latent "0,0,0,0,0.5,0.5,0": discrete latent 0 (values 5 to 7) must be one-hot, '
                     "a single 1 and 2 zeros, got [0.5, 0.5, 0.0]")
    assert browser.evaluate("document.getElementById('decoded').textContent") == ""


@pytest.mark.alone
def test_a_slider_move_redraws_within_50_ms(web_export, page_url, browser):
    assert _open(browser, f"{page_url}index.html") is None
    before = _canvas_rgba(browser)
    box = browser.evaluate("JSON.stringify(document.getElementById('z0').getBoundingClientRect())")
    box = json.loads(box)
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2  # the thumb, at z1 = 0
    browser.mouse("mousePressed", x, y)
    for _ in range(SLIDER_MOVES):  # a drag to the right, one step at a time, with real mouse events
        x += box["width"] / 40
        browser.mouse("mouseMoved", x, y)
        time.sleep(0.15)
    browser.mouse("mouseReleased", x, y)
    deadline = time.monotonic() + 10
    while browser.evaluate("window.latentExplorer.app.running") and time.monotonic() < deadline:
        time.sleep(0.05)
    times = browser.evaluate("window.latentExplorer.redrawMs")
    decode_times = browser.evaluate("window.latentExplorer.decodeMs")
    shown = browser.evaluate("document.getElementById('timing').textContent")
    print(f"\nslider redraws (input event to the frame showing it), ms: {[round(t, 1) for t in times]}; "
          f"median {np.median(times):.1f}, max {max(times):.1f}; decode alone median {np.median(decode_times):.1f}"
          f"\npage: {shown}")
    assert len(times) >= SLIDER_MOVES // 2  # moves arriving during a redraw fold into the next one
    assert np.median(times) <= MAX_REDRAW_MS
    assert shown.startswith("Redraw (input event to the frame showing it): last ")
    # The drag moved z1 and the canvas shows the decode of the latent the page holds now.
    latent = np.array([browser.evaluate("Array.from(window.latentExplorer.app.latent)")], np.float32)
    assert latent[0, 0] > 0.4 and np.all(latent[0, 1:4] == 0)
    python = decode_tflite.TFLiteDecoder(os.path.join(web_export, "web", "decoder_int8.tflite")).decode(latent)
    after = _canvas_rgba(browser)
    assert not np.array_equal(after, before)
    np.testing.assert_allclose(after[..., 0], np.rint(python[0, ..., 0].astype(np.float64) * 255), atol=1)


def test_the_screenshot_shows_the_decoded_image(page_url, browser):
    from PIL import Image

    latent = "1.5,-1.5,0,0,1,0,0"
    assert _open(browser, f"{page_url}index.html?latent={latent}") is None
    pixels = _decoded(browser)[0, ..., 0]
    box = json.loads(browser.evaluate("JSON.stringify(document.getElementById('image').getBoundingClientRect())"))
    scale = browser.evaluate("window.devicePixelRatio")
    shot = np.asarray(Image.open(io.BytesIO(browser.screenshot())).convert("L"), np.float64)
    assert shot.std() > 10  # not blank
    inner = 2  # inside the canvas's border
    crop = shot[int((box["y"] + inner) * scale):int((box["bottom"] - inner) * scale),
                int((box["x"] + inner) * scale):int((box["right"] - inner) * scale)]
    assert crop.std() > 5  # the image, not a flat fill
    # The canvas area shows the decoded image, scaled up: each screenshot pixel against the image pixel under it.
    top, left = int((box["y"] + inner) * scale), int((box["x"] + inner) * scale)

    def image_index(start, count, origin, extent, size):  # screenshot pixels -> image pixels along one axis
        css = (start + np.arange(count) + 0.5) / scale - origin - 1  # inside the 1px border
        return np.clip(np.floor(css / (extent - 2) * size), 0, size - 1).astype(int)

    rows = image_index(top, crop.shape[0], box["y"], box["height"], pixels.shape[0])
    cols = image_index(left, crop.shape[1], box["x"], box["width"], pixels.shape[1])
    expected = np.rint(pixels[np.ix_(rows, cols)] * 255)
    difference = np.abs(crop - expected)
    print(f"\nscreenshot: std {shot.std():.1f} grey levels; canvas area vs the decoded image: mean abs difference "
          f"{difference.mean():.2f}, {np.mean(difference <= 2):.1%} of pixels within 2 grey levels")
    assert difference.mean() < 4
