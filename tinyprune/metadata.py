"""TFLite model metadata (tflite-support's metadata writers) for the distribution copy of a model.

The metadata (name, description, version, author, license, the input normalisation, the class
labels as an associated file) travels in ``model_int8_metadata.tflite`` for tools and apps that
read it. Firmware arrays use the model without it: the metadata buffer and the zip of
associated files only cost flash on a microcontroller.

tflite-support is imported as ``tensorflow_lite_support.metadata...``: its top-level
``tflite_support`` package clashes with TensorFlow's pybind types.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from tinyprune import __version__
from tinyprune.errors import CheckFailed


@dataclass(frozen=True)
class ModelDescription:
    name: str
    description: str
    version: str = "1"
    author: str = "tinyprune " + __version__
    license: str = "the model owner's"
    input_name: str = "input"
    input_description: str = ""
    norm_mean: float = 0.0  # network input = (raw - mean) / std
    norm_std: float = 1.0
    output_name: str = "output"
    output_description: str = ""
    labels: tuple[str, ...] = ()  # one per output class, empty when unknown


def add_metadata(model: bytes, desc: ModelDescription) -> bytes:
    """A copy of ``model`` with metadata populated; the model's own bytes are unchanged inside it."""
    from tensorflow_lite_support.metadata import metadata_schema_py_generated as fb
    from tensorflow_lite_support.metadata.python.metadata_writers import metadata_info, metadata_writer

    general = metadata_info.GeneralMd(name=desc.name, version=desc.version, description=desc.description,
                                      author=desc.author, licenses=desc.license)
    inp = metadata_info.TensorMd(name=desc.input_name, description=desc.input_description).create_metadata()
    norm = fb.ProcessUnitT()
    norm.optionsType = fb.ProcessUnitOptions.NormalizationOptions
    norm.options = fb.NormalizationOptionsT()
    norm.options.mean = [float(desc.norm_mean)]
    norm.options.std = [float(desc.norm_std)]
    inp.processUnits = [norm]
    with tempfile.TemporaryDirectory(prefix="tinyprune-metadata-") as tmp:
        files = []
        if desc.labels:
            label_path = Path(tmp) / "labels.txt"
            label_path.write_text("\n".join(desc.labels) + "\n", encoding="utf-8")
            files.append(str(label_path))
            out = metadata_info.ClassificationTensorMd(
                name=desc.output_name, description=desc.output_description,
                label_files=[metadata_info.LabelFileMd(str(label_path))]).create_metadata()
        else:
            out = metadata_info.TensorMd(name=desc.output_name, description=desc.output_description).create_metadata()
        try:
            writer = metadata_writer.MetadataWriter.create_from_metadata(
                bytearray(model), general.create_metadata(), [inp], [out], files)
            populated = bytes(writer.populate())
        except Exception as exc:  # tflite-support validates and raises ValueError and others
            raise CheckFailed(f"writing the TFLite metadata failed: {type(exc).__name__}: {exc}") from None
    return _fixed_zip_times(populated)


def _fixed_zip_times(data: bytes) -> bytes:
    """The associated files travel in a zip appended to the model, and tflite-support stamps each
    entry with the current time: set every entry's time to 1980-01-01 00:00 so that the same model
    and metadata always give the same bytes."""
    import io
    import struct
    import zipfile

    buf = bytearray(data)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return data  # no associated files
    dos_time, dos_date = 0, (0 << 9) | (1 << 5) | 1
    pos = zf.start_dir
    for info in zf.infolist():
        if buf[info.header_offset:info.header_offset + 4] == b"PK\x03\x04":
            struct.pack_into("<HH", buf, info.header_offset + 10, dos_time, dos_date)
        if buf[pos:pos + 4] == b"PK\x01\x02":
            struct.pack_into("<HH", buf, pos + 12, dos_time, dos_date)
            n, m, k = struct.unpack_from("<HHH", buf, pos + 28)
            pos += 46 + n + m + k
    return bytes(buf)


def read_metadata_json(model: bytes) -> str:
    """The metadata of a model as JSON (tflite-support's displayer)."""
    from tensorflow_lite_support.metadata.python import metadata

    return metadata.MetadataDisplayer.with_model_buffer(bytearray(model)).get_metadata_json()


def associated_files(model: bytes) -> dict[str, bytes]:
    from tensorflow_lite_support.metadata.python import metadata

    displayer = metadata.MetadataDisplayer.with_model_buffer(bytearray(model))
    return {name: displayer.get_associated_file_buffer(name) for name in displayer.get_packed_associated_file_list()}
