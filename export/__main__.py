"""Exports a trained JointVAE for deployment and verifies it: `python -m export --model_dir=... --output_dir=...`.

Writes output_dir/ saved_model/, decoder_<variant>.tflite and export_report.json (see
`export/__init__.py`), with --web also web/, the offline latent explorer page on LiteRT.js
(`export/webpage.py`; needs Node.js's npm at export time, not at run time), and prints the
verification table. The export is built in a
sibling folder `<output_dir>.tmp-XXXX` and renamed to output_dir only when complete and
verified, so output_dir never holds a partial export.

Verification: every decoder is compared with the Keras float32 decoder on
--fidelity_samples prior samples and timed over --latency_invokes batch-1 invokes; the
SavedModel's `decode` is reloaded and compared too. If a decoder's PSNR is below
--min_psnr (or the SavedModel differs), the binary exits 1 and output_dir is left untouched:
the rejected export is moved to `<output_dir>.failed/` for inspection, with an
export_report.json saying "passed": false.

Where the export may go: output_dir (and its `.failed` sibling) may not be, contain or sit
inside the model_dir or .keras file it exports, compared as real paths, so no symlink or `..`
lets an export replace its own input. output_dir must be new or empty; --overwrite replaces
only an earlier export: a folder whose export_report.json is one this binary wrote (a JSON
object with "written_by": "jointvae-export"; exports from before that key are recognised by
their "passed", "failures", "saved_model", "variants" and "versions" keys) and which holds
nothing but what an export writes (saved_model/, decoder_<variant>.tflite, web/,
export_report.json). Anything else is refused, and nothing is deleted. The same rule
guards an older `<output_dir>.failed`.

Every folder and file is created with the usual permissions (0o777 / 0o666 less the umask,
see `export.fileio`), so an export can be shared as any other folder.

Exit codes: 0 exported and verified; 1 a bad input (no checkpoint, unwritable output_dir, an
output_dir over the model or holding other files, bad flag value, --web without npm or
without the int8 decoder, npm ci failing) or a failed verification.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import shutil
import sys
from typing import Any, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from export import decode_tflite, fileio, report, tflite, webpage  # noqa: E402

REPORT_FILE = "export_report.json"
SAVED_MODEL_DIR = "saved_model"
# The report's mark of an export this binary wrote; --overwrite replaces only such folders.
WRITTEN_BY = "jointvae-export"
# The keys every export_report.json has had, also before WRITTEN_BY was added.
LEGACY_REPORT_KEYS = frozenset({"passed", "failures", "saved_model", "variants", "versions"})
FAILED_SUFFIX = ".failed"
# The decoder the --web page runs.
WEB_VARIANT = "int8"
SAVED_MODEL_TOLERANCE = 1e-5
REFERENCE_BATCH = 100
# Fidelity is measured on other prior samples than the calibration's (seed --seed, default 0).
DEFAULT_FIDELITY_SEED = 1


@dataclasses.dataclass
class ExportOptions:
    """What an export may set (the binary's flags)."""

    model_dir: str
    output_dir: str
    variants: Sequence[str] = tflite.DEFAULT_VARIANTS
    min_psnr: float = report.DEFAULT_MIN_PSNR
    fidelity_samples: int = report.DEFAULT_FIDELITY_SAMPLES
    fidelity_seed: int = DEFAULT_FIDELITY_SEED
    latency_invokes: int = report.DEFAULT_LATENCY_INVOKES
    num_threads: int = decode_tflite.DEFAULT_NUM_THREADS
    calibration_images: str = "auto"
    calibration_samples: int = tflite.DEFAULT_CALIBRATION_SAMPLES
    dynamic_batch: bool = False
    seed: int = 0
    overwrite: bool = False
    web: bool = False


class VerificationError(RuntimeError):
    """An export whose decoders fall below the fidelity floor; `report` holds the measurements."""

    def __init__(self, message: str, report_: dict[str, Any]):
        super().__init__(message)
        self.report = report_


# --------------------------------------------------------------------------- folders
def check_options(options: ExportOptions) -> None:
    """One-line ValueErrors for settings that cannot work, including an output_dir over the model."""
    if not options.model_dir or not options.output_dir:
        raise ValueError("model_dir and output_dir must both be given")
    inputs = {"model_dir": options.model_dir}
    fileio.check_output_location(options.output_dir, inputs, "output_dir")
    fileio.check_output_location(options.output_dir + FAILED_SUFFIX, inputs, "the rejected-export folder")
    tflite.check_variants(options.variants)
    for name in ("fidelity_samples", "latency_invokes", "num_threads", "calibration_samples"):
        value = getattr(options, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if options.web:
        if WEB_VARIANT not in options.variants:
            raise ValueError(f"--web runs the {WEB_VARIANT} decoder: add {WEB_VARIANT} to --variants "
                             f"(got {','.join(options.variants)})")
        webpage.check_npm()


def is_export_report(path: str) -> bool:
    """Whether `path` is an export_report.json this binary wrote (see the module docstring)."""
    try:
        with open(path, encoding="utf-8") as f:
            content = json.load(f)
    except (OSError, ValueError):  # absent, unreadable, not UTF-8 or not JSON
        return False
    if not isinstance(content, dict):
        return False
    return content.get("written_by") == WRITTEN_BY or LEGACY_REPORT_KEYS <= content.keys()


def foreign_entries(folder: str) -> list[str]:
    """The names in `folder` an export did not write: all of them unless its report is an export's."""
    names = sorted(os.listdir(folder))
    if not is_export_report(os.path.join(folder, REPORT_FILE)):
        return names
    written = {SAVED_MODEL_DIR, REPORT_FILE, webpage.WEB_DIR,
               *(f"decoder_{variant}.tflite" for variant in tflite.VARIANTS)}
    return [name for name in names if name not in written]


def check_output_dir(output_dir: str, overwrite: bool) -> None:
    """ValueError unless output_dir is absent, empty, or, with `overwrite`, an earlier export and only that."""
    output_dir = os.path.abspath(output_dir)
    if not os.path.exists(output_dir):
        return
    if not os.path.isdir(output_dir):
        raise ValueError(f"output_dir {output_dir} is an existing file, not a folder")
    if not os.listdir(output_dir):
        return
    if not overwrite:
        raise ValueError(f"output_dir {output_dir} is not empty: pass --overwrite to replace it, or choose another")
    foreign = foreign_entries(output_dir)
    if foreign:
        raise ValueError(
            f"output_dir {output_dir} holds files that were not written by jointvae-export "
            f"({fileio.list_names(foreign)}): --overwrite replaces only an earlier export and will not delete "
            "them; choose another output_dir"
        )


def make_staging_dir(output_dir: str, overwrite: bool) -> str:
    """Checks that output_dir can be written (and replaced) and creates the sibling staging folder."""
    check_output_dir(output_dir, overwrite)
    output_dir = os.path.abspath(output_dir)
    parent = os.path.dirname(output_dir)
    ancestor = parent
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise OSError(f"output_dir {output_dir} cannot be written: {ancestor} is a file, not a folder")
    try:
        os.makedirs(parent, exist_ok=True)
        # Not tempfile.mkdtemp: the staging folder becomes output_dir, so its mode must follow the umask.
        return fileio.make_unique_dir(parent, f"{os.path.basename(output_dir)}.tmp-")
    except OSError as error:
        raise OSError(f"output_dir {output_dir} cannot be written: {error.strerror or error}") from None


def publish(staging: str, target: str) -> None:
    """Renames the finished staging folder to target, replacing what was there."""
    target = os.path.abspath(target)
    previous = None
    if os.path.exists(target):
        previous = fileio.make_unique_dir(os.path.dirname(target), f"{os.path.basename(target)}.old-")
        os.rmdir(previous)
        os.rename(target, previous)
    try:
        os.rename(staging, target)
    except BaseException:
        if previous:
            os.rename(previous, target)
        raise
    if previous:
        shutil.rmtree(previous, ignore_errors=True)


# --------------------------------------------------------------------------- the export
def _versions() -> dict[str, str]:
    return {"tensorflow": tf.__version__, "ai_edge_litert": importlib.metadata.version("ai-edge-litert"),
            "python": sys.version.split()[0]}


def _build(options: ExportOptions, staging: str) -> dict[str, Any]:
    """Writes the SavedModel and the decoders into staging and measures them; returns the report."""
    # Keras and tensorflow-probability load here, once the options and output_dir are known to be good.
    from export import saved_model
    from jointvae_tf.training import checkpoints

    try:
        model = checkpoints.restore_model(options.model_dir)
    except tf.errors.OpError as error:
        raise ValueError(f"cannot restore a model from {options.model_dir}: {error.message}") from None
    config = None if options.model_dir.endswith(".keras") else checkpoints.read_config(options.model_dir)
    spec = model.latent_spec
    logging.info("restored %s: image_shape %s, latents %s", options.model_dir, list(model.image_shape), spec)

    saved_model_path = saved_model.export_saved_model(model, os.path.join(staging, SAVED_MODEL_DIR))

    variants = tuple(options.variants)
    if variants == tuple(tflite.DEFAULT_VARIANTS):
        # The defaults leave out what the model's likelihood cannot quantise; an explicit list is checked.
        variants = tflite.variants_for(model.likelihood, variants)
        if variants != tuple(options.variants):
            logging.info("likelihood %s: no int8 decoders (see export.tflite); writing %s",
                         model.likelihood, ", ".join(variants))
    tflite.check_likelihood_variants(model.likelihood, variants)

    calibration, calibration_info = None, {"source": None, "note": "no calibrated variant requested"}
    if any(v in tflite.CALIBRATED_VARIANTS for v in variants):
        images, images_info = tflite.calibration_images(
            model.image_shape, options.calibration_images, config, options.calibration_samples // 2, options.seed
        )
        calibration, calibration_info = tflite.calibration_latents(
            model, images, options.calibration_samples, options.seed
        )
        calibration_info.update(images_info, requested=options.calibration_images, seed=options.seed)
    batch_size = None if options.dynamic_batch else tflite.DEFAULT_BATCH_SIZE
    paths = {}
    for variant, content in tflite.convert_decoders(model, variants, calibration, batch_size).items():
        paths[variant] = os.path.join(staging, f"decoder_{variant}.tflite")
        decode_tflite.atomic_write(paths[variant], content)

    latent = model.sample_prior(options.fidelity_samples, seed=options.fidelity_seed).numpy()
    reference = np.concatenate([
        model.decode(latent[start:start + REFERENCE_BATCH]).numpy() for start in range(0, len(latent), REFERENCE_BATCH)
    ])
    saved_model_error = saved_model.decode_max_abs_error(saved_model_path, latent, reference)

    logging.info("verifying %d decoders on %d prior samples", len(paths), len(latent))
    checks = report.verify_decoders(
        paths, latent, reference, options.min_psnr, options.latency_invokes, options.num_threads
    )
    failures = list(checks["failures"])
    web = None
    if options.web:
        logging.info("writing the latent explorer page into %s/", webpage.WEB_DIR)
        web = webpage.write_web(os.path.join(staging, webpage.WEB_DIR), paths[WEB_VARIANT])
    if not saved_model_error <= SAVED_MODEL_TOLERANCE:
        failures.append(f"saved_model: decode differs from the Keras decoder by {saved_model_error:.3g} "
                        f"(tolerance {SAVED_MODEL_TOLERANCE:g})")
    return {
        "written_by": WRITTEN_BY,
        "passed": not failures,
        "failures": failures,
        "model": {"source": os.path.abspath(options.model_dir), "image_shape": list(model.image_shape),
                  "latent_spec": spec.to_dict(), "latent_dim": spec.latent_dim,
                  "dataset": (config or {}).get("dataset")},
        "saved_model": {"path": SAVED_MODEL_DIR, "signatures": list(saved_model.SIGNATURES),
                        "decode_max_abs_error": saved_model_error, "tolerance": SAVED_MODEL_TOLERANCE},
        "tflite_batch": batch_size or "any",
        "calibration": calibration_info,
        "fidelity": {"reference": "Keras model.decoder, float32", "samples": len(latent),
                     "seed": options.fidelity_seed, "min_psnr_db": options.min_psnr,
                     "psnr": "10 log10(1 / MSE), MSE over all pixels, images in [0, 1]"},
        "latency": {"batch": 1, "invokes": options.latency_invokes, "warmup": report.WARMUP_INVOKES,
                    "num_threads": options.num_threads, "statistic": "median"},
        "variants": checks["variants"],
        **({"web": web} if web else {}),
        "versions": _versions(),
    }


def export(options: ExportOptions) -> dict[str, Any]:
    """Exports and verifies; returns the report of a passing export written to options.output_dir.

    Raises:
      FileNotFoundError, ValueError, OSError: bad model_dir, output_dir or options; nothing is written.
      VerificationError: a decoder missed the floor; the export is in `<output_dir>.failed` (unless
        that folder holds files an export did not write: then it is left alone and the export dropped).
    """
    check_options(options)
    staging = make_staging_dir(options.output_dir, options.overwrite)
    try:
        result = _build(options, staging)
        print(report.format_table(result["variants"]))
        report.write_report(os.path.join(staging, REPORT_FILE), result)
        if not result["passed"]:
            rejected = os.path.abspath(options.output_dir) + FAILED_SUFFIX
            if os.path.isdir(rejected):
                foreign = foreign_entries(rejected)
            else:
                foreign = [os.path.basename(rejected)] if os.path.lexists(rejected) else []
            if foreign:
                kept = (f"rejected export not kept: {rejected} holds files that were not written by "
                        f"jointvae-export ({fileio.list_names(foreign)})")
            else:
                publish(staging, rejected)
                kept = f"rejected export kept in {rejected}"
            raise VerificationError("verification failed: " + "; ".join(result["failures"]) + f" ({kept})", result)
        # Again: files may have appeared in output_dir while the export ran.
        check_output_dir(options.output_dir, options.overwrite)
        publish(staging, options.output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


# --------------------------------------------------------------------------- the binary
FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the binary's flags (called by `run`, so importing this module defines none)."""
    flags.DEFINE_string("model_dir", None, "A model_dir written by jointvae-train, or a .keras file.")
    flags.DEFINE_string("output_dir", None,
                        "Folder to write the export into (new or empty, see --overwrite), outside the model_dir.")
    flags.DEFINE_list("variants", list(tflite.DEFAULT_VARIANTS),
                      f"TFLite decoders to write: {', '.join(tflite.VARIANTS)}.")
    flags.DEFINE_float("min_psnr", report.DEFAULT_MIN_PSNR,
                       "Fidelity floor in dB: any decoder below it fails the export.")
    flags.DEFINE_integer("fidelity_samples", report.DEFAULT_FIDELITY_SAMPLES,
                         "Prior samples the decoders are compared on.")
    flags.DEFINE_integer("fidelity_seed", DEFAULT_FIDELITY_SEED, "Seed of those prior samples.")
    flags.DEFINE_integer("latency_invokes", report.DEFAULT_LATENCY_INVOKES, "Batch-1 invokes timed per decoder.")
    flags.DEFINE_integer("num_threads", decode_tflite.DEFAULT_NUM_THREADS, "Interpreter threads for the latency.")
    flags.DEFINE_string("calibration_images", "auto",
                        "Images encoded for int8 calibration: auto (the model_dir's dataset if it loads), none "
                        "(prior samples only) or a dataset name.")
    flags.DEFINE_integer("calibration_samples", tflite.DEFAULT_CALIBRATION_SAMPLES, "Calibration latents in all.")
    flags.DEFINE_boolean("dynamic_batch", False,
                         "TFLite decoders take any batch instead of a fixed batch of 1 (XNNPACK then leaves the "
                         "transposed convolutions to TFLite's slower kernels).")
    flags.DEFINE_integer("seed", 0, "Seed of calibration images and prior samples.")
    flags.DEFINE_boolean("overwrite", False,
                         "Replace a non-empty output_dir that holds an earlier export (and nothing else).")
    flags.DEFINE_boolean("web", False,
                         "Also write web/: an offline latent explorer page running decoder_int8.tflite on "
                         "LiteRT.js (serve it with `python -m http.server -d web`). Needs npm at export time.")
    flags.mark_flags_as_required(["model_dir", "output_dir"])


def main(argv: Sequence[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    options = ExportOptions(**{field.name: FLAGS[field.name].value for field in dataclasses.fields(ExportOptions)})
    tf.get_logger().setLevel("WARNING")  # TensorFlow's SavedModel and converter chatter
    try:
        export(options)
    except (VerificationError, FileNotFoundError, ValueError, OSError) as error:
        logging.error("%s", error)
        print(f"jointvae-export: error: {error}", file=sys.stderr)
        return 1
    print(f"exported to {os.path.abspath(options.output_dir)} (report: {REPORT_FILE})")
    return 0


def run() -> None:
    """Console script entry point (jointvae-export)."""
    define_flags()
    app.run(main)


if __name__ == "__main__":
    run()
