"""Normalisers for customer data: emails, phone numbers, countries, locales, tags, custom values.

Each returns the clean value or raises ``InvalidValue`` with a message for the client.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from crm_graph.core import text as core_text
from crm_graph.core.clock import utcnow
from crm_graph.customers.models import CustomFieldDefinition, CustomFieldType

# ISO 3166-1 alpha-2 codes known to libphonenumber (every country and territory with a dialling
# code), plus Antarctica, which has none.
COUNTRY_CODES = frozenset(phonenumbers.SUPPORTED_REGIONS) | {"AQ"}
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_FIELD_KEY = re.compile(r"^[a-z][a-zA-Z0-9_]{0,63}$")
MAX_TAGS = 50
MAX_TAG_LENGTH = 64
MAX_CUSTOM_TEXT = 1000


class InvalidValue(ValueError):
    pass


def email(address: Any) -> str:
    if not isinstance(address, str) or not address.strip():
        raise InvalidValue("An email address is required.")
    try:
        result = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidValue(f"{address!r} is not a valid email address: {exc}") from None
    # Addresses are compared and stored in lower case: mailboxes that differ only in case are
    # one mailbox in practice, and duplicates must be found.
    return result.normalized.lower()


def phone(number: Any, region: str | None) -> str:
    if not isinstance(number, str) or not number.strip():
        raise InvalidValue("A phone number is required.")
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        raise InvalidValue(f"{number!r} is not a phone number.") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidValue(
            f"{number!r} is not a valid phone number"
            + (f" for region {region}" if region and not number.strip().startswith("+") else "")
            + "; write it with its +country code."
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def country(code: Any) -> str:
    if not isinstance(code, str) or code.strip().upper() not in COUNTRY_CODES:
        raise InvalidValue(f"{code!r} is not an ISO 3166-1 alpha-2 country code (e.g. DE, US, JP).")
    return code.strip().upper()


def locale(tag: Any) -> str:
    if not isinstance(tag, str) or not _LOCALE.match(tag.strip()):
        raise InvalidValue(f"{tag!r} is not a locale tag (e.g. en, en-GB, pt-BR).")
    return tag.strip().replace("_", "-")


def time_zone(name: Any) -> str:
    if isinstance(name, str) and name.strip():
        try:
            ZoneInfo(name.strip())
        except (ZoneInfoNotFoundError, ValueError):
            pass
        else:
            return name.strip()
    raise InvalidValue(f"{name!r} is not an IANA time zone name (e.g. Europe/Berlin, America/New_York, UTC).")


def birthday(value: date) -> date:
    today = utcnow().date()
    if value > today:
        raise InvalidValue("A birthday cannot be in the future.")
    if value.year < 1900:
        raise InvalidValue("A birthday before 1900 is not plausible.")
    return value


def tags(values: list[str]) -> list[str]:
    """Trimmed, lower-cased, de-duplicated, order kept."""
    clean: list[str] = []
    for raw in values:
        tag = raw.strip().lower()
        if not tag:
            raise InvalidValue("A tag cannot be empty.")
        if len(tag) > MAX_TAG_LENGTH:
            raise InvalidValue(f"A tag has at most {MAX_TAG_LENGTH} characters.")
        if tag not in clean:
            clean.append(tag)
    if len(clean) > MAX_TAGS:
        raise InvalidValue(f"A customer has at most {MAX_TAGS} tags.")
    return clean


def text(value: Any, max_length: int, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise InvalidValue("This field is required.")
        return None
    if not isinstance(value, str):
        raise InvalidValue("Expected text.")
    value = value.strip()
    if not value:
        if required:
            raise InvalidValue("This field is required.")
        return None
    try:
        value = core_text.clean(value)
    except ValueError as exc:
        raise InvalidValue(str(exc)) from None
    if len(value) > max_length:
        raise InvalidValue(f"At most {max_length} characters.")
    return value


def field_key(key: Any) -> str:
    if not isinstance(key, str) or not _FIELD_KEY.match(key):
        raise InvalidValue("A key starts with a lower-case letter and has at most 64 letters, digits or underscores.")
    return key


def custom_value(definition: CustomFieldDefinition, value: Any) -> dict[str, Any]:
    """The column values storing ``value`` for ``definition`` (one of value_text/number/date/bool)."""
    kind = definition.type
    if kind is CustomFieldType.TEXT:
        if not isinstance(value, str):
            raise InvalidValue(f"{definition.key} is a TEXT field: expected a string.")
        if len(value) > MAX_CUSTOM_TEXT:
            raise InvalidValue(f"{definition.key}: at most {MAX_CUSTOM_TEXT} characters.")
        return {"value_text": value}
    if kind is CustomFieldType.SELECT:
        if value not in (definition.options or []):
            raise InvalidValue(f"{definition.key} must be one of: {', '.join(definition.options or [])}.")
        return {"value_text": value}
    if kind is CustomFieldType.NUMBER:
        return {"value_number": custom_number(value, definition.key)}
    if kind is CustomFieldType.DATE:
        return {"value_date": custom_date(value, definition.key)}
    if kind is CustomFieldType.BOOLEAN:
        if not isinstance(value, bool):
            raise InvalidValue(f"{definition.key} is a BOOLEAN field: expected true or false.")
        return {"value_bool": value}
    raise InvalidValue(f"{definition.key}: unsupported type")  # pragma: no cover


def custom_number(value: Any, key: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise InvalidValue(f"{key} is a NUMBER field: expected a number.")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise InvalidValue(f"{key} is a NUMBER field: {value!r} is not a number.") from None
    if not number.is_finite() or abs(number) >= Decimal(10) ** 20:
        raise InvalidValue(f"{key}: number out of range.")
    return number


def custom_date(value: Any, key: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidValue(f"{key} is a DATE field: expected YYYY-MM-DD.") from None


def stored_custom_value(definition: CustomFieldDefinition, row: Any) -> Any:
    """Read a stored value back as JSON data: whole numbers as integers, others as floats."""
    kind = definition.type
    if kind in (CustomFieldType.TEXT, CustomFieldType.SELECT):
        return row.value_text
    if kind is CustomFieldType.NUMBER:
        number = row.value_number
        if number is None:
            return None
        return int(number) if number == number.to_integral_value() else float(number)
    if kind is CustomFieldType.DATE:
        return None if row.value_date is None else row.value_date.isoformat()
    return row.value_bool
