"""Models shared by the broker connectors: durations, TLS files, reconnect backoff, publish fields.

Fields that the engine may fill from one template (an operation's `headers`, `body`, the target
name) accept the template text at load time; the connector validates the rendered operation again
(`resolve_operation`) before it sends anything.
"""

from __future__ import annotations

import math
import os
import re
import ssl
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from runtime.connector_api import ConnectorError, Effect, OperationSpec

_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)\s*")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> float:
    """Seconds from `500ms`, `30s`, `5m`, `2h`, `7d` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number with a unit (500ms, 30s, 5m, 2h, 7d), not a boolean")
    if isinstance(value, int | float | Decimal):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match is None:
            raise ValueError(f"invalid duration {value!r}: use a number with a unit: 500ms, 30s, 5m, 2h, 7d")
        seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    else:
        raise ValueError("a duration is a string like 30s or a number of seconds")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("a duration must be a finite, non-negative amount of time")
    return seconds


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*(ms|s|m|h|d)\s*$"},
                {"type": "number", "minimum": 0},
            ],
            "description": "A duration: 500ms, 30s, 5m, 2h, 7d, or a number of seconds.",
        }
    ),
]


def _require_template(text: str) -> str:
    if "{{" not in text and "{%" not in text:
        raise ValueError("a string here must be a template expression such as '{{ params.headers }}'")
    return text


TemplateStr = Annotated[str, AfterValidator(_require_template)]


def scalar_text(value: object) -> str:
    """The wire text of a header value: exact decimals, lower-case booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("NaN and Infinity cannot be sent")
        return format(value, "f")
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("NaN and Infinity cannot be sent")
        return repr(value)
    raise ValueError(f"a header value is a string, number or boolean, got {type(value).__name__}")


Scalar = Annotated[
    str, BeforeValidator(scalar_text), WithJsonSchema({"type": ["string", "number", "integer", "boolean"]})
]


class TlsOptions(BaseModel):
    """TLS for a broker connection. Files are relative to the project folder."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Connect over TLS.", examples=[True])
    ca_file: str | None = Field(
        None,
        description="PEM file of the certificate authorities to trust (default: the system's).",
        examples=["certs/broker-ca.pem"],
    )
    cert_file: str | None = Field(
        None,
        description="PEM client certificate, for brokers that authenticate clients by certificate.",
        examples=["certs/syncline.pem"],
    )
    key_file: str | None = Field(None, description="PEM private key of `cert_file`.", examples=["certs/syncline.key"])
    verify: bool = Field(
        True,
        description="Check the broker's certificate and host name. `false` is for test brokers only.",
        examples=[True],
    )

    @model_validator(mode="after")
    def _key_with_cert(self) -> TlsOptions:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file needs cert_file")
        return self

    def context(self, project_dir: str) -> ssl.SSLContext:
        """An SSL context for these options; files are anchored at `project_dir`."""

        def path(name: str) -> str:
            return name if os.path.isabs(name) else os.path.join(project_dir, name)

        context = ssl.create_default_context(cafile=path(self.ca_file) if self.ca_file else None)
        if self.cert_file is not None:
            context.load_cert_chain(path(self.cert_file), path(self.key_file) if self.key_file else None)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


class ReconnectOptions(BaseModel):
    """Backoff between connection attempts after the broker or the network went away."""

    model_config = ConfigDict(extra="forbid")

    min_delay: Duration = Field(
        0.5, description="Wait after the first failed attempt; doubles with each further failure.", examples=["500ms"]
    )
    max_delay: Duration = Field(30.0, description="Longest wait between attempts.", examples=["30s"])

    @model_validator(mode="after")
    def _order(self) -> ReconnectOptions:
        if self.max_delay < self.min_delay:
            raise ValueError("max_delay must not be below min_delay")
        return self


class PublishFields(OperationSpec):
    """Fields of every broker `publish` operation (each connector adds its target)."""

    effect: Effect = Field(
        Effect.publish, description="What the operation does to the entity (default: publish).", examples=["publish"]
    )
    body: Any = Field(
        None,
        description="The message body, usually a template. A string is sent as its UTF-8 text; any other "
        "value as JSON (decimals exact). When not given, the step's `with:` values are sent as JSON.",
        examples=["{{ params.order }}", {"order_id": "{{ params.id }}", "status": "shipped"}],
    )
    headers: dict[str, Scalar] | TemplateStr = Field(
        default_factory=dict,
        description="Message headers; numbers and booleans are sent as text. The run's correlation headers "
        "(X-Syncline-Run, X-Correlation-ID) are added unless named here.",
        examples=[{"X-Event-Type": "shipment.created"}],
    )
    content_type: str | None = Field(
        None,
        description="Content type of the body (default: `application/json`, or `text/plain; charset=utf-8` for "
        "a string body).",
        examples=["application/json"],
    )
    timeout: Duration | None = Field(
        None,
        description="How long to wait for the broker's confirmation; overrides the connection's.",
        examples=["10s"],
    )


OperationT = TypeVar("OperationT", bound=OperationSpec)


def resolve_operation(
    model: type[OperationT],
    declared: Mapping[str, OperationSpec],
    name: str,
    spec: Mapping[str, Any] | None,
    error: Callable[[str], ConnectorError],
) -> OperationT:
    """The operation `name` as declared, with the engine's rendered fields (`spec`) over it, validated."""
    base = declared.get(name)
    if base is None and not spec:
        raise error("unknown operation")
    fields = base.model_dump(exclude_unset=True) if base is not None else {}
    try:
        return model.model_validate({**fields, **(spec or {})})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'operation'}: {e['msg']}" for e in exc.errors())
        raise error(f"invalid operation: {problems}") from None
