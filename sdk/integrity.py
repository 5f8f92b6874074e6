"""The integrity hash of an emotionkd ONNX file: written by the exporter, checked at load.

An ONNX file is a protobuf ``ModelProto``. The hash is the SHA-256 of every top-level field of
the file, byte for byte and in file order (graph, weights, opsets, producer, the contract in the
metadata …), except the one ``metadata_props`` entry that stores the hash itself::

    metadata_props["emotionkd.integrity"] = "sha256:<64 hex digits>"

So a flipped bit anywhere in the graph, the weights or the contract changes the hash, while
stamping a file only appends that entry (protobuf allows fields in any order): the graph and the
weights stay byte-identical, and so do the predictions.

Only the top level of the protobuf is walked (a few fields; the graph is one length-delimited
field), in pure Python, so the SDK does not need the ``onnx`` package.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final, Literal

from emotionkd.firmware_bridge.errors import ModelError

INTEGRITY_KEY: Final = "emotionkd.integrity"
_PREFIX: Final = "sha256:"
_METADATA_PROPS: Final = 14  # ModelProto.metadata_props (repeated StringStringEntryProto)
_LENGTH_DELIMITED: Final = 2

IntegrityStatus = Literal["verified", "unstamped", "not checked"]


def _sha256() -> Any:
    """A SHA-256 hasher without ``hashlib``: importing hashlib maps OpenSSL's libcrypto, 3.7 MB
    of resident memory in every process that loads a model (a wearable's RSS budget is 64 MB).
    CPython's own SHA-256 module gives the same digest; ``random`` looks up its SHA-512 the same
    way for the same reason. hashlib stays the fallback where CPython was built without it."""
    import importlib  # already loaded by the interpreter's start-up

    for name in ("_sha2", "_sha256"):  # CPython >= 3.12, CPython 3.11
        try:
            return importlib.import_module(name).sha256()
        except ImportError:
            continue
    from hashlib import sha256

    return sha256()


class _Malformed(Exception):
    pass


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    for _ in range(10):
        if pos >= len(data):
            raise _Malformed(pos)
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise _Malformed(pos)


def _fields(data: memoryview) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, start, end) of each field of one protobuf message."""
    pos = 0
    while pos < len(data):
        start = pos
        tag, pos = _varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise _Malformed(start)
        if wire == 0:
            _, pos = _varint(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == _LENGTH_DELIMITED:
            size, pos = _varint(data, pos)
            pos += size
        elif wire == 5:
            pos += 4
        else:  # groups (3, 4) do not occur in ONNX; 6, 7 do not exist
            raise _Malformed(start)
        if pos > len(data):
            raise _Malformed(start)
        yield number, wire, start, pos


def _payload(data: memoryview, start: int) -> memoryview:
    _, pos = _varint(data, start)
    size, pos = _varint(data, pos)
    return data[pos : pos + size]


def _entry(data: memoryview) -> tuple[str, str]:
    """key and value of a ``StringStringEntryProto``."""
    found = {1: "", 2: ""}
    for number, wire, start, _end in _fields(data):
        if number in found and wire == _LENGTH_DELIMITED:
            found[number] = bytes(_payload(data, start)).decode("utf-8", errors="replace")
    return found[1], found[2]


def _scan(data: bytes) -> tuple[str, list[str], list[tuple[int, int]]]:
    """(digest of everything but the hash entries, the stored hash values, their byte spans)."""
    view = memoryview(data)
    digest = _sha256()
    stored: list[str] = []
    spans: list[tuple[int, int]] = []
    for number, wire, start, end in _fields(view):
        if number == _METADATA_PROPS and wire == _LENGTH_DELIMITED:
            key, value = _entry(_payload(view, start))
            if key == INTEGRITY_KEY:
                stored.append(value)
                spans.append((start, end))
                continue
        digest.update(view[start:end])
    return digest.hexdigest(), stored, spans


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | _LENGTH_DELIMITED) + _encode_varint(len(payload)) + payload


def strip_integrity(data: bytes) -> bytes:
    """The file without its integrity entry (what the hash covers)."""
    try:
        _, _, spans = _scan(data)
    except _Malformed as exc:
        raise ModelError(f"not an ONNX file: its protobuf is malformed near byte {exc.args[0]}") from exc
    out, last = bytearray(), 0
    for start, end in spans:
        out += data[last:start]
        last = end
    return bytes(out + data[last:])


def stamp_integrity(data: bytes) -> bytes:
    """``data`` (a serialised ONNX model) with a fresh integrity entry appended.

    Raises:
        ModelError: ``data`` is not a well-formed protobuf.
    """
    body = strip_integrity(data)
    digest, _, _ = _scan(body)
    entry = _length_delimited(1, INTEGRITY_KEY.encode()) + _length_delimited(2, (_PREFIX + digest).encode())
    return body + _length_delimited(_METADATA_PROPS, entry)


def check_integrity(data: bytes, name: str) -> IntegrityStatus:
    """``"verified"`` when the stored hash matches, ``"unstamped"`` when the file has none.

    Raises:
        ModelError: the hash does not match (the file was altered or corrupted after export),
            or the file is not a well-formed protobuf. Names the file and the way out.
    """
    try:
        digest, stored, _ = _scan(data)
    except _Malformed as exc:
        raise ModelError(f"model {name!r} is not a loadable ONNX model (its protobuf is malformed near byte "
                         f"{exc.args[0]}: corrupted or truncated?); export or copy it again") from exc
    if not stored:
        return "unstamped"
    if len(stored) != 1 or stored[0] != _PREFIX + digest:
        raise ModelError(
            f"model {name!r} fails its integrity check (the graph, weights or contract changed after export: a "
            "corrupt copy or an edited file); copy or export it again, or pass --no-verify to load it anyway")
    return "verified"


__all__ = ["INTEGRITY_KEY", "IntegrityStatus", "check_integrity", "stamp_integrity", "strip_integrity"]
