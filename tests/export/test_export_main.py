"""export.__main__: the jointvae-export binary end to end, its failures, and the folder it publishes."""

import json
import os
import shutil
import stat

import pytest
from binary_runs import run_in_one_process
from file_tree import snapshot as _tree
from export_test_utils import FAST_FLAGS, LATENT_DIM, ROOT, run_python

from export import __main__ as export_main
from export import decode_tflite, tflite

VARIANTS = ["float32", "float16", "dynamic_int8", "int8", "int8_uint8"]


def _export_binary(*args, **kwargs):
    return run_python(["-m", "export", *args], **kwargs)


def _options(model_dir, output_dir, **kwargs):
    """Options for a quick in-process export: one decoder, few samples."""
    values = dict(variants=["float32"], fidelity_samples=20, latency_invokes=5, calibration_samples=10)
    values.update(kwargs)
    return export_main.ExportOptions(model_dir=model_dir, output_dir=str(output_dir), **values)


def test_the_export_writes_every_artifact_and_a_passing_report(exported):
    output_dir, result = exported
    expected = {"saved_model", "export_report.json", *(f"decoder_{v}.tflite" for v in VARIANTS)}
    assert set(os.listdir(output_dir)) == expected
    assert [n for n in os.listdir(os.path.dirname(output_dir)) if n != "out"] == []  # no staging folder left
    with open(os.path.join(output_dir, "export_report.json")) as f:
        report = json.load(f)
    assert report["passed"] is True and report["failures"] == []
    assert report["model"]["latent_dim"] == LATENT_DIM and report["model"]["latent_spec"] == {"cont": 4, "disc": [3]}
    assert report["saved_model"]["decode_max_abs_error"] <= 1e-5
    assert report["fidelity"]["samples"] == 200 and report["fidelity"]["min_psnr_db"] == 30.0
    assert report["latency"] == {"batch": 1, "invokes": 30, "warmup": 20, "num_threads": 2, "statistic": "median"}
    assert report["tflite_batch"] == 1
    # The model_dir names dsprites (64x64), which a 32x32 model cannot take: prior samples only, said so.
    assert report["calibration"]["source"] == "prior" and "dsprites" in report["calibration"]["fallback"]
    assert list(report["variants"]) == VARIANTS
    for name, checks in report["variants"].items():
        assert checks["bytes"] == os.path.getsize(os.path.join(output_dir, checks["file"]))
        assert checks["passed"] and checks["psnr_db"] >= 30.0 and checks["latency_ms"] > 0
        assert decode_tflite.TFLiteDecoder(os.path.join(output_dir, checks["file"])).metadata["variant"] == name
    assert report["variants"]["int8"]["size_vs_float32"] < 0.35
    # The printed table: a header and one line per variant, then the destination.
    lines = result.stdout.strip().splitlines()
    assert lines[0].split()[0] == "variant"
    assert [line.split()[0] for line in lines[1:6]] == VARIANTS
    assert all(line.split()[-1] == "pass" for line in lines[1:6])
    assert lines[-1].startswith(f"exported to {output_dir}")


def test_the_defaults_are_the_specified_verification():
    options = export_main.ExportOptions(model_dir="m", output_dir="o")
    assert options.fidelity_samples >= 1000 and options.latency_invokes >= 200
    assert options.num_threads == 2 and options.min_psnr == 30.0
    assert tuple(options.variants) == tflite.DEFAULT_VARIANTS


def test_a_model_dir_without_checkpoint_fails_cleanly(tmp_path):
    model_dir = tmp_path / "untrained"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps({"model": {"image_shape": [32, 32, 1]}}))
    output_dir = tmp_path / "out"
    result = _export_binary(f"--model_dir={model_dir}", f"--output_dir={output_dir}")
    assert result.returncode == 1
    assert "jointvae-export: error: no checkpoint in" in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["untrained"]  # no output_dir, no staging folder


def test_an_output_dir_that_cannot_be_written_fails_before_any_work(model_dir, export_runs):
    result, tmp_path, _ = export_runs["unwritable"]
    blocker = tmp_path / "a_file"
    assert result.returncode == 1, result.stderr
    assert (f"jointvae-export: error: output_dir {blocker / 'out'} cannot be written: {blocker} is a file, not a folder"
            in result.stderr)
    with pytest.raises(ValueError, match=f"output_dir {blocker} is an existing file, not a folder"):
        export_main.export(_options(model_dir, blocker))
    assert sorted(os.listdir(tmp_path)) == ["a_file"]


def test_a_decoder_below_the_floor_fails_and_is_not_published(export_runs):
    result, tmp_path, _ = export_runs["below_floor"]
    output_dir = tmp_path / "out"
    assert result.returncode == 1
    assert "jointvae-export: error: verification failed: float32: PSNR" in result.stderr
    assert "below the floor of 1000 dB" in result.stderr
    assert not output_dir.exists()
    assert sorted(os.listdir(tmp_path)) == ["out.failed"]
    report = json.loads((tmp_path / "out.failed" / "export_report.json").read_text())
    assert report["passed"] is False and len(report["failures"]) == 1
    assert result.stdout.splitlines()[1].split()[-1] == "FAIL"


def _fake_export(folder, report=None, names=("decoder_float32.tflite",)):
    """A folder shaped like an earlier export: export_report.json (ours unless `report`) and `names`."""
    folder.mkdir(parents=True, exist_ok=True)
    report = {"written_by": "jointvae-export", "passed": False} if report is None else report
    (folder / "export_report.json").write_text(json.dumps(report))
    for name in names:
        (folder / name).write_bytes(b"old")
    return folder


def test_a_failed_verification_replaces_an_older_rejected_export(model_dir, tmp_path):
    _fake_export(tmp_path / "out.failed", names=["decoder_int8.tflite", "saved_model"])
    with pytest.raises(export_main.VerificationError, match="rejected export kept in") as raised:
        export_main.export(_options(model_dir, tmp_path / "out", min_psnr=1000.0))
    assert raised.value.report["passed"] is False
    rejected = sorted(os.listdir(tmp_path / "out.failed"))
    assert rejected == ["decoder_float32.tflite", "export_report.json", "saved_model"]
    assert sorted(os.listdir(tmp_path)) == ["out.failed"]


def test_a_failed_verification_leaves_a_rejected_folder_holding_other_files_alone(model_dir, tmp_path):
    _fake_export(tmp_path / "out.failed", names=["notes.txt"])
    message = (f"rejected export not kept: {tmp_path / 'out.failed'} holds files that were not written by "
               "jointvae-export \\(notes.txt\\)")
    with pytest.raises(export_main.VerificationError, match=message):
        export_main.export(_options(model_dir, tmp_path / "out", min_psnr=1000.0))
    assert sorted(os.listdir(tmp_path / "out.failed")) == ["export_report.json", "notes.txt"]
    assert sorted(os.listdir(tmp_path)) == ["out.failed"]


def test_check_options_names_the_bad_value():
    with pytest.raises(ValueError, match="fidelity_samples must be an integer >= 1, got 0"):
        export_main.check_options(export_main.ExportOptions("m", "o", fidelity_samples=0))
    with pytest.raises(ValueError, match="unknown TFLite variant 'fp8'"):
        export_main.check_options(export_main.ExportOptions("m", "o", variants=["fp8"]))


def test_a_non_empty_output_dir_needs_overwrite(model_dir, tmp_path):
    output_dir = _fake_export(tmp_path / "out", names=["decoder_int8.tflite", "saved_model"])
    with pytest.raises(ValueError, match="is not empty: pass --overwrite"):
        export_main.export(_options(model_dir, output_dir))
    assert sorted(os.listdir(output_dir)) == ["decoder_int8.tflite", "export_report.json", "saved_model"]
    result = export_main.export(_options(model_dir, output_dir, overwrite=True))
    assert result["passed"] and result["written_by"] == "jointvae-export"
    assert sorted(os.listdir(output_dir)) == ["decoder_float32.tflite", "export_report.json", "saved_model"]
    assert sorted(os.listdir(tmp_path)) == ["out"]
    # The export just written is an earlier export for the next --overwrite.
    assert export_main.foreign_entries(str(output_dir)) == []


def test_an_empty_output_dir_is_used(model_dir, tmp_path):
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    export_main.export(_options(model_dir, output_dir))
    assert "export_report.json" in os.listdir(output_dir)


def test_a_keras_file_exports_too(trained_model, tmp_path):
    path = str(tmp_path / "model.keras")
    trained_model.save(path)
    result = export_main.export(_options(path, tmp_path / "out", variants=["int8"]))
    assert result["passed"]
    assert result["model"]["dataset"] is None and result["calibration"]["source"] == "prior"
    assert "fallback" not in result["calibration"] and result["calibration"]["prior_samples"] == 10


def test_dynamic_batch_decoders(model_dir, tmp_path):
    result = export_main.export(_options(model_dir, tmp_path / "out", dynamic_batch=True))
    assert result["passed"] and result["tflite_batch"] == "any"
    assert decode_tflite.TFLiteDecoder(str(tmp_path / "out" / "decoder_float32.tflite")).batch_size is None


def test_a_failure_midway_leaves_no_staging_folder(model_dir, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("conversion broke")

    monkeypatch.setattr(tflite, "convert_decoders", broken)
    with pytest.raises(ValueError, match="conversion broke"):
        export_main.export(_options(model_dir, tmp_path / "out"))
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- what --overwrite may replace
def _error_line(result):
    """The binary's one error line (absl may log the same error before it)."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("jointvae-export: error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def _runs_in(folder, model_dir):
    """folder/runs/: a copy of the trained model_dir ("mine"), a sibling run and the user's notes."""
    shutil.copytree(model_dir, folder / "runs" / "mine")
    shutil.copytree(model_dir, folder / "runs" / "sibling")
    (folder / "runs" / "notes.txt").write_text("the user's own file")
    return folder / "runs"


@pytest.fixture
def runs(model_dir, tmp_path):
    return _runs_in(tmp_path, model_dir)


OVER_THE_MODEL = [("mine", "is"), (".", "contains"), ("mine/export", "is inside")]


@pytest.fixture(scope="module")
def export_runs(model_dir, trained_model, tmp_path_factory):
    """jointvae-export run on each case below, all in one process (one TensorFlow import, not one per case):
    {case: (Run, the case's own folder, a snapshot of what the run must leave alone, or None)}.

    Each run goes through absl's app.run and export's main as `python -m export` does; the binary's own
    process exit on bad input is tested by test_a_model_dir_without_checkpoint_fails_cleanly."""
    cases, folders, before, umasks = {}, {}, {}, {}

    def folder_of(case):
        folders[case] = tmp_path_factory.mktemp(case.replace(":", "_").replace("/", "_").replace(".", "dot"))
        return folders[case]

    blocker = folder_of("unwritable") / "a_file"
    blocker.write_text("not a folder")
    cases["unwritable"] = [f"--model_dir={model_dir}", f"--output_dir={blocker / 'out'}"]
    cases["below_floor"] = [f"--model_dir={model_dir}", f"--output_dir={folder_of('below_floor') / 'out'}",
                            "--variants=float32", "--min_psnr=1000", *FAST_FLAGS]
    for output, _ in OVER_THE_MODEL:
        case = f"over_the_model:{output}"
        runs = _runs_in(folder_of(case), model_dir)
        before[case] = _tree(runs)
        cases[case] = [f"--model_dir={runs / 'mine'}", f"--output_dir={os.path.normpath(runs / output)}",
                       "--overwrite", "--variants=float32"]
    keras_file = folder_of("keras_file") / "models" / "model.keras"
    keras_file.parent.mkdir()
    trained_model.save(str(keras_file))
    before["keras_file"] = _tree(folders["keras_file"])
    cases["keras_file"] = [f"--model_dir={keras_file}", f"--output_dir={keras_file.parent}", "--overwrite"]
    runs = _runs_in(folder_of("not_an_export"), model_dir)
    before["not_an_export"] = _tree(runs)
    cases["not_an_export"] = [f"--model_dir={runs / 'mine'}", f"--output_dir={runs / 'sibling'}", "--overwrite"]
    for umask in (0o022, 0o077):
        case = f"umask{umask:03o}"
        umasks[case] = umask
        cases[case] = [f"--model_dir={model_dir}", f"--output_dir={folder_of(case) / 'out'}",
                       "--variants=float32,int8", "--fidelity_samples=20", "--latency_invokes=5",
                       "--calibration_samples=10"]
    results = run_in_one_process("export", cases, umasks=umasks, cwd=ROOT,
                                 env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT))
    return {case: (results[case], folders[case], before.get(case)) for case in cases}


@pytest.mark.parametrize("output, relation", OVER_THE_MODEL, ids=["the_model_dir", "its_parent", "inside_it"])
def test_overwrite_refuses_an_output_dir_over_the_model(export_runs, output, relation):
    result, folder, before = export_runs[f"over_the_model:{output}"]
    runs = folder / "runs"
    output_dir = os.path.normpath(runs / output)
    assert result.returncode == 1
    assert _error_line(result) == (
        f"jointvae-export: error: output_dir {output_dir} {relation} model_dir {runs / 'mine'}: "
        "an output may not be, contain or sit inside an input, since replacing it would delete the input"
    )
    assert _tree(runs) == before  # the model, the sibling run and the notes, byte for byte
    assert sorted(os.listdir(runs.parent)) == ["runs"]  # no staging folder either


def test_overwrite_refuses_an_output_dir_holding_the_keras_file(export_runs):
    result, tmp_path, before = export_runs["keras_file"]
    keras_file = tmp_path / "models" / "model.keras"
    assert result.returncode == 1
    assert (f"output_dir {keras_file.parent} contains model_dir {keras_file}: an output may not be"
            in _error_line(result))
    assert _tree(tmp_path) == before


def test_symlinks_and_dot_dots_do_not_fool_the_check(runs, tmp_path):
    (tmp_path / "link").symlink_to(runs)
    before = _tree(runs)
    for output_dir in (tmp_path / "link", tmp_path / "link" / "mine", f"{runs}/sibling/../mine"):
        with pytest.raises(ValueError, match=f"model_dir {runs / 'mine'}: an output may not be"):
            export_main.export(_options(str(runs / "mine"), output_dir, overwrite=True))
    # The model_dir reached through the link is the same model_dir.
    with pytest.raises(ValueError, match=rf"output_dir {runs} contains model_dir {tmp_path / 'link' / 'mine'} "
                                         rf"\(real path {runs / 'mine'}\)"):
        export_main.export(_options(str(tmp_path / "link" / "mine"), runs, overwrite=True))
    assert _tree(runs) == before
    # Nor may the folder a failed export is moved to.
    os.rename(runs / "sibling", runs / "out.failed")
    with pytest.raises(ValueError, match=f"the rejected-export folder {runs / 'out.failed'} is model_dir"):
        export_main.export(_options(str(runs / "out.failed"), runs / "out", min_psnr=1000.0))
    assert sorted(os.listdir(runs)) == ["mine", "notes.txt", "out.failed"]


def test_overwrite_refuses_a_folder_that_is_not_an_earlier_export(export_runs, tmp_path):
    """Even with --overwrite: another training run, or an export the user added files to, stays."""
    result, folder, before = export_runs["not_an_export"]
    runs = folder / "runs"
    assert result.returncode == 1
    assert _error_line(result) == (
        f"jointvae-export: error: output_dir {runs / 'sibling'} holds files that were not written by "
        "jointvae-export (checkpoints, config.json): --overwrite replaces only an earlier export and will not "
        "delete them; choose another output_dir"
    )
    assert _tree(runs) == before
    export_dir = _fake_export(tmp_path / "export", names=["decoder_float32.tflite", "saved_model", "README.md"])
    with pytest.raises(ValueError, match=r"holds files that were not written by jointvae-export \(README.md\)"):
        export_main.export(_options(str(runs / "mine"), export_dir, overwrite=True))
    assert sorted(os.listdir(export_dir)) == ["README.md", "decoder_float32.tflite", "export_report.json",
                                              "saved_model"]


@pytest.mark.parametrize(
    "report, foreign",
    [
        ({"written_by": "jointvae-export"}, ["notes.txt"]),
        # Exports written before the "written_by" key: recognised by the keys reports have always had.
        ({"passed": True, "failures": [], "saved_model": {}, "variants": {}, "versions": {}}, ["notes.txt"]),
        ({"written_by": "someone else"}, ["decoder_float32.tflite", "export_report.json", "notes.txt"]),
        (["not", "a", "report"], ["decoder_float32.tflite", "export_report.json", "notes.txt"]),
    ],
    ids=["ours", "ours_before_the_marker", "another_tool", "not_an_object"],
)
def test_what_counts_as_an_earlier_export(tmp_path, report, foreign):
    folder = _fake_export(tmp_path / "out", report, names=["decoder_float32.tflite", "notes.txt"])
    assert export_main.foreign_entries(str(folder)) == foreign
    (folder / "export_report.json").write_bytes(b"\xff not json")
    assert export_main.foreign_entries(str(folder)) == ["decoder_float32.tflite", "export_report.json", "notes.txt"]


# --------------------------------------------------------------------------- permissions
def _modes(root):
    """{relative path: permission bits} of root and everything under it."""
    modes = {".": stat.S_IMODE(os.stat(root).st_mode)}
    for folder, dirs, names in os.walk(root):
        for name in dirs + names:
            path = os.path.join(folder, name)
            modes[os.path.relpath(path, root)] = stat.S_IMODE(os.stat(path).st_mode)
    return modes


@pytest.mark.parametrize("umask", [0o022, 0o077], ids=["umask022", "umask077"])
def test_the_export_follows_the_umask(export_runs, umask):
    """0755 folders and 0644 files under umask 022, to share; 0700 / 0600 under 077 (mkdtemp and mkstemp
    would give 0700 / 0600 whatever the umask)."""
    result, tmp_path, _ = export_runs[f"umask{umask:03o}"]
    output_dir = tmp_path / "out"
    assert result.returncode == 0, result.stderr[-3000:]
    modes = _modes(output_dir)
    assert {"saved_model", "saved_model/variables", "export_report.json", "decoder_float32.tflite",
            "decoder_int8.tflite"} <= set(modes)
    wrong = {path: oct(mode) for path, mode in modes.items()
             if mode != (0o777 if os.path.isdir(output_dir / path) else 0o666) & ~umask}
    assert not wrong, f"modes under umask {umask:03o}: {wrong}"
