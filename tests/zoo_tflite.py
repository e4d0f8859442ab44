"""Int8 .tflite files of the zoo models for tests of the later stages (runtime, verify).

Built with the Keras equivalents in ``runtime_models`` and TensorFlow's converter, cached on
disk and shared between test workers.
"""

from __future__ import annotations


def zoo_tflite_models() -> dict[str, bytes]:
    import runtime_models

    return runtime_models.zoo_models()
