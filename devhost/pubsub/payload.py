"""One message on its way to many sockets, serialised at most once per wire format.

A send fans out to raw clients (the payload itself) and to `json.webpubsub.azure.v1` clients (a
`{"type":"message",...}` envelope). Both encodings are computed lazily and shared by every recipient;
the reliable protocol only prefixes the shared envelope with the connection's `sequenceId`.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Literal

DataType = Literal["json", "text", "binary"]
Frame = str | bytes


class InvalidPayload(ValueError):
    """The body does not match its declared data type."""


class Payload:
    """Data plus where it came from (`server`, or a group and the sending user)."""

    __slots__ = ("_envelope", "data_type", "group", "json_value", "sender", "source", "text_or_bytes")

    def __init__(
        self,
        data_type: DataType,
        text_or_bytes: Frame,
        *,
        json_value: Any = None,
        group: str | None = None,
        sender: str | None = None,
    ) -> None:
        self.data_type = data_type
        self.text_or_bytes = text_or_bytes
        self.json_value = json_value
        self.group = group
        self.sender = sender
        self.source: Literal["server", "group"] = "server" if group is None else "group"
        self._envelope: str | None = None

    @classmethod
    def from_rest(cls, body: bytes, content_type: str | None) -> Payload:
        """Map a REST send body to a data type the way the service does, by Content-Type."""
        media = (content_type or "application/octet-stream").split(";", 1)[0].strip().lower()
        if media == "application/json":
            try:
                text = body.decode("utf-8")
                value = json.loads(text)
            except (UnicodeDecodeError, ValueError) as exc:
                raise InvalidPayload("body is not valid JSON") from exc
            return cls("json", text, json_value=value)
        if media == "text/plain":
            try:
                return cls("text", body.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise InvalidPayload("text/plain body is not UTF-8") from exc
        return cls("binary", body)

    @classmethod
    def from_client(
        cls, data_type: Any, data: Any, *, group: str | None = None, sender: str | None = None
    ) -> Payload:
        """Decode the `dataType`/`data` pair of a `sendToGroup` or `event` frame."""
        if data_type == "json":
            return cls("json", json.dumps(data, separators=(",", ":")), json_value=data, group=group,
                       sender=sender)
        if data_type == "text" and isinstance(data, str):
            return cls("text", data, group=group, sender=sender)
        if data_type == "binary" and isinstance(data, str):
            try:
                return cls("binary", base64.b64decode(data, validate=True), group=group, sender=sender)
            except binascii.Error as exc:
                raise InvalidPayload("binary data is not base64") from exc
        raise InvalidPayload(f"unsupported dataType {data_type!r}")

    def raw_frame(self) -> Frame:
        """What a client without a subprotocol receives: the payload itself."""
        return self.text_or_bytes

    def wire_data(self) -> Any:
        """The `data` field of the JSON envelope (binary travels as base64)."""
        if self.data_type == "json":
            return self.json_value
        if isinstance(self.text_or_bytes, bytes):
            return base64.b64encode(self.text_or_bytes).decode("ascii")
        return self.text_or_bytes

    def envelope(self) -> str:
        """The `{"type":"message",...}` frame shared by every JSON-protocol recipient."""
        if self._envelope is None:
            message: dict[str, Any] = {"type": "message", "from": self.source}
            if self.group is not None:
                message["group"] = self.group
                if self.sender is not None:
                    message["fromUserId"] = self.sender
            message["dataType"] = self.data_type
            message["data"] = self.wire_data()
            self._envelope = json.dumps(message, separators=(",", ":"))
        return self._envelope

    def body_bytes(self) -> bytes:
        """The payload as bytes, for an upstream CloudEvent body."""
        if isinstance(self.text_or_bytes, bytes):
            return self.text_or_bytes
        return self.text_or_bytes.encode("utf-8")


def sequenced(envelope: str, sequence_id: int) -> str:
    """Insert the per-connection `sequenceId` without re-serialising the shared envelope."""
    return f'{{"sequenceId":{sequence_id},{envelope[1:]}'
