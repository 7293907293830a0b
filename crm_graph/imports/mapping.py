"""Column mappings and value transforms: from a file's row to the clean values of one record.

A mapping is ``{"columns": [...], "options": {...}}``. Each column maps a ``source`` column of
the file (or a ``constant``) to a ``target`` field of the entity; how a value is read follows
from its target: names are trimmed and cleaned like the API's, ``fullName`` is split into first
and last name, dates are read in the common formats, phone numbers get the row's or the
mapping's region, tags are split on a separator. The normalisers are the API's own
(crm_graph/customers/validation.py, crm_graph/sales/service/common.py), so an imported record
is exactly as clean as one created through the API.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from crm_graph.core import errors as codes
from crm_graph.customers import validation as v
from crm_graph.customers.models import AcquisitionChannel, Gender, LifecycleStage
from crm_graph.imports.models import ImportEntity
from crm_graph.sales.models import OrderStatus
from crm_graph.sales.service import common as sales

# --- targets -----------------------------------------------------------------------------

TEXT, EMAIL, PHONE, DATE, DATETIME, COUNTRY, TAGS, ENUM, DECIMAL, BOOL, NAME, LOCALE = (
    "text", "email", "phone", "date", "datetime", "country", "tags", "enum", "decimal", "bool", "name", "locale",
)


@dataclass(frozen=True)
class Target:
    kind: str
    limit: int = 200
    enum: Any = None
    description: str = ""


_PERSON = {
    "externalId": Target(TEXT, 200, description="The record's ID in the source system (its external reference)."),
    "firstName": Target(TEXT, 100),
    "lastName": Target(TEXT, 100),
    "fullName": Target(NAME, 201, description="Split into first and last name (CJK names: family name first, no space)."),
    "email": Target(EMAIL),
    "phone": Target(PHONE),
    "jobTitle": Target(TEXT, 200),
    "country": Target(COUNTRY),
    "region": Target(TEXT, 100),
    "city": Target(TEXT, 100),
    "tags": Target(TAGS),
    "owner": Target(EMAIL, description="The owner, by the user's email."),
    "source": Target(ENUM, enum=AcquisitionChannel),
    "lifecycleStage": Target(ENUM, enum=LifecycleStage),
}

TARGETS: dict[ImportEntity, dict[str, Target]] = {
    ImportEntity.CUSTOMER: {
        **_PERSON,
        "birthday": Target(DATE),
        "gender": Target(ENUM, enum=Gender),
        "locale": Target(LOCALE),
        "organization": Target(TEXT, 200, description="The person's organization, by name (created when missing)."),
        "organizationExternalId": Target(TEXT, 200, description="The person's organization, by its external ID."),
    },
    ImportEntity.ORGANIZATION: {
        **{k: t for k, t in _PERSON.items() if k not in ("firstName", "lastName", "fullName", "jobTitle")},
        "name": Target(TEXT, 200, description="The organization's name."),
        "contactFullName": Target(NAME, 201),
        "contactFirstName": Target(TEXT, 100),
        "contactLastName": Target(TEXT, 100),
        "contactEmail": Target(EMAIL),
        "contactPhone": Target(PHONE),
        "contactJobTitle": Target(TEXT, 200),
    },
    ImportEntity.PRODUCT: {
        "sku": Target(TEXT, 64),
        "name": Target(TEXT, 200),
        "description": Target(TEXT, 10_000),
        "unitPrice": Target(DECIMAL),
        "currency": Target(TEXT, 3),
        "active": Target(BOOL),
        "tags": Target(TAGS),
    },
    ImportEntity.ORDER: {
        "externalId": Target(TEXT, 200, description="The order's number in the source system; rows with the same one are its lines."),
        "customerExternalId": Target(TEXT, 200),
        "customerEmail": Target(EMAIL),
        "orderedAt": Target(DATETIME),
        "currency": Target(TEXT, 3),
        "status": Target(ENUM, enum=OrderStatus),
        "taxRate": Target(DECIMAL),
        "sku": Target(TEXT, 64),
        "description": Target(TEXT, 300),
        "quantity": Target(DECIMAL),
        "unitPrice": Target(DECIMAL),
        "discountPercent": Target(DECIMAL),
    },
}

OPTIONS = {
    "phoneRegion": "Region of phone numbers written without +country code, when the row has no country (e.g. CN).",
    "dayFirst": "Whether 04/12/2026 is the 4th of December (true) or April 12th (false, the default).",
    "externalSystem": "The system name of external IDs (default: import).",
    "currency": "Currency of prices and orders when no column gives one.",
    "tagSeparator": "What separates tags in one cell (default: , ; and |).",
    "encoding": "The CSV file's encoding, when detection should not decide (utf-8, gb18030, cp1252...).",
    "delimiter": "The CSV delimiter, when sniffing should not decide.",
    "sheet": "The XLSX sheet to read (default: the first).",
}


class MappingInvalid(ValueError):
    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field, self.code = field, code


@dataclass
class Column:
    target: str
    source: str | None = None
    constant: Any = None
    separator: str | None = None
    index: int | None = None  # the source column's position in the file's header


@dataclass
class Mapping_:
    entity: ImportEntity
    columns: list[Column]
    options: dict[str, Any] = field(default_factory=dict)

    def targets(self) -> set[str]:
        return {c.target for c in self.columns}


def parse_spec(entity: ImportEntity, spec: Mapping[str, Any]) -> Mapping_:
    """Check a mapping against the entity's fields (not yet against a file's header)."""
    columns_in = spec.get("columns")
    if not isinstance(columns_in, Sequence) or not columns_in:
        raise MappingInvalid("mapping.columns", codes.REQUIRED, "Map at least one column.")
    known = TARGETS[entity]
    columns: list[Column] = []
    seen: set[str] = set()
    for i, raw in enumerate(columns_in):
        here = f"mapping.columns.{i}"
        target = raw.get("target")
        if target not in known:
            raise MappingInvalid(f"{here}.target", codes.INVALID_VALUE,
                                 f"{target!r} is not a field of {entity.name}; the fields are: {', '.join(known)}.")
        if target in seen:
            raise MappingInvalid(f"{here}.target", codes.DUPLICATE, f"{target} is mapped twice.")
        seen.add(target)
        source, constant = raw.get("source"), raw.get("constant")
        if (source is None) == (constant is None):
            raise MappingInvalid(here, codes.INVALID_VALUE, "Give a source column or a constant value, not both.")
        columns.append(Column(target, source.strip() if isinstance(source, str) else None, constant, raw.get("separator")))
    options = dict(spec.get("options") or {})
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise MappingInvalid("mapping.options", codes.INVALID_VALUE, f"Unknown options: {', '.join(sorted(unknown))}.")
    if options.get("phoneRegion") is not None:
        try:
            options["phoneRegion"] = v.country(options["phoneRegion"])
        except v.InvalidValue as exc:
            raise MappingInvalid("mapping.options.phoneRegion", codes.INVALID_VALUE, str(exc)) from None
    if options.get("currency") is not None:
        try:
            options["currency"] = sales.currency(options["currency"])
        except sales.Invalid as exc:
            raise MappingInvalid("mapping.options.currency", exc.code, str(exc)) from None
    return Mapping_(entity, columns, options)


def bind(mapping: Mapping_, header: list[str]) -> Mapping_:
    """Find each source column in the file's header (exact name, else ignoring case and spaces)."""
    folded = {_fold(name): i for i, name in enumerate(header) if name}
    exact = {name: i for i, name in enumerate(header) if name}
    for col in mapping.columns:
        if col.source is None:
            continue
        index = exact.get(col.source, folded.get(_fold(col.source)))
        if index is None:
            raise MappingInvalid("mapping", codes.NOT_FOUND,
                                 f"The file has no column {col.source!r} (its columns: {', '.join(h for h in header if h)}).")
        col.index = index
    return mapping


def _fold(name: str) -> str:
    return re.sub(r"\s+", "", name).casefold()


def spec_of(mapping: Mapping_) -> dict[str, Any]:
    return {
        "columns": [
            {k: val for k, val in (("target", c.target), ("source", c.source), ("constant", c.constant), ("separator", c.separator)) if val is not None}
            for c in mapping.columns
        ],
        "options": mapping.options,
    }


# --- transforms -------------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    column: str | None
    field: str | None
    code: str
    message: str


class Bad(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


_EMPTY = (None, "")


def apply(mapping: Mapping_, row: Sequence[Any], *, default_region: str) -> tuple[dict[str, Any], list[RowError]]:
    """The clean values of one row, by target; and the row's errors (then the values are partial)."""
    out: dict[str, Any] = {}
    errors: list[RowError] = []
    targets = TARGETS[mapping.entity]
    raw: dict[str, Any] = {}
    for col in mapping.columns:
        value = col.constant if col.index is None else (row[col.index] if col.index < len(row) else None)
        if isinstance(value, str):
            value = value.strip()
        raw[col.target] = value
    # The row's own country decides its phone numbers' region.
    region = mapping.options.get("phoneRegion") or default_region
    if raw.get("country") not in _EMPTY:
        try:
            region = v.country(raw["country"])
        except v.InvalidValue:
            pass
    for col in mapping.columns:
        value = raw[col.target]
        if value in _EMPTY:
            continue
        try:
            out.update(_convert(col, targets[col.target], value, mapping.options, region))
        except Bad as exc:
            errors.append(RowError(col.source, col.target, exc.code, str(exc)))
    return out, errors


def _convert(col: Column, target: Target, value: Any, options: Mapping[str, Any], region: str) -> dict[str, Any]:
    name = col.target
    kind = target.kind
    try:
        if kind == TEXT:
            return {name: v.text(_as_text(value), target.limit)}
        if kind == NAME:
            first, last = split_name(_as_text(value))
            prefix = "contact" if name.startswith("contact") else ""
            keys = (f"{prefix}FirstName", f"{prefix}LastName") if prefix else ("firstName", "lastName")
            return {keys[0]: v.text(first, 100), keys[1]: v.text(last, 100)}
        if kind == EMAIL:
            return {name: v.email(_as_text(value))}
        if kind == PHONE:
            return {name: v.phone(_as_text(value), region)}
        if kind == COUNTRY:
            return {name: v.country(_as_text(value))}
        if kind == LOCALE:
            return {name: v.locale(_as_text(value))}
        if kind == DATE:
            day = parse_date(value, day_first=bool(options.get("dayFirst")))
            return {name: v.birthday(day) if name == "birthday" else day}
        if kind == DATETIME:
            return {name: parse_datetime(value, day_first=bool(options.get("dayFirst")))}
        if kind == TAGS:
            return {name: v.tags(split_tags(_as_text(value), col.separator or options.get("tagSeparator")))}
        if kind == ENUM:
            key = re.sub(r"[\s-]+", "_", _as_text(value).strip()).upper()
            try:
                return {name: target.enum[key]}
            except KeyError:
                raise Bad(codes.INVALID_VALUE, f"{value!r} is not one of {', '.join(m.name for m in target.enum)}.") from None
        if kind == DECIMAL:
            return {name: parse_decimal(value)}
        if kind == BOOL:
            return {name: parse_bool(value)}
    except v.InvalidValue as exc:
        code = {EMAIL: codes.INVALID_EMAIL, PHONE: codes.INVALID_PHONE}.get(kind, codes.INVALID_VALUE)
        raise Bad(code, str(exc)) from None
    raise AssertionError(kind)  # pragma: no cover


def _as_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a number cell holding a code or a phone number
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


# Chinese family names of two characters; other CJK names take the first character.
_COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 令狐 澹台 端木 轩辕 独孤 南宫 西门 百里 呼延 歐陽 諸葛 司馬 東方 長孫".split()
)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")


def is_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def split_name(full: str) -> tuple[str | None, str | None]:
    """(first, last). "Smith, John" and "John Smith" give (John, Smith); a CJK name is written
    family name first: "张伟" gives (伟, 张), "欧阳娜娜" (娜娜, 欧阳), "山田 太郎" (太郎, 山田)."""
    name = " ".join(full.split())
    if not name:
        return None, None
    if is_cjk(name):
        if " " in name:
            family, given = name.split(" ", 1)
            return given.replace(" ", ""), family
        if len(name) == 1:
            return None, name
        cut = 2 if name[:2] in _COMPOUND_SURNAMES and len(name) > 2 else 1
        return name[cut:], name[:cut]
    if "," in name:
        last, first = (p.strip() for p in name.split(",", 1))
        return first or None, last or None
    if " " not in name:
        return None, name
    first, last = name.split(" ", 1)
    return first, last


def split_tags(value: str, separator: str | None) -> list[str]:
    parts = value.split(separator) if separator else re.split(r"[,;|]", value)
    return [p for p in (p.strip() for p in parts) if p]


_EXCEL_EPOCH = date(1899, 12, 30)  # serial 1 is 1900-01-01 (with Lotus's leap-year bug)
_YMD = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_DOTTED = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_SLASHED = re.compile(r"^(\d{1,2})[/-](\d{1,2})[/-](\d{4})$")
_CHINESE = re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日$")


def parse_date(value: Any, *, day_first: bool = False) -> date:
    """ISO (2026-12-04), 2026/12/04, 04.12.2026 (day first), 12/04/2026 (month first unless
    ``day_first``), 2026年12月4日, a date or datetime cell, or an Excel serial number."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not 1 <= value < 2_958_466:  # 9999-12-31
            raise Bad(codes.INVALID_VALUE, f"{value!r} is not a date.")
        return _EXCEL_EPOCH + timedelta(days=int(value))
    text = str(value).strip()
    text = text.split("T", 1)[0].split(" ", 1)[0] if _YMD.match(text.split("T", 1)[0].split(" ", 1)[0]) else text
    try:
        if m := _YMD.match(text) or _CHINESE.match(text):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := _DOTTED.match(text):
            return date(int(m[3]), int(m[2]), int(m[1]))
        if m := _SLASHED.match(text):
            a, b = int(m[1]), int(m[2])
            day, month = (a, b) if day_first else (b, a)
            return date(int(m[3]), month, day)
    except ValueError:
        raise Bad(codes.INVALID_VALUE, f"{text!r} is not a valid date.") from None
    raise Bad(codes.INVALID_VALUE,
              f"{text!r} is not a date; write 2026-12-04, 2026/12/04, 04.12.2026 or 12/04/2026.")


def parse_datetime(value: Any, *, day_first: bool = False) -> datetime:
    """A timestamp; a date alone is midnight UTC, a time without a zone is UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.combine(parse_date(value, day_first=day_first), time(0), UTC)


def parse_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise Bad(codes.INVALID_VALUE, "Expected a number.")
    text = _as_text(value).replace(" ", "").replace("\u00a0", "")
    if isinstance(value, str) and "," in text:
        # 1.234,50 (European) or 1,234.50 (English): the last separator is the decimal one.
        text = text.replace(".", "").replace(",", ".") if text.rfind(",") > text.rfind(".") else text.replace(",", "")
    try:
        number = Decimal(text)
    except ArithmeticError:
        raise Bad(codes.INVALID_VALUE, f"{value!r} is not a number.") from None
    if not number.is_finite():
        raise Bad(codes.INVALID_VALUE, f"{value!r} is not a number.")
    return number


_TRUE = {"true", "yes", "y", "1", "x", "ja", "oui", "是"}
_FALSE = {"false", "no", "n", "0", "", "nein", "non", "否"}


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _as_text(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise Bad(codes.INVALID_VALUE, f"{value!r} is not yes or no.")
