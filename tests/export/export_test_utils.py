"""Helpers of the export tests: test images, the shared model's shape, running Python in a fresh process."""

import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE_SHAPE = (32, 32, 1)
LATENT_SPEC = "cont=4,disc=3"
LATENT_DIM = 7
ALL_VARIANTS = "float32,float16,dynamic_int8,int8,int8_uint8"
# Reduced verification numbers for test exports (the binary's defaults are 1000, 200 and 400).
FAST_FLAGS = ["--fidelity_samples=200", "--latency_invokes=30", "--calibration_samples=100"]


def squares(num, size=32, seed=0):
    """Binary images of filled squares at random places and sizes, float32 [num, size, size, 1]."""
    rng = np.random.RandomState(seed)
    images = np.zeros((num, size, size, 1), "float32")
    for image in images:
        side = rng.randint(size // 8, size // 2)
        row, col = rng.randint(0, size - side, size=2)
        image[row:row + side, col:col + side] = 1.0
    return images


def run_python(args, **kwargs):
    """Runs `python args...` from the repository root in a fresh process; returns the CompletedProcess."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600, **kwargs)
