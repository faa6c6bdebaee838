"""`kind: Mapping`: field maps (or a Jinja2 template file) with optional schemas and inline tests."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from runtime.spec.common import AnyValue, Bool, Document, Model


class MappingTest(Model):
    """Given input, expected output; run by `syncline test`."""

    name: str | None = Field(None, description="Test name.")
    input: AnyValue = Field(description="Input value.")
    vars: dict[str, Any] = Field(default_factory=dict, description="Variables available as `vars`.")
    output: AnyValue = Field(
        description="Expected output: the whole value (no extra keys). Numbers compare by value (19.00 equals 19)."
    )
    exact: Bool = Field(
        False, description="Numbers must also have the same scale: 19.00 then differs from 19 and from 19.0."
    )


class Mapping(Document):
    """Transform one value into another."""

    kind: Literal["Mapping"] = Field("Mapping", description="Document kind.")
    input_schema: str | None = Field(None, description="JSON Schema the input must satisfy.")
    output_schema: str | None = Field(None, description="JSON Schema the output must satisfy.")
    fields: dict[str, AnyValue] | None = Field(
        None,
        description="Output fields: each value is a literal or a template; `map_each` builds lists per item.",
        examples=[{"order_ref": "{{ input.id }}", "currency": "{{ input.currency | upper }}"}],
    )
    template: str | None = Field(
        None,
        description="A Jinja2 template file under mappings/ that renders JSON.",
        examples=["mappings/invoice_to_erp.json.j2"],
    )
    tests: list[MappingTest] = Field(default_factory=list, description="Inline tests.")

    @model_validator(mode="after")
    def _one_body(self) -> Mapping:
        if (self.fields is None) == (self.template is None):
            raise ValueError("give exactly one of `fields` or `template`")
        return self
