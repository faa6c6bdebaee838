"""`auth:` of a webhook trigger: how a caller proves who it is.

One flat model for every scheme. The vendor types are presets of the general ones: `github` is
`hmac_sha256` with header `X-Hub-Signature-256` and prefix `sha256=`; `shopify` is `hmac_sha256` with
header `X-Shopify-Hmac-Sha256` and base64 encoding; `stripe` is `signature_header` (timestamp and
signatures in one header, `t=…,v1=…`) with header `Stripe-Signature`. A field the flow sets itself
overrides the preset's value. Chargebee signs nothing: its webhooks use `basic`.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from runtime.spec.common import Duration, Model, Template

SIGNATURE_HEADER_TYPES = frozenset({"signature_header", "stripe"})
"""Types whose timestamp and signatures share one header (`t=…,v1=…`)."""

HMAC_TYPES = frozenset({"hmac_sha256", "hmac_sha512", "github", "shopify"})
"""Types with the hex or base64 HMAC alone in a header (and an optional timestamp header)."""

_PRESET_HEADERS = {
    "stripe": "Stripe-Signature",
    "github": "X-Hub-Signature-256",
    "shopify": "X-Shopify-Hmac-Sha256",
}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class WebhookAuth(Model):
    """How a webhook caller proves who it is."""

    type: Literal[
        "hmac_sha256", "hmac_sha512", "github", "shopify", "stripe", "signature_header", "api_key", "basic", "none"
    ] = Field(
        description="`hmac_sha256`/`hmac_sha512` verify a signature over the raw body; `github` "
        "(`X-Hub-Signature-256: sha256=<hex>`) and `shopify` (`X-Shopify-Hmac-Sha256: <base64>`) are "
        "presets of `hmac_sha256`; `signature_header` reads a timestamp and one or more signatures from "
        "one header (`t=…,v1=…`), and `stripe` is its preset for `Stripe-Signature`; `api_key` and `basic` "
        "check a header (Chargebee webhooks use `basic`); `none` accepts anyone (a policy can forbid it).",
        examples=["hmac_sha256", "stripe"],
    )
    secret: Template | None = Field(
        None,
        description="The HMAC key or expected API key, usually `{{ secret('NAME') }}` (Stripe: the endpoint's "
        "`whsec_…` signing secret, used as is).",
        examples=["{{ secret('WEBSHOP_HOOK_SECRET') }}"],
    )
    previous_secret: Template | None = Field(None, description="A second accepted HMAC key while secrets are rotated.")
    header: str = Field(
        "X-Signature",
        description="Header carrying the signature or API key. Defaults by type: `Stripe-Signature` (stripe), "
        "`X-Hub-Signature-256` (github), `X-Shopify-Hmac-Sha256` (shopify), otherwise `X-Signature`.",
    )
    prefix: str | None = Field(
        None, description="Text before the signature, e.g. `sha256=` (the default for `github`)."
    )
    encoding: Literal["hex", "base64"] = Field(
        "hex", description="How the signature is written: `hex`, or `base64` (the default for `shopify`)."
    )
    timestamp_header: str | None = Field(
        None, description="Header with the Unix time signed together with the body (`<ts>.<body>`)."
    )
    tolerance: Duration = Field("5m", description="How far the signed timestamp may be from now (Stripe: 300 s).")
    algorithm: Literal["sha256", "sha512"] = Field(
        "sha256", description="HMAC hash function of `signature_header`/`stripe`."
    )
    item_separator: str = Field(
        ",", description="`signature_header`: text between the header's `key=value` items.", min_length=1
    )
    key_separator: str = Field(
        "=", description="`signature_header`: text between an item's key and its value.", min_length=1
    )
    timestamp_key: str | None = Field(
        "t",
        description="`signature_header`: key of the item with the signed Unix time; null when the header "
        "has none (then `payload` must not use `{timestamp}`).",
    )
    signature_keys: list[str] = Field(
        default_factory=lambda: ["v1"],
        min_length=1,
        description="`signature_header`: keys of the signature items. Any signature under any of these keys "
        "that matches any accepted secret authenticates (Stripe sends several `v1` while a secret is rolled).",
    )
    payload: str = Field(
        "{timestamp}.{body}",
        description="`signature_header`: what is signed: the raw body in place of `{body}` and the header's "
        "timestamp in place of `{timestamp}`.",
        examples=["{timestamp}.{body}", "{body}"],
    )
    username: Template | None = Field(None, description="Expected user for `basic`.")
    password: Template | None = Field(None, description="Expected password for `basic`.")

    @model_validator(mode="after")
    def _presets_and_consistency(self) -> WebhookAuth:
        given = self.model_fields_set
        if "header" not in given and self.type in _PRESET_HEADERS:
            self.header = _PRESET_HEADERS[self.type]
        if "prefix" not in given and self.type == "github":
            self.prefix = "sha256="
        if "encoding" not in given and self.type == "shopify":
            self.encoding = "base64"
        if self.type in SIGNATURE_HEADER_TYPES:
            if self.timestamp_header is not None:
                raise ValueError(
                    f"type {self.type} reads the timestamp from the {self.header} header itself: "
                    "use timestamp_key instead of timestamp_header"
                )
            if self.item_separator == self.key_separator:
                raise ValueError("item_separator and key_separator must differ")
            names = _PLACEHOLDER.findall(self.payload)
            if names.count("body") != 1 or any(name not in ("body", "timestamp") for name in names):
                raise ValueError("payload must hold {body} once and may hold {timestamp}; no other {…} placeholders")
            if "timestamp" in names and self.timestamp_key is None:
                raise ValueError("payload uses {timestamp} but timestamp_key is null")
        return self
