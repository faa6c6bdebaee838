"""A small OData v2 engine for the SAP S/4HANA simulator: entity models, `$metadata` EDMX, the v2 JSON
format (`d`, `d.results`, `d.__next`, `__metadata` with `etag`, `__deferred` navigation, Edm.Decimal as a
string, Edm.DateTime as `/Date(ms)/`), keys in the URL (`A_SalesOrder('1')`,
`A_SalesOrderItem(SalesOrder='1',SalesOrderItem='10')`) and the query options the simulator answers:
`$top`, `$skip`, `$filter` (`Field eq 'v'` joined by `and`), `$select`, `$expand` (one level),
`$inlinecount=allpages` and server-driven paging with `$skiptoken`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape


@dataclass
class Prop:
    name: str
    type: str = "Edm.String"
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    nullable: bool = True
    label: str | None = None


@dataclass
class Nav:
    name: str
    target: str  # entity set name
    many: bool = True
    link: tuple[tuple[str, str], ...] = ()  # (this property, target property) pairs


@dataclass
class EntitySet:
    name: str  # A_SalesOrder
    type_name: str  # A_SalesOrderType
    keys: list[str]
    props: list[Prop]
    navs: list[Nav] = field(default_factory=list)
    etag: str | None = None  # the property the ETag is made from (ConcurrencyMode=Fixed)

    def prop(self, name: str) -> Prop | None:
        return next((p for p in self.props if p.name == name), None)


@dataclass
class Service:
    name: str  # API_SALES_ORDER_SRV
    sets: dict[str, EntitySet]


class ODataError(Exception):
    """An OData error answer: `{"error": {"code", "message": {"lang", "value"}}}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "message": {"lang": "en", "value": self.message},
                "innererror": {"application": {"component_id": "SD-SLS", "service_namespace": "/SAP/"}},
            }
        }


# ----------------------------------------------------------------------------------------- $metadata


def metadata(service: Service) -> str:
    """The service's EDMX document (OData v2, with SAP annotations)."""
    ns = service.name
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<edmx:Edmx Version="1.0" xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx" '
        'xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata" '
        'xmlns:sap="http://www.sap.com/Protocols/SAPData">',
        '<edmx:DataServices m:DataServiceVersion="2.0">',
        f'<Schema Namespace="{ns}" xml:lang="en" sap:schema-version="1" '
        'xmlns="http://schemas.microsoft.com/ado/2008/09/edm">',
    ]
    associations: list[tuple[str, EntitySet, Nav]] = []
    for entity_set in service.sets.values():
        out.append(f'<EntityType Name="{entity_set.type_name}" sap:content-version="1">')
        out.append("<Key>" + "".join(f'<PropertyRef Name="{k}"/>' for k in entity_set.keys) + "</Key>")
        for prop in entity_set.props:
            attrs = [f'Name="{prop.name}"', f'Type="{prop.type}"']
            if not prop.nullable or prop.name in entity_set.keys:
                attrs.append('Nullable="false"')
            if prop.max_length:
                attrs.append(f'MaxLength="{prop.max_length}"')
            if prop.precision is not None:
                attrs.append(f'Precision="{prop.precision}" Scale="{prop.scale or 0}"')
            if prop.name == entity_set.etag:
                attrs.append('ConcurrencyMode="Fixed"')
            attrs.append(f'sap:label="{escape(prop.label or prop.name)}"')
            out.append(f"<Property {' '.join(attrs)}/>")
        for nav in entity_set.navs:
            assoc = f"assoc_{entity_set.type_name}_{nav.name}"
            associations.append((assoc, entity_set, nav))
            out.append(
                f'<NavigationProperty Name="{nav.name}" Relationship="{ns}.{assoc}" '
                f'FromRole="FromRole_{assoc}" ToRole="ToRole_{assoc}"/>'
            )
        out.append("</EntityType>")
    for assoc, entity_set, nav in associations:
        target = service.sets[nav.target]
        out.append(f'<Association Name="{assoc}" sap:content-version="1">')
        out.append(f'<End Type="{ns}.{entity_set.type_name}" Multiplicity="1" Role="FromRole_{assoc}"/>')
        many = "*" if nav.many else "0..1"
        out.append(f'<End Type="{ns}.{target.type_name}" Multiplicity="{many}" Role="ToRole_{assoc}"/>')
        if nav.link:
            out.append("<ReferentialConstraint>")
            out.append(f'<Principal Role="FromRole_{assoc}">')
            out.extend(f'<PropertyRef Name="{mine}"/>' for mine, _ in nav.link)
            out.append(f'</Principal><Dependent Role="ToRole_{assoc}">')
            out.extend(f'<PropertyRef Name="{theirs}"/>' for _, theirs in nav.link)
            out.append("</Dependent></ReferentialConstraint>")
        out.append("</Association>")
    out.append(
        f'<EntityContainer Name="{ns}_Entities" m:IsDefaultEntityContainer="true" sap:supported-formats="atom json">'
    )
    for entity_set in service.sets.values():
        out.append(
            f'<EntitySet Name="{entity_set.name}" EntityType="{ns}.{entity_set.type_name}" sap:content-version="1"/>'
        )
    for assoc, entity_set, nav in associations:
        target = service.sets[nav.target]
        out.append(f'<AssociationSet Name="{assoc}_set" Association="{ns}.{assoc}" sap:content-version="1">')
        out.append(f'<End EntitySet="{entity_set.name}" Role="FromRole_{assoc}"/>')
        out.append(f'<End EntitySet="{target.name}" Role="ToRole_{assoc}"/>')
        out.append("</AssociationSet>")
    out += ["</EntityContainer>", "</Schema>", "</edmx:DataServices>", "</edmx:Edmx>"]
    return "\n".join(out)


# ------------------------------------------------------------------------------------------- values


def to_wire(prop: Prop, value: Any) -> Any:
    """A stored value in OData v2 JSON."""
    if value is None:
        return None
    if prop.type == "Edm.Decimal":
        return format(Decimal(str(value)), "f")
    if prop.type in ("Edm.DateTime", "Edm.DateTimeOffset"):
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        millis = int(moment.timestamp() * 1000)
        return f"/Date({millis}+0000)/" if prop.type == "Edm.DateTimeOffset" else f"/Date({millis})/"
    if prop.type == "Edm.Boolean":
        return bool(value)
    return str(value)


_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")


def from_wire(prop: Prop, value: Any) -> Any:
    """A value a client sent, checked against the property's type and stored in plain form."""
    if value is None:
        return None
    if prop.type == "Edm.Decimal":
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise ODataError(400, "/IWBEP/CM_MGW_RT/022", f"Invalid value for property '{prop.name}'") from None
        if prop.scale is not None and number.as_tuple().exponent < -prop.scale:  # type: ignore[operator]
            raise ODataError(400, "/IWBEP/CM_MGW_RT/022", f"Property '{prop.name}' has more than {prop.scale} decimals")
        return number
    if prop.type in ("Edm.DateTime", "Edm.DateTimeOffset"):
        match = _DATE.fullmatch(str(value))
        if match:
            moment = dt.datetime.fromtimestamp(int(match[1]) / 1000, dt.UTC)
            return moment.isoformat().replace("+00:00", "Z")
        try:
            dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise ODataError(400, "/IWBEP/CM_MGW_RT/022", f"Invalid date for property '{prop.name}'") from None
        return str(value)
    if prop.type == "Edm.Boolean":
        return bool(value)
    text = str(value)
    if prop.max_length and len(text) > prop.max_length:
        raise ODataError(400, "/IWBEP/CM_MGW_RT/022", f"Value of '{prop.name}' is longer than {prop.max_length}")
    return text


# --------------------------------------------------------------------------------------- addressing

_KEY_PART = re.compile(r"\s*(?:(\w+)\s*=\s*)?('(?:[^']|'')*'|[^,]+)\s*")


def parse_resource(path: str) -> tuple[str, dict[str, str] | None, str | None]:
    """`A_SalesOrder('1')/to_Item` → ("A_SalesOrder", {"": "1"}, "to_Item")."""
    match = re.fullmatch(r"(\w+)(?:\((.*)\))?(?:/(\w+))?", path)
    if match is None:
        raise ODataError(404, "/IWBEP/CM_MGW_RT/021", f"Resource not found for segment '{path}'")
    keys: dict[str, str] | None = None
    if match[2] is not None:
        keys = {}
        for part in re.finditer(r"(?:(\w+)=)?('(?:[^']|'')*'|[^,]+)", match[2]):
            raw = part[2]
            keys[part[1] or ""] = raw[1:-1].replace("''", "'") if raw.startswith("'") else raw
    return match[1], keys, match[3]


def key_of(entity_set: EntitySet, keys: dict[str, str]) -> str:
    if list(keys) == [""] and len(entity_set.keys) == 1:
        return keys[""]
    try:
        return ",".join(keys[name] for name in entity_set.keys)
    except KeyError:
        raise ODataError(400, "/IWBEP/CM_MGW_RT/020", "Invalid key predicate") from None


def key_text(entity_set: EntitySet, record: dict[str, Any]) -> str:
    if len(entity_set.keys) == 1:
        return f"'{quote(str(record[entity_set.keys[0]]))}'"
    return ",".join(f"{name}='{quote(str(record[name]))}'" for name in entity_set.keys)


def record_id(entity_set: EntitySet, record: dict[str, Any]) -> str:
    return ",".join(str(record[name]) for name in entity_set.keys)


def etag_of(entity_set: EntitySet, record: dict[str, Any]) -> str | None:
    if entity_set.etag is None or record.get(entity_set.etag) is None:
        return None
    value = quote(str(record[entity_set.etag]), safe="")
    return f"W/\"datetimeoffset'{value}'\""


def filter_records(records: list[dict[str, Any]], expression: str | None) -> list[dict[str, Any]]:
    """Apply `Field eq 'value' [and Field eq 'value' …]`; other filters are refused as SAP does."""
    if not expression:
        return records
    conditions = []
    for part in re.split(r"\s+and\s+", expression.strip()):
        match = re.fullmatch(r"(\w+)\s+eq\s+('(?:[^']|'')*'|[\w.+-]+)", part.strip())
        if match is None:
            raise ODataError(400, "/IWBEP/CM_MGW_RT/004", f"Invalid filter expression: '{expression}'")
        raw = match[2]
        conditions.append((match[1], raw[1:-1].replace("''", "'") if raw.startswith("'") else raw))
    return [r for r in records if all(str(r.get(name)) == value for name, value in conditions)]
