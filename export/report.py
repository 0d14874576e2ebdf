"""Verification of exported decoders: size, batch-1 latency and fidelity to the Keras decoder.

    checks = verify_decoders({"int8": "decoder_int8.tflite"}, latent, reference, min_psnr=30.0)
    print(format_table(checks["variants"]))

Fidelity compares a decoder's images with `reference`, the Keras float32 decoder's images of
the same latents, both as float32 in [0, 1] (a uint8-output decoder is dequantised first):
the max and mean absolute error, and PSNR = 10 log10(1 / MSE) with MAX = 1, the MSE taken
over every pixel of every image (also the worst single image's PSNR). A decoder passes when
its PSNR reaches `min_psnr`; identical images have an infinite PSNR (JSON `Infinity`).

Latency is the median wall time of single `invoke()` calls on a batch-1 latent (a decoder's
fixed batch, if larger), after a warm-up, with the interpreter's thread count fixed. Uses
LiteRT and numpy only.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from typing import Any, Mapping

import numpy as np

from export import fileio
from export.decode_tflite import DEFAULT_NUM_THREADS, TFLiteDecoder

DEFAULT_MIN_PSNR = 30.0
DEFAULT_FIDELITY_SAMPLES = 1000
DEFAULT_LATENCY_INVOKES = 200
WARMUP_INVOKES = 20
REFERENCE_VARIANT = "float32"


def psnr_db(mse: float) -> float:
    """PSNR in dB of images in [0, 1] (MAX = 1) with mean squared error `mse`; inf when mse is 0."""
    return math.inf if mse <= 0 else 10.0 * math.log10(1.0 / mse)


def fidelity(images: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Errors of images [N, H, W, C] against reference [N, H, W, C], both float in [0, 1].

    Returns:
      {"max_abs_error", "mean_abs_error", "psnr_db" (over all pixels), "worst_image_psnr_db"}.
    """
    images, reference = np.asarray(images, np.float64), np.asarray(reference, np.float64)
    if images.shape != reference.shape or images.ndim != 4 or not len(images):
        raise ValueError(
            f"images {list(images.shape)} and reference {list(reference.shape)} must be the same [N, H, W, C], N >= 1"
        )
    error = images - reference
    per_image_mse = np.mean(np.square(error), axis=(1, 2, 3))
    return {
        "max_abs_error": float(np.max(np.abs(error))),
        "mean_abs_error": float(np.mean(np.abs(error))),
        "psnr_db": psnr_db(float(np.mean(per_image_mse))),
        "worst_image_psnr_db": psnr_db(float(np.max(per_image_mse))),
    }


def median_latency_ms(decoder: TFLiteDecoder, latent: np.ndarray, invokes: int = DEFAULT_LATENCY_INVOKES) -> float:
    """Median milliseconds of `invokes` single invokes of `decoder` on latent [1, L], after a warm-up."""
    if invokes < 1:
        raise ValueError(f"invokes must be >= 1, got {invokes}")
    decoder.prepare(latent)
    for _ in range(WARMUP_INVOKES):
        decoder.invoke()
    times = []
    for _ in range(invokes):
        start = time.perf_counter()
        decoder.invoke()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def verify_decoder(
    path: str,
    latent: np.ndarray,
    reference: np.ndarray,
    min_psnr: float = DEFAULT_MIN_PSNR,
    invokes: int = DEFAULT_LATENCY_INVOKES,
    num_threads: int = DEFAULT_NUM_THREADS,
) -> dict[str, Any]:
    """Size, latency and fidelity of one decoder file on latent [N, L] against reference images [N, H, W, C]."""
    decoder = TFLiteDecoder(path, num_threads=num_threads)
    checks = {
        "file": os.path.basename(path),
        "bytes": decoder.size_bytes,
        "output_dtype": decoder.output_dtype.name,
        "latency_ms": median_latency_ms(decoder, latent[: decoder.batch_size or 1], invokes),
        **fidelity(decoder.decode(latent), reference),
    }
    checks["passed"] = bool(checks["psnr_db"] >= min_psnr)
    return checks


def verify_decoders(
    paths: Mapping[str, str],
    latent: np.ndarray,
    reference: np.ndarray,
    min_psnr: float = DEFAULT_MIN_PSNR,
    invokes: int = DEFAULT_LATENCY_INVOKES,
    num_threads: int = DEFAULT_NUM_THREADS,
) -> dict[str, Any]:
    """`verify_decoder` for every {variant: path}, with sizes relative to float32 and a verdict.

    Returns:
      {"variants": {variant: checks}, "failures": ["<variant>: PSNR ... < ...", ...], "passed": bool}.
    """
    variants = {
        name: verify_decoder(path, latent, reference, min_psnr, invokes, num_threads) for name, path in paths.items()
    }
    if REFERENCE_VARIANT in variants:
        for checks in variants.values():
            checks["size_vs_float32"] = checks["bytes"] / variants[REFERENCE_VARIANT]["bytes"]
    failures = [
        f"{name}: PSNR {checks['psnr_db']:.2f} dB is below the floor of {min_psnr:g} dB"
        for name, checks in variants.items()
        if not checks["passed"]
    ]
    return {"variants": variants, "failures": failures, "passed": not failures}


def format_table(variants: Mapping[str, Mapping[str, Any]]) -> str:
    """A fixed-width table of `verify_decoders(...)["variants"]`, one line per variant."""
    header = ("variant", "bytes", "vs f32", "latency ms", "max abs err", "mean abs err", "PSNR dB", "worst dB", "floor")
    rows = [header]
    for name, c in variants.items():
        ratio = c.get("size_vs_float32")
        rows.append((
            name,
            f"{c['bytes']:,}",
            "-" if ratio is None else f"{100 * ratio:.1f}%",
            f"{c['latency_ms']:.3f}",
            f"{c['max_abs_error']:.2e}",
            f"{c['mean_abs_error']:.2e}",
            f"{c['psnr_db']:.2f}",
            f"{c['worst_image_psnr_db']:.2f}",
            "pass" if c["passed"] else "FAIL",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in rows]
    return "\n".join(lines)


def write_report(path: str, report: Mapping[str, Any]) -> None:
    """Writes the report as JSON (keys in their given order), atomically, with mode 0o666 less the umask.

    A decoder identical to the reference has PSNR infinity, written as Python's `Infinity`.
    """
    fileio.write_json(path, report, sort_keys=False)
