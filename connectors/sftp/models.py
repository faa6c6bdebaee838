"""The sftp connector's models: a Connection's `config:` and one entry under its `operations:`."""

from __future__ import annotations

import codecs
import enum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from runtime.connector_api import Effect, OperationSpec


class SftpAction(enum.StrEnum):
    """What an operation does."""

    list = "list"
    read = "read"
    write = "write"


class SftpConfig(BaseModel):
    """`config:` of a Connection of type `sftp`."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(
        ..., min_length=1, description="SFTP server host name or address.", examples=["files.bank.example"]
    )
    port: int = Field(22, ge=1, le=65535, description="SSH port.")
    username: str = Field(..., min_length=1, description="Login name.", examples=["syncline"])
    password: str | None = Field(None, description="Password (a secret: `{{ secret('BANK_SFTP_PASSWORD') }}`).")
    private_key: str | None = Field(
        None, description="Private key in OpenSSH or PEM text (a secret), instead of or besides the password."
    )
    passphrase: str | None = Field(None, description="Passphrase of the private key (a secret).")
    host_key: str = Field(
        ...,
        min_length=1,
        description="The server's public host key (`ssh-ed25519 AAAA...`, as in known_hosts). The server must "
        "prove it holds this key; there is no way to skip the check.",
        examples=["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI..."],
    )
    base_dir: str = Field(".", description="Remote folder every path is relative to.", examples=["/outbox/statements"])
    done_dir: str = Field("done", description="Folder (inside base_dir) left out of listings (processed files).")
    failed_dir: str = Field("failed", description="Folder (inside base_dir) left out of listings (failed files).")
    encoding: str = Field("utf-8", description="Text encoding of the files.", examples=["latin-1"])
    timeout: float = Field(15.0, gt=0, description="Seconds to connect and log in.")

    @field_validator("encoding")
    @classmethod
    def _check_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}") from None
        return value

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        if self.password is None and self.private_key is None:
            raise ValueError("give a `password` or a `private_key`")
        return self


class SftpOperation(OperationSpec):
    """One entry under `operations:` of a Connection of type `sftp`."""

    action: SftpAction = Field(SftpAction.read, description="`list` (names matching `pattern`), `read` or `write`.")
    path: str | None = Field(None, description="File path relative to base_dir; may be templated.")
    pattern: str = Field("*", description="For `list`: a glob relative to base_dir (`**` crosses folders).")
    format: str | None = Field(
        None, description="`csv`, `json`, `ndjson` or `text`; by default from the extension.", examples=["json"]
    )
    data: Any = Field(None, description="For `write`: the value to write (default: the step's `with: {data}`).")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.action is not SftpAction.list and self.path is None:
            raise ValueError(f"action {self.action.value} needs a `path`")
        if self.format is not None and self.format not in ("csv", "json", "ndjson", "text"):
            raise ValueError("format must be csv, json, ndjson or text")
        if "effect" not in self.model_fields_set:
            self.effect = Effect.upsert if self.action is SftpAction.write else Effect.read
        return self
