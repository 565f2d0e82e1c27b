"""The protobuf wire format, as much of it as x/support transactions need: writing fields (varints,
length-delimited bytes, strings, nested messages, maps, `Any`) and reading them back, strictly.

Pure module: no Django.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

# Wire types.
VARINT, LEN = 0, 2


class ProtoError(ValueError):
    """Bytes that are not the protobuf message expected."""


# -- wire format -----------------------------------------------------------------------------------


def varint(value: int) -> bytes:
    if value < 0:
        raise ProtoError("negative varint")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_key(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def len_field(number: int, payload: bytes) -> bytes:
    return field_key(number, LEN) + varint(len(payload)) + payload


def str_field(number: int, value: str | None) -> bytes:
    return len_field(number, value.encode()) if value else b""


def bytes_field(number: int, value: bytes | None) -> bytes:
    return len_field(number, value) if value else b""


def uint_field(number: int, value: int | None) -> bytes:
    return field_key(number, VARINT) + varint(value) if value else b""


def message_field(number: int, payload: bytes | None) -> bytes:
    # An embedded message is written even when empty if it is present (proto3 message presence).
    return b"" if payload is None else len_field(number, payload)


def string_map_field(number: int, values: Mapping[str, str] | None) -> bytes:
    return b"".join(
        len_field(number, str_field(1, key) + str_field(2, str(values[key]))) for key in sorted(values or {})
    )


def any_field(type_url: str, value: bytes) -> bytes:
    return str_field(1, type_url) + bytes_field(2, value)


def read_varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data):
            raise ProtoError("truncated varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise ProtoError("varint too long")


def iter_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of every field: an int for varints, bytes for length-delimited."""
    position = 0
    while position < len(data):
        key, position = read_varint(data, position)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ProtoError("field number 0")
        if wire_type == VARINT:
            value, position = read_varint(data, position)
            yield number, wire_type, value
        elif wire_type == LEN:
            length, position = read_varint(data, position)
            if position + length > len(data):
                raise ProtoError("truncated length-delimited field")
            yield number, wire_type, data[position : position + length]
            position += length
        elif wire_type == 1:  # fixed64
            position += 8
        elif wire_type == 5:  # fixed32
            position += 4
        else:
            raise ProtoError(f"unsupported wire type {wire_type}")
    if position != len(data):
        raise ProtoError("trailing bytes")


@dataclass
class Fields:
    """Decoded fields of one message: repeated fields keep every value, in order."""

    values: dict[int, list[int | bytes]]

    @classmethod
    def parse(cls, data: bytes) -> Fields:
        values: dict[int, list[int | bytes]] = {}
        for number, _wire, value in iter_fields(data):
            values.setdefault(number, []).append(value)
        return cls(values)

    def raw(self, number: int) -> bytes | None:
        found = self.values.get(number)
        if not found:
            return None
        value = found[-1]
        if not isinstance(value, bytes):
            raise ProtoError(f"field {number} is not length-delimited")
        return value

    def text(self, number: int) -> str:
        raw = self.raw(number)
        return raw.decode() if raw is not None else ""

    def uint(self, number: int) -> int:
        found = self.values.get(number)
        if not found:
            return 0
        value = found[-1]
        if not isinstance(value, int):
            raise ProtoError(f"field {number} is not a varint")
        return value

    def repeated(self, number: int) -> list[bytes]:
        out = []
        for value in self.values.get(number, []):
            if not isinstance(value, bytes):
                raise ProtoError(f"field {number} is not length-delimited")
            out.append(value)
        return out

    def string_map(self, number: int) -> dict[str, str]:
        entries = {}
        for raw in self.repeated(number):
            entry = Fields.parse(raw)
            entries[entry.text(1)] = entry.text(2)
        return entries
