"""Money, dates, numbers, addresses and the printed words of documents, in a locale (Babel).

Locales are given as a customer or template has them ("de-DE", "zh_CN", "en"); Babel's own
rules decide separators, currency signs and date patterns. The words templates print
(``labels``) exist in English, German and Chinese; another language gets the English ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, format_percent

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "quote": "Quote", "order_confirmation": "Order confirmation", "invoice": "Invoice", "contract": "Contract",
        "report": "Sales report", "number": "Number", "date": "Date", "customer": "Customer", "seller": "Seller",
        "position": "Pos.", "sku": "Item no.", "description": "Description", "quantity": "Quantity",
        "unit_price": "Unit price", "discount": "Discount", "subtotal": "Subtotal", "tax": "Tax", "total": "Total",
        "valid_until": "Valid until", "ordered": "Order date", "paid": "Paid", "balance": "Balance due",
        "due": "Due date", "payment_terms": "Payment terms", "annex": "Annex", "stage": "Stage",
        "probability": "Probability", "count": "Count", "amount": "Amount", "weighted": "Weighted", "page": "Page",
        "vat_id": "VAT ID", "effective": "Effective from", "open": "Open", "won": "Won", "lost": "Lost", "win_rate": "Win rate", "recency": "Recency",
        "frequency": "Frequency", "opened": "Opened", "resolved": "Resolved", "breached": "Service level missed",
        "first_response_hours": "Average first response (hours)", "resolution_hours": "Average resolution (hours)",
    },
    "de": {
        "quote": "Angebot", "order_confirmation": "Auftragsbestätigung", "invoice": "Rechnung", "contract": "Vertrag",
        "report": "Vertriebsbericht", "number": "Nummer", "date": "Datum", "customer": "Kunde", "seller": "Anbieter",
        "position": "Pos.", "sku": "Art.-Nr.", "description": "Beschreibung", "quantity": "Menge",
        "unit_price": "Einzelpreis", "discount": "Rabatt", "subtotal": "Zwischensumme", "tax": "MwSt.",
        "total": "Gesamtbetrag", "valid_until": "Gültig bis", "ordered": "Bestelldatum", "paid": "Bezahlt",
        "balance": "Offener Betrag", "due": "Fällig am", "payment_terms": "Zahlungsbedingungen", "annex": "Anlage",
        "stage": "Phase", "probability": "Wahrscheinlichkeit", "count": "Anzahl", "amount": "Betrag",
        "weighted": "Gewichtet", "page": "Seite",
        "vat_id": "USt-IdNr.", "effective": "Beginn", "open": "Offen", "won": "Gewonnen", "lost": "Verloren", "win_rate": "Abschlussquote", "recency": "Aktualität",
        "frequency": "Häufigkeit", "opened": "Eröffnet", "resolved": "Gelöst", "breached": "Servicelevel verfehlt",
        "first_response_hours": "Ø Erstreaktion (Stunden)", "resolution_hours": "Ø Lösungszeit (Stunden)",
    },
    "zh": {
        "quote": "报价单", "order_confirmation": "订单确认书", "invoice": "发票", "contract": "合同", "report": "销售报告",
        "number": "编号", "date": "日期", "customer": "客户", "seller": "供应商", "position": "序号", "sku": "货号",
        "description": "描述", "quantity": "数量", "unit_price": "单价", "discount": "折扣", "subtotal": "小计",
        "tax": "税额", "total": "总计", "valid_until": "有效期至", "ordered": "订购日期", "paid": "已付",
        "balance": "应付余额", "due": "到期日", "payment_terms": "付款条件", "annex": "附件", "stage": "阶段",
        "probability": "成交概率", "count": "数量", "amount": "金额", "weighted": "加权金额", "page": "页",
        "vat_id": "税号", "effective": "生效日期", "open": "进行中", "won": "赢单", "lost": "输单", "win_rate": "赢单率", "recency": "最近购买", "frequency": "购买频率",
        "opened": "新建", "resolved": "已解决", "breached": "未达服务水平", "first_response_hours": "平均首次响应（小时）",
        "resolution_hours": "平均解决时间（小时）",
    },
}

# Sentences documents print, by language; {days} is filled in.
PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "payment_terms": "Payable within {days} days of the invoice date without deduction.",
        "price_schedule": "Price schedule",
        "terms": [
            ("Subject", "The seller delivers the goods and services listed in Annex A to the customer."),
            ("Prices", "The prices of Annex A apply; taxes are added at the rate in force on the date of invoice."),
            ("Payment", "Invoices are payable within {days} days of their date without deduction."),
            ("Term", "This contract takes effect on the effective date and ends when both parties have performed it."),
        ],
    },
    "de": {
        "payment_terms": "Zahlbar innerhalb von {days} Tagen ab Rechnungsdatum ohne Abzug.",
        "price_schedule": "Preisverzeichnis",
        "terms": [
            ("Gegenstand", "Der Anbieter liefert dem Kunden die in Anlage A aufgeführten Waren und Leistungen."),
            ("Preise", "Es gelten die Preise der Anlage A zuzüglich der am Rechnungstag gültigen Umsatzsteuer."),
            ("Zahlung", "Rechnungen sind innerhalb von {days} Tagen ab Rechnungsdatum ohne Abzug zahlbar."),
            ("Laufzeit", "Der Vertrag gilt ab dem Beginn und endet, wenn beide Seiten ihn erfüllt haben."),
        ],
    },
    "zh": {
        "payment_terms": "请于发票日期起{days}天内全额付款。",
        "price_schedule": "价格表",
        "terms": [
            ("合同标的", "供应商向客户提供附件A所列的货物和服务。"),
            ("价格", "适用附件A所列价格，税款按开票日有效税率另计。"),
            ("付款", "发票须于开票日期起{days}天内全额支付。"),
            ("期限", "本合同自生效日起生效，至双方履行完毕时终止。"),
        ],
    },
}

# Countries whose addresses run from the largest unit to the smallest (country, region, city, street).
LARGEST_FIRST = {"CN", "TW", "JP", "KR", "HK", "MO"}
# Countries that write "City, Region Postcode".
CITY_REGION_POSTCODE = {"US", "CA", "AU"}


def parse_locale(value: str | None, fallback: str = "en_US") -> Locale:
    """A Babel locale for ``value`` ("de-DE", "zh_CN", "en"); ``fallback`` when it is unknown."""
    for candidate in (value, fallback, "en_US"):
        if not candidate:
            continue
        try:
            return Locale.parse(candidate.replace("-", "_"))
        except (UnknownLocaleError, ValueError, TypeError):
            continue
    return Locale.parse("en_US")


def language_of(locale: Locale) -> str:
    return locale.language if locale.language in LABELS else "en"


class Formatter:
    """The filters a template may call (``money``, ``date``, ``datetime``, ``number``,
    ``percent``) and the formatting the contexts use, bound to one locale."""

    def __init__(self, locale: Locale) -> None:
        self.locale = locale
        self.language = language_of(locale)

    def money(self, amount: Decimal | int | float | None, currency: str) -> str:
        if amount is None:
            return ""
        return format_currency(Decimal(str(amount)), currency, locale=self.locale)

    def date(self, value: date | datetime | None) -> str:
        if value is None:
            return ""
        return format_date(value.date() if isinstance(value, datetime) else value, format="medium", locale=self.locale)

    def datetime(self, value: datetime | None) -> str:
        return "" if value is None else format_datetime(value, format="medium", locale=self.locale)

    def number(self, value: Decimal | int | float | None) -> str:
        if value is None:
            return ""
        value = Decimal(str(value))
        # Whole quantities print without decimals; others keep what they have (at most 4).
        text = format(value.normalize(), "f") if value == value.to_integral() else str(value)
        return format_decimal(Decimal(text), locale=self.locale)

    def percent(self, value: Decimal | int | float | None) -> str:
        """``value`` is a percentage as stored (19 means 19 %)."""
        if value is None:
            return ""
        fraction = Decimal(str(value)) / 100
        return format_percent(fraction, format="#,##0.##%", locale=self.locale)

    def filters(self) -> Mapping[str, Callable[..., Any]]:
        return {"money": self.money, "date": self.date, "datetime": self.datetime,
                "number": self.number, "percent": self.percent}

    def labels(self) -> dict[str, str]:
        return dict(LABELS[self.language])

    def phrase(self, key: str, **values: Any) -> Any:
        text = PHRASES[self.language][key]
        return text.format(**values) if isinstance(text, str) else text

    def country(self, code: str | None) -> str:
        if not code:
            return ""
        return self.locale.territories.get(code.upper(), code.upper())

    def address_lines(self, address: Mapping[str, Any] | None) -> list[str]:
        """An address as its country writes it, the country's name in this locale last (first
        where addresses begin with the country)."""
        if not address:
            return []
        country = (address.get("country") or "").upper()
        line1, line2 = address.get("line1") or "", address.get("line2") or ""
        postal, city, region = address.get("postal_code") or "", address.get("city") or "", address.get("region") or ""
        name = self.country(country)
        if country in LARGEST_FIRST:
            head = "".join(part for part in (name, region, city) if part)
            return [line for line in (head, line1, line2, postal) if line]
        if country in CITY_REGION_POSTCODE:
            place = ", ".join(p for p in (city, " ".join(p for p in (region, postal) if p)) if p)
        else:
            place = " ".join(p for p in (postal, city) if p)
        return [line for line in (line1, line2, place, name) if line]

