"""CPU kernels: JointVAE trains on TensorFlow's oneDNN kernels unless told otherwise.

TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` once, when it is first imported, and turns
oneDNN on by itself only on CPUs with AVX-512 VNNI/BF16 or AMX; elsewhere (the AVX2
CPUs of many laptops and cloud machines) it uses Eigen kernels. Measured on a 2-core
AVX2 CPU with `bench/train_throughput.py`, oneDNN trained 1.16x faster at 32x32 and
1.6x faster at 64x64. So importing `jointvae_tf` asks for oneDNN when TensorFlow is not
yet imported and the variable is unset. To keep TensorFlow's choice, set
`TF_ENABLE_ONEDNN_OPTS=0` (or 1) yourself; importing TensorFlow first also keeps it.

This module must not import TensorFlow at import time.
"""

from __future__ import annotations

import os
import sys

ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"


def request_onednn() -> bool:
    """Sets TF_ENABLE_ONEDNN_OPTS=1 if TensorFlow is not imported yet and the user left it unset.

    Returns True when this call set it.
    """
    if ONEDNN_ENV in os.environ or "tensorflow" in sys.modules:
        return False
    os.environ[ONEDNN_ENV] = "1"
    return True


def onednn_enabled() -> bool:
    """Whether this process' TensorFlow runs its oneDNN kernels."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())
