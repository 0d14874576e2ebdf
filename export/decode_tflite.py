"""Decodes latents to PNG files with a jointvae-export decoder, using LiteRT and numpy alone.

    python -m export.decode_tflite --model=decoder_int8.tflite --output_dir=out --latent="0.1,-1.2,0.3,0.5,0,1,0"
    python -m export.decode_tflite --model=decoder_int8.tflite --output_dir=out --random=16 --seed=0

This module is what runs on a device: it imports neither TensorFlow nor jointvae_tf, only
`ai_edge_litert`, numpy, absl, the standard library and `export.fileio` (standard library
only). It also holds the pieces the export's verification shares with the device:

    TFLiteDecoder   a decoder .tflite behind the LiteRT interpreter: latent [B, L] -> images [B, H, W, C]
    read_metadata   the latent layout jointvae-export stores inside every decoder .tflite
    encode_png      a minimal PNG encoder (zlib + struct)
    atomic_write    every output file appears complete or not at all

A decoder's input is the latent `[z, c_1 (one-hot K_1), c_2, ...]` of width L, in a fixed
batch of 1 by default (or any batch, exported with --dynamic_batch); its output is float32
images in [0, 1], or, for the `int8_uint8` variant, uint8 pixels ready to display.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import zlib
from typing import Any, Sequence

import numpy as np
from absl import app, flags
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from export import fileio

SIGNATURE = "decode"
INPUT_NAME = "latent"
OUTPUT_NAME = "images"
METADATA_NAME = "jointvae_decoder"
TFLITE_IDENTIFIER = b"TFL3"
DEFAULT_NUM_THREADS = 2
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour types by channel count: grey, grey + alpha, RGB, RGBA.
_PNG_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}


# --------------------------------------------------------------------------- files
def atomic_write(path: str, data: bytes) -> None:
    """Writes `data` to `path` through a temporary file in the same folder and `os.replace`.

    The file gets the usual permissions, 0o666 less the umask (`export.fileio.write_bytes`).
    """
    fileio.write_bytes(path, data)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] -> uint8 pixels round(255 * x); integer images pass through as uint8."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    return np.clip(np.rint(images.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)


def encode_png(image: np.ndarray) -> bytes:
    """An 8-bit PNG of one image [H, W, C] (C in 1..4; uint8, or float in [0, 1])."""
    image = to_uint8(image)
    if image.ndim != 3 or image.shape[-1] not in _PNG_COLOUR_TYPES:
        raise ValueError(f"a PNG image must be [height, width, channels] with 1 to 4 channels, got {image.shape}")
    height, width, channels = image.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), image.reshape(height, width * channels)], axis=1)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, _PNG_COLOUR_TYPES[channels], 0, 0, 0)
    pixels = zlib.compress(rows.tobytes(), 9)
    return _PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


# --------------------------------------------------------------------------- the model
def read_metadata(content: bytes) -> dict[str, Any] | None:
    """The JSON jointvae-export stores in a .tflite's metadata under METADATA_NAME, or None.

    It holds {"latent_spec": {"cont": int, "disc": [K_1, ...]}, "image_shape": [H, W, C],
    "variant": str, "output": str}. Call it on a model the interpreter has accepted: the
    flatbuffer is read without verification.
    """
    model = schema.Model.GetRootAs(content, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == METADATA_NAME.encode():
            data = model.Buffers(entry.Buffer()).DataAsNumpy()
            try:
                return json.loads(bytes(data).decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise ValueError(f"the '{METADATA_NAME}' metadata is not JSON") from None
    return None


class TFLiteDecoder:
    """A decoder .tflite written by jointvae-export, run by the LiteRT interpreter.

        decoder = TFLiteDecoder("decoder_int8.tflite")
        images = decoder.decode(latent)      # float32 [batch, L] -> float32 [batch, H, W, C] in [0, 1]

    Args:
      path: the .tflite file.
      num_threads: CPU threads of the interpreter.

    Raises:
      FileNotFoundError: no such file.
      ValueError: the file is not a TFLite model, or not a jointvae-export decoder.
    """

    def __init__(self, path: str, num_threads: int = DEFAULT_NUM_THREADS):
        self.path = path
        if not os.path.isfile(path):
            raise FileNotFoundError(f"decoder model {path} not found")
        with open(path, "rb") as f:
            content = f.read()
        if len(content) < 8 or content[4:8] != TFLITE_IDENTIFIER:
            raise ValueError(
                f"{path} is not a TFLite model: it lacks the 'TFL3' file identifier (corrupted or wrong file)"
            )
        try:
            self._interpreter = Interpreter(model_content=content, num_threads=num_threads)
        except (ValueError, RuntimeError) as error:
            raise ValueError(f"{path} is not a valid TFLite model (corrupted?): {error}") from None
        signature = self._interpreter.get_signature_list().get(SIGNATURE)
        if signature is None or signature["inputs"] != [INPUT_NAME] or signature["outputs"] != [OUTPUT_NAME]:
            raise ValueError(
                f"{path} has no '{SIGNATURE}' signature taking '{INPUT_NAME}' to '{OUTPUT_NAME}': "
                "it is not a decoder written by jointvae-export"
            )
        try:
            self.metadata = read_metadata(content)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
        if self.metadata is None:
            raise ValueError(
                f"{path} carries no '{METADATA_NAME}' metadata: it is not a decoder written by jointvae-export"
            )
        runner = self._interpreter.get_signature_runner(SIGNATURE)
        self._input = runner.get_input_details()[INPUT_NAME]
        self._output = runner.get_output_details()[OUTPUT_NAME]
        if self._input["dtype"] != np.float32:
            dtype = np.dtype(self._input["dtype"]).name
            raise ValueError(f"{path} takes {dtype} latents; jointvae decoders take float32")
        self.latent_dim = int(self._input["shape_signature"][-1])
        batch = int(self._input["shape_signature"][0])
        self.batch_size = batch if batch > 0 else None  # None: any batch (the input is resized)
        self.output_dtype = np.dtype(self._output["dtype"])
        try:
            self.continuous = int(self.metadata["latent_spec"]["cont"])
            self.discrete = tuple(int(k) for k in self.metadata["latent_spec"]["disc"])
            self.image_shape = tuple(int(d) for d in self.metadata["image_shape"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{path} has malformed '{METADATA_NAME}' metadata: {self.metadata!r}") from None
        if self.latent_dim != self.continuous + sum(self.discrete):
            raise ValueError(
                f"{path}: metadata {self.metadata['latent_spec']} does not match its input width {self.latent_dim}"
            )
        self._batch = None

    @property
    def size_bytes(self) -> int:
        return os.path.getsize(self.path)

    def discrete_slices(self) -> list[slice]:
        """Where each discrete latent's one-hot part sits in the latent vector."""
        slices, start = [], self.continuous
        for k in self.discrete:
            slices.append(slice(start, start + k))
            start += k
        return slices

    def prepare(self, latent: np.ndarray) -> None:
        """Sets latent [batch, L] as the input, sizing the interpreter when the batch changes.

        A fixed-batch decoder takes exactly `batch_size` latents; `decode` splits and pads for it.
        """
        latent = np.ascontiguousarray(latent, dtype=np.float32)
        if latent.ndim != 2 or latent.shape[1] != self.latent_dim:
            raise ValueError(f"latent must have shape [batch, {self.latent_dim}], got {list(latent.shape)}")
        batch = latent.shape[0]
        if self.batch_size is not None and batch != self.batch_size:
            raise ValueError(f"{self.path} takes a fixed batch of {self.batch_size} latents, got {batch}")
        if batch != self._batch:
            self._batch = None
            try:
                if self.batch_size is None:
                    self._interpreter.resize_tensor_input(self._input["index"], [batch, self.latent_dim])
                self._interpreter.allocate_tensors()
            except RuntimeError as error:
                raise ValueError(f"{self.path} cannot run a batch of {batch} (corrupted?): {error}") from None
            self._batch = batch
        self._interpreter.set_tensor(self._input["index"], latent)

    def invoke(self) -> None:
        """Runs the model on the latent last given to `prepare`."""
        try:
            self._interpreter.invoke()
        except RuntimeError as error:
            raise ValueError(f"{self.path} failed to run (corrupted?): {error}") from None

    def output(self) -> np.ndarray:
        """The raw output of the last invoke: [batch, H, W, C] float32, or uint8 for a uint8-output decoder."""
        return self._interpreter.get_tensor(self._output["index"])

    def decode_raw(self, latent: np.ndarray, batch_size: int = 100) -> np.ndarray:
        """Raw outputs (see `output`) of latent [N, L], any N.

        Runs `batch_size` latents at a time, or the decoder's fixed batch (padding the last one).
        """
        latent = np.asarray(latent, dtype=np.float32)
        if latent.ndim != 2 or latent.shape[1] != self.latent_dim:
            raise ValueError(f"latent must have shape [batch, {self.latent_dim}], got {list(latent.shape)}")
        step = self.batch_size or batch_size
        chunks = []
        for start in range(0, len(latent), step):
            chunk = latent[start:start + step]
            size = len(chunk)
            if self.batch_size is not None and size < step:
                chunk = np.concatenate([chunk, np.zeros((step - size, self.latent_dim), np.float32)])
            self.prepare(chunk)
            self.invoke()
            chunks.append(self.output()[:size].copy())
        return np.concatenate(chunks) if chunks else np.zeros((0, *self.image_shape), self.output_dtype)

    def decode(self, latent: np.ndarray, batch_size: int = 100) -> np.ndarray:
        """Images [N, H, W, C] float32 in [0, 1] of latent [N, L]; integer outputs are dequantised."""
        raw = self.decode_raw(latent, batch_size)
        if self.output_dtype.kind == "f":
            return raw.astype(np.float32)
        params = self._output["quantization_parameters"]
        scale, zero_point = float(params["scales"][0]), int(params["zero_points"][0])
        return (raw.astype(np.float32) - zero_point) * scale

    # ----------------------------------------------------------------- latents
    def parse_latent(self, text: str) -> np.ndarray:
        """A latent [L] from "z_1,...,z_n,c..." text, checked: L finite numbers, each c_i one-hot."""
        values = []
        for token in text.split(","):
            try:
                values.append(float(token))
            except ValueError:
                raise ValueError(f"latent {text!r}: {token.strip()!r} is not a number") from None
        return self.check_latent(np.array(values, np.float32), f"latent {text!r}")

    def check_latent(self, latent: np.ndarray, what: str = "latent") -> np.ndarray:
        """Returns latent [L] if it is L finite values whose discrete parts are one-hot; else ValueError."""
        layout = f"{self.continuous} continuous values then one-hot groups of {list(self.discrete)}"
        if latent.shape != (self.latent_dim,):
            raise ValueError(f"{what} has {latent.size} values; this decoder takes {self.latent_dim}: {layout}")
        if not np.all(np.isfinite(latent)):
            raise ValueError(f"{what} holds non-finite values")
        for i, part in enumerate(self.discrete_slices()):
            group = latent[part]
            if not (np.all((group == 0) | (group == 1)) and group.sum() == 1):
                raise ValueError(
                    f"{what}: discrete latent {i} (values {part.start + 1} to {part.stop}) must be one-hot, "
                    f"a single 1 and {len(group) - 1} zeros, got {group.tolist()}"
                )
        return latent

    def random_latents(self, count: int, seed: int | None = None) -> np.ndarray:
        """Latents [count, L] from the prior: z ~ N(0, I), each c_i a uniform one-hot."""
        rng = np.random.default_rng(seed)
        parts = [rng.standard_normal((count, self.continuous), dtype=np.float32)]
        for k in self.discrete:
            parts.append(np.eye(k, dtype=np.float32)[rng.integers(k, size=count)])
        return np.concatenate(parts, axis=1)


def write_pngs(images: np.ndarray, output_dir: str, prefix: str = "image") -> list[str]:
    """Writes images [N, H, W, C] as output_dir/{prefix}_000.png, ...; returns the paths."""
    os.makedirs(output_dir, exist_ok=True)
    width = max(3, len(str(len(images) - 1)))
    paths = []
    for i, image in enumerate(images):
        path = os.path.join(output_dir, f"{prefix}_{i:0{width}d}.png")
        atomic_write(path, encode_png(image))
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- the binary
FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the tool's flags (called by `run`, so importing this module defines none)."""
    flags.DEFINE_string("model", None, "A decoder .tflite written by jointvae-export.")
    flags.DEFINE_multi_string("latent", [], "A latent 'z_1,...,z_n,c...' (one-hot discrete parts); repeatable.")
    flags.DEFINE_integer("random", None, "Decode this many latents drawn from the prior instead.", lower_bound=1)
    flags.DEFINE_integer("seed", 0, "Seed of --random.")
    flags.DEFINE_string("output_dir", None, "Folder for the PNG files (created if missing).")
    flags.DEFINE_integer("num_threads", DEFAULT_NUM_THREADS, "Interpreter threads.", lower_bound=1)
    flags.mark_flags_as_required(["model", "output_dir"])


def main(argv: Sequence[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if bool(FLAGS.latent) == (FLAGS.random is not None):
        raise app.UsageError("give --latent (one or more) or --random=N, not both and not neither")
    try:
        decoder = TFLiteDecoder(FLAGS.model, num_threads=FLAGS.num_threads)
        if FLAGS.latent:
            latent = np.stack([decoder.parse_latent(text) for text in FLAGS.latent])
        else:
            latent = decoder.random_latents(FLAGS.random, FLAGS.seed)
        images = decoder.decode_raw(latent)
    except (ValueError, OSError) as error:
        print(f"decode_tflite: error: {error}", file=sys.stderr)
        return 1
    try:
        paths = write_pngs(images, FLAGS.output_dir)
    except OSError as error:
        print(f"decode_tflite: error: cannot write PNG files to {FLAGS.output_dir}: {error}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


def run() -> None:
    """Console script entry point (jointvae-decode-tflite)."""
    define_flags()
    app.run(main)


if __name__ == "__main__":
    run()
