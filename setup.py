"""jointvae-tf: JointVAE (Dupont, NeurIPS 2018) in TensorFlow / Keras 3, with a quantized TFLite decoder."""

import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))

with open(os.path.join(HERE, "README.md"), encoding="utf-8") as readme:
    LONG_DESCRIPTION = readme.read()

setup(
    name="jointvae-tf",
    version="0.1.0",
    description="Disentangled joint continuous and discrete representations (JointVAE) in TensorFlow and Keras 3",
    long_description=LONG_DESCRIPTION,
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["jointvae_tf", "jointvae_tf.*", "export", "export.*"]),
    # The shipped models (jointvae_tf.pretrained): one folder per model, in wheels and sdists alike.
    package_data={
        "jointvae_tf.pretrained": ["*/model.keras", "*/config.json", "*/card.json"],
        # The --web page's sources and the pinned LiteRT.js (export/webpage.py).
        "export": ["web/*.html", "web/*.js", "web/package.json", "web/package-lock.json"],
    },
    install_requires=[
        "tensorflow==2.21.*",
        "keras>=3.15,<4",
        "tensorflow-probability==0.25.*",
        # tensorflow-probability 0.25 does not import without tf-keras.
        "tf-keras==2.21.*",
        "tensorflow-datasets==4.9.*",
        # tensorflow-datasets 4.9 imports it but declares it only for Python < 3.9.
        "importlib_resources>=6",
        "tensorboard==2.21.*",
        "absl-py>=2.1,<3",
        "ai-edge-litert==2.3.*",
        "numpy>=1.26,<3",
        "scipy>=1.11,<2",
    ],
    extras_require={
        "test": ["pytest>=8,<10", "pytest-xdist>=3.6,<4", "pillow>=10,<14", "matplotlib>=3.8,<4"],
        # bench/write_results.py: the learning curves of reproduction runs.
        "results": ["matplotlib>=3.8,<4"],
        # Importing models trained with the original PyTorch code (a CPU build).
        "torch": ["torch==2.13.0"],
    },
    entry_points={
        "console_scripts": [
            "jointvae-train=jointvae_tf.train:run",
            "jointvae-import-torch=jointvae_tf.compat.import_torch:run",
            "jointvae-evaluate=jointvae_tf.evaluate:run",
            "jointvae-export=export.__main__:run",
            "jointvae-decode-tflite=export.decode_tflite:run",
        ]
    },
)
