"""Deployment exports of a trained JointVAE: a SavedModel and small TFLite decoders, verified.

    python -m export --model_dir=runs/dsprites --output_dir=runs/dsprites/export

writes into output_dir:

    saved_model/                    signatures encode, decode, reconstruct, sample (no Keras needed)
    decoder_float32.tflite          latent [1, L] -> images [1, H, W, C] in [0, 1] (any batch: --dynamic_batch)
    decoder_float16.tflite          float16 weights
    decoder_dynamic_int8.tflite     int8 weights, float activations
    decoder_int8.tflite             int8 weights and activations, float32 input and output
    decoder_int8_uint8.tflite       optional (--variants=...,int8_uint8): uint8 pixels out, for display
    web/                            optional (--web): the offline latent explorer page, decoder_int8.tflite on
                                    LiteRT.js in the browser (serve it: python -m http.server -d web)
    export_report.json              size, latency and fidelity of every decoder, written last

Modules, each loaded on first use so that this package imports without TensorFlow
(`python -m export.decode_tflite` runs on a device that has only LiteRT and numpy):

    saved_model     the serving tf.Modules and the SavedModel export        (TensorFlow)
    tflite          decoder conversion, calibration latents, model metadata  (TensorFlow)
    report          fidelity, latency, the report table and its floor        (LiteRT + numpy)
    decode_tflite   TFLiteDecoder, PNG writing, the on-device decoding tool  (LiteRT + numpy)
    webpage         the --web page: its sources in export/web/, LiteRT.js by npm ci  (standard library)
"""

import importlib

_SUBMODULES = ("saved_model", "tflite", "report", "decode_tflite", "webpage")


def __getattr__(name):
    if name in _SUBMODULES:
        module = importlib.import_module(f"export.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'export' has no attribute {name!r}")


__all__ = list(_SUBMODULES)
