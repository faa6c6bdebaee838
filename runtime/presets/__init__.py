"""System presets: data files shipped with Syncline that describe one vendor API as a Connection.

A preset is `runtime/presets/<name>.yaml` (format: docs/systems/README.md). A project's Connection
says `preset: <name>` plus its `account:` values; `apply_preset` fills the preset's `${setting}`
placeholders with them and merges the project's own fields over the preset's `connection:` part:

- mappings merge key by key, recursively; the project's value wins;
- a mapping whose `type` differs from the preset's (another auth scheme, another pagination style)
  replaces the preset's mapping instead of merging into it;
- lists and scalars are replaced; `null` removes the preset's key (as in a JSON merge patch, RFC 7386);
- `operations` therefore merge by name: a new name adds an operation, a known one is patched.

This module knows nothing about diagnostics or positions; `runtime.spec.presets` reports problems in
the words of the project's file.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runtime.spec.yamlload import YamlLoadError, load_file

PRESET_DIR = Path(__file__).resolve().parent
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountSetting(_Strict):
    """One account-specific value a Connection gives under `account:`."""

    description: str = Field(description="What the value is and where to find it.")
    default: Any = Field(None, description="Used when the Connection does not give the value (null: required).")
    example: Any = Field(None, description="An example value (shown by `syncline systems show`).")
    secret: bool = Field(False, description="Whether the value is a credential (give it as `{{ secret('…') }}`).")


class PresetFile(_Strict):
    """The model of a preset file (`runtime/presets/<name>.yaml`)."""

    kind: str = Field(pattern="^Preset$", description="Always `Preset`.")
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="The name a Connection's `preset:` uses.")
    title: str = Field(description="The vendor's product name.")
    category: str = Field(description="crm, cpq, billing, payments, ecommerce, erp, tax or wms.")
    description: str = Field(description="One paragraph: which API, which version, what the preset sets up.")
    docs: str = Field(description="The docs page, relative to the repository (docs/systems/<name>.md).")
    api_version: str | None = Field(None, description="The API version the preset's paths are written for.")
    covers: list[str] = Field(default_factory=list, description="What the preset covers (one line each).")
    not_covered: list[str] = Field(default_factory=list, description="What it does not cover yet.")
    account: dict[str, AccountSetting] = Field(
        default_factory=dict, description="Account-specific values, used in the preset as `${name}`."
    )
    connection: dict[str, Any] = Field(
        description="The Connection's fields (`type`, `config`, `operations`) with `${name}` placeholders."
    )


@dataclass
class Preset:
    """A loaded preset file."""

    spec: PresetFile
    path: Path
    operations: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name


class PresetError(ValueError):
    """A preset file is broken (a bug in the package, reported with its path)."""


def preset_files(directory: Path | None = None) -> dict[str, Path]:
    """The shipped preset files by name."""
    return {path.stem: path for path in sorted((directory or PRESET_DIR).glob("*.yaml"))}


def known_presets() -> list[str]:
    return sorted(preset_files())


@cache
def load_preset(name: str) -> Preset:
    """The shipped preset `name`; KeyError when there is none, PresetError when its file is broken."""
    path = preset_files().get(name)
    if path is None:
        raise KeyError(name)
    return read_preset(path)


def read_preset(path: Path) -> Preset:
    """Read and check one preset file."""
    try:
        docs = load_file(path)
    except YamlLoadError as exc:
        raise PresetError("; ".join(d.text() for d in exc.diagnostics)) from None
    if len(docs) != 1 or not isinstance(docs[0].data, dict):
        raise PresetError(f"{path}: a preset file holds one mapping")
    try:
        spec = PresetFile.model_validate(docs[0].data)
    except ValidationError as exc:
        raise PresetError(f"{path}: {exc}") from None
    if spec.name != path.stem:
        raise PresetError(f"{path}: name {spec.name!r} differs from the file name")
    operations = spec.connection.get("operations") or {}
    return Preset(spec, path, sorted(operations) if isinstance(operations, dict) else [])


def account_values(preset: Preset, given: dict[str, Any]) -> tuple[dict[str, Any], list[str], list[str]]:
    """The account values with defaults filled in, the unknown names given and the required ones missing."""
    settings = preset.spec.account
    unknown = [name for name in given if name not in settings]
    values: dict[str, Any] = {}
    missing: list[str] = []
    for name, setting in settings.items():
        if name in given and given[name] is not None:
            values[name] = given[name]
        elif setting.default is not None:
            values[name] = setting.default
        else:
            missing.append(name)
    # a default may use another account value (`base_url: https://${shop}.myshopify.com`)
    values = {name: substitute(value, values) for name, value in values.items()}
    return values, unknown, missing


def substitute(value: Any, values: dict[str, Any]) -> Any:
    """`value` with every `${name}` replaced; a string that is exactly one placeholder takes the value's type."""
    if isinstance(value, dict):
        return {key: substitute(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, values) for item in value]
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole and whole[1] in values:
            return copy.deepcopy(values[whole[1]])
        return _PLACEHOLDER.sub(lambda m: str(values[m[1]]) if m[1] in values else m[0], value)
    return value


def placeholders(value: Any) -> set[str]:
    """Every `${name}` used in `value`."""
    if isinstance(value, dict):
        return set().union(*(placeholders(item) for item in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(placeholders(item) for item in value)) if value else set()
    if isinstance(value, str):
        return set(_PLACEHOLDER.findall(value))
    return set()


def merge(base: Any, patch: Any) -> Any:
    """`patch` merged over `base` (the project's fields over the preset's): see the module docstring."""
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if "type" in base and "type" in patch and base["type"] != patch["type"]:
        return {key: copy.deepcopy(item) for key, item in patch.items() if item is not None}
    out = copy.deepcopy(base)
    for key, item in patch.items():
        if item is None:
            out.pop(key, None)
        elif key in out:
            out[key] = merge(out[key], item)
        else:
            out[key] = copy.deepcopy(item)
    return out


PRESET_FIELDS = ("preset", "account")


def expand(preset: Preset, document: dict[str, Any], account: dict[str, Any]) -> dict[str, Any]:
    """The Connection `document` (which names `preset`) with the preset's fields under its own."""
    base = substitute(preset.spec.connection, account)
    own = {key: item for key, item in document.items() if key not in PRESET_FIELDS}
    merged: dict[str, Any] = merge(base, own)
    merged["preset"] = preset.name
    merged["account"] = account
    return merged
