"""export.report: the fidelity numbers, the latency, the floor verdict and the table."""

import json
import math
import os

import numpy as np
import pytest

from export import decode_tflite, report


def test_psnr_of_known_errors():
    assert report.psnr_db(1.0) == 0.0
    assert report.psnr_db(1e-3) == pytest.approx(30.0)
    assert report.psnr_db(0.0) == math.inf


def test_fidelity_numbers():
    reference = np.zeros((2, 4, 4, 1), np.float32)
    images = reference.copy()
    images[0] += 0.1          # image 0: every pixel off by 0.1 (MSE 0.01)
    images[1, 0, 0, 0] = 0.5  # image 1: one pixel of 16 off by 0.5 (MSE 0.25 / 16)
    result = report.fidelity(images, reference)
    assert result["max_abs_error"] == pytest.approx(0.5)
    assert result["mean_abs_error"] == pytest.approx((16 * 0.1 + 0.5) / 32)
    assert result["psnr_db"] == pytest.approx(10 * math.log10(1 / ((0.01 + 0.25 / 16) / 2)))
    assert result["worst_image_psnr_db"] == pytest.approx(10 * math.log10(16 / 0.25))  # image 1
    assert report.fidelity(reference, reference)["psnr_db"] == math.inf


def test_fidelity_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match=r"images \[2, 4, 4, 1\] and reference \[3, 4, 4, 1\] must be the same"):
        report.fidelity(np.zeros((2, 4, 4, 1)), np.zeros((3, 4, 4, 1)))


@pytest.fixture(scope="module")
def verification_data(trained_model):
    latent = trained_model.sample_prior(100, seed=1).numpy()
    return latent, trained_model.decode(latent).numpy()


def test_verify_decoders_measures_every_variant(exported, verification_data):
    output_dir, _ = exported
    latent, reference = verification_data
    paths = {v: os.path.join(output_dir, f"decoder_{v}.tflite") for v in ("float32", "int8", "int8_uint8")}
    result = report.verify_decoders(paths, latent, reference, min_psnr=30.0, invokes=10)
    assert result["passed"] and result["failures"] == []
    variants = result["variants"]
    assert list(variants) == ["float32", "int8", "int8_uint8"]
    for name, checks in variants.items():
        assert checks["bytes"] == os.path.getsize(paths[name])
        assert checks["latency_ms"] > 0
        assert checks["size_vs_float32"] == pytest.approx(checks["bytes"] / variants["float32"]["bytes"])
        assert 0 <= checks["mean_abs_error"] <= checks["max_abs_error"] < 0.1
        assert checks["worst_image_psnr_db"] <= checks["psnr_db"]
    assert variants["float32"]["max_abs_error"] < 1e-5
    assert variants["int8"]["psnr_db"] < variants["float32"]["psnr_db"]
    assert variants["int8_uint8"]["output_dtype"] == "uint8"


def test_a_decoder_below_the_floor_fails(exported, verification_data):
    output_dir, _ = exported
    latent, reference = verification_data
    paths = {v: os.path.join(output_dir, f"decoder_{v}.tflite") for v in ("float32", "int8")}
    # A floor between the two decoders' PSNRs: float32 passes, int8 fails.
    psnr = {v: report.fidelity(decode_tflite.TFLiteDecoder(p).decode(latent), reference)["psnr_db"]
            for v, p in paths.items()}
    floor = (psnr["int8"] + psnr["float32"]) / 2
    result = report.verify_decoders(paths, latent, reference, min_psnr=floor, invokes=5)
    assert not result["passed"]
    assert [result["variants"][v]["passed"] for v in ("float32", "int8")] == [True, False]
    assert len(result["failures"]) == 1 and result["failures"][0].startswith("int8: PSNR ")
    assert f"below the floor of {floor:g} dB" in result["failures"][0]

    table = report.format_table(result["variants"])
    lines = table.splitlines()
    assert len(lines) == 3 and lines[0].split()[0] == "variant"
    assert lines[1].split()[0] == "float32" and lines[1].split()[-1] == "pass"
    assert lines[2].split()[0] == "int8" and lines[2].split()[-1] == "FAIL"
    assert f"{os.path.getsize(paths['int8']):,}" in lines[2]


def test_a_wrong_reference_fails_every_decoder(exported, verification_data):
    output_dir, _ = exported
    latent, reference = verification_data
    path = os.path.join(output_dir, "decoder_float32.tflite")
    result = report.verify_decoders({"float32": path}, latent, 1.0 - reference, min_psnr=30.0, invokes=5)
    assert not result["passed"] and result["variants"]["float32"]["psnr_db"] < 30.0


def test_median_latency(exported, verification_data):
    decoder = decode_tflite.TFLiteDecoder(os.path.join(exported[0], "decoder_int8.tflite"))
    latent = verification_data[0][:1]
    assert 0 < report.median_latency_ms(decoder, latent, invokes=25) < 1000
    with pytest.raises(ValueError, match="invokes must be >= 1, got 0"):
        report.median_latency_ms(decoder, latent, invokes=0)


def test_write_report_is_json_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "export_report.json"
    report.write_report(str(path), {"passed": True, "psnr_db": math.inf})
    assert json.loads(path.read_text()) == {"passed": True, "psnr_db": math.inf}
    assert os.listdir(tmp_path) == ["export_report.json"]
