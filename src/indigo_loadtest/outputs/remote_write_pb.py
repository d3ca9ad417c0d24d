"""Prometheus remote-write 1.0 messages (prometheus/prompb/remote.proto, types.proto).

Built at import time from a descriptor, so no generated code or protoc step is
needed; only the fields a sender uses are declared (unknown fields are never sent).
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "prometheus"


def _field(name: str, number: int, type_: int, *, repeated: bool = False,
           type_name: str | None = None) -> _F:
    f = _F(name=name, number=number, type=type_,
           label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
    if type_name:
        f.type_name = f".{_PACKAGE}.{type_name}"
    return f


def _build_file() -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto(
        name="indigo_loadtest/prometheus_remote_write.proto", package=_PACKAGE, syntax="proto3",
    )
    messages = {
        "Label": [_field("name", 1, _F.TYPE_STRING), _field("value", 2, _F.TYPE_STRING)],
        "Sample": [_field("value", 1, _F.TYPE_DOUBLE), _field("timestamp", 2, _F.TYPE_INT64)],
        "TimeSeries": [
            _field("labels", 1, _F.TYPE_MESSAGE, repeated=True, type_name="Label"),
            _field("samples", 2, _F.TYPE_MESSAGE, repeated=True, type_name="Sample"),
        ],
        "WriteRequest": [
            _field("timeseries", 1, _F.TYPE_MESSAGE, repeated=True, type_name="TimeSeries"),
        ],
    }
    for name, fields in messages.items():
        fd.message_type.add(name=name, field=fields)
    return fd


# A private pool: never clashes with another library that registers prometheus.*.
_pool = descriptor_pool.DescriptorPool()
_pool.Add(_build_file())


def _message(name: str) -> type:
    return message_factory.GetMessageClass(_pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))


Label = _message("Label")
Sample = _message("Sample")
TimeSeries = _message("TimeSeries")
WriteRequest = _message("WriteRequest")

__all__ = ["Label", "Sample", "TimeSeries", "WriteRequest"]
