"""Value transforms and file reading: names, dates, phones, tags, encodings, delimiters."""

from __future__ import annotations

from datetime import date

import pytest

from crm_graph.imports import mapping as m
from crm_graph.imports import parsing
from crm_graph.imports.models import ImportEntity


@pytest.mark.parametrize(("full", "first", "last"), [
    ("John Smith", "John", "Smith"),
    ("Smith, John", "John", "Smith"),
    ("  Ada   Lovelace ", "Ada", "Lovelace"),
    ("Madonna", None, "Madonna"),
    ("张伟", "伟", "张"),
    ("欧阳娜娜", "娜娜", "欧阳"),
    ("山田 太郎", "太郎", "山田"),
    ("김민준", "민준", "김"),
])
def test_split_name(full: str, first: str | None, last: str | None) -> None:
    assert m.split_name(full) == (first, last)


@pytest.mark.parametrize(("value", "day_first", "expected"), [
    ("2026-12-04", False, date(2026, 12, 4)),
    ("2026-12-04T10:30:00Z", False, date(2026, 12, 4)),
    ("2026/12/04", False, date(2026, 12, 4)),
    ("04.12.2026", False, date(2026, 12, 4)),
    ("12/04/2026", False, date(2026, 12, 4)),
    ("04/12/2026", True, date(2026, 12, 4)),
    ("2026年12月4日", False, date(2026, 12, 4)),
    (46360, False, date(2026, 12, 4)),  # an Excel serial date
    (46360.0, False, date(2026, 12, 4)),
])
def test_parse_date(value: object, day_first: bool, expected: date) -> None:
    assert m.parse_date(value, day_first=day_first) == expected


@pytest.mark.parametrize("value", ["31.02.2026", "yesterday", "13/13/2026", "2026-13-01"])
def test_bad_dates_are_errors(value: str) -> None:
    with pytest.raises(m.Bad) as exc:
        m.parse_date(value)
    assert exc.value.code == "INVALID_VALUE"


def test_row_transforms_use_the_row_country_for_phones_and_split_tags() -> None:
    spec = m.parse_spec(ImportEntity.CUSTOMER, {
        "columns": [
            {"source": "Name", "target": "fullName"}, {"source": "Phone", "target": "phone"},
            {"source": "Country", "target": "country"}, {"source": "Tags", "target": "tags", "separator": "/"},
            {"target": "source", "constant": "referral"}, {"source": "Mail", "target": "email"},
        ],
        "options": {"phoneRegion": "DE"},
    })
    m.bind(spec, ["name", "Phone", "Country", "Tags", "Mail"])
    values, errors = m.apply(spec, [" 张伟 ", "138 0013 8000", "cn", "VIP / Beijing ", " Zhang.Wei@Example.COM "], default_region="US")
    assert errors == []
    assert values["firstName"] == "伟" and values["lastName"] == "张"
    assert values["phone"] == "+8613800138000"
    assert values["country"] == "CN"
    assert values["tags"] == ["vip", "beijing"]
    assert values["source"].name == "REFERRAL"
    assert values["email"] == "zhang.wei@example.com"
    # Without a country the mapping's region applies.
    values, errors = m.apply(spec, ["Max Mustermann", "030 1234567", "", "", "max@example.de"], default_region="US")
    assert values["phone"] == "+49301234567" and errors == []
    values, errors = m.apply(spec, ["Max", "12", "", "", "not-an-email"], default_region="US")
    assert {(e.field, e.code) for e in errors} == {("phone", "INVALID_PHONE"), ("email", "INVALID_EMAIL")}


def test_mapping_errors_name_the_field() -> None:
    with pytest.raises(m.MappingInvalid) as exc:
        m.parse_spec(ImportEntity.CUSTOMER, {"columns": [{"source": "A", "target": "shoeSize"}]})
    assert exc.value.field == "mapping.columns.0.target"
    spec = m.parse_spec(ImportEntity.CUSTOMER, {"columns": [{"source": "Missing", "target": "email"}]})
    with pytest.raises(m.MappingInvalid) as exc:
        m.bind(spec, ["Email"])
    assert exc.value.code == "NOT_FOUND"


CHINESE = "姓名,公司,城市\n张伟,华为技术有限公司,深圳\n李娜,阿里巴巴,杭州\n"
LATIN = "Name;Firma;Stadt\nJürgen Müller;Bäckerei Groß;München\nFrançoise Lefèvre;Crème Brûlée SARL;Orléans\n"


@pytest.mark.parametrize(("text", "encoding", "expected"), [
    (CHINESE, "gb18030", "gb18030"),
    (CHINESE, "gbk", "gb18030"),
    ("姓名\n张伟\n", "gb18030", "gb18030"),  # a very short file
    (LATIN, "latin-1", "cp1252"),
    (LATIN, "cp1252", "cp1252"),
    ("Name\nMÜLLER\n", "latin-1", "cp1252"),
    ("Name\nJosé\n", "latin-1", "cp1252"),
    (CHINESE, "utf-8", "utf-8"),
    (CHINESE, "utf-8-sig", "utf-8-sig"),
])
def test_detect_encoding(text: str, encoding: str, expected: str) -> None:
    content = text.encode(encoding)
    assert parsing.detect_encoding(content) == expected
    sheet = parsing.read_csv(content)
    assert [sheet.header, *sheet.rows] == [line.split("," if "," in text else ";") for line in text.strip().splitlines()]


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiter_sniffing(delimiter: str) -> None:
    text = delimiter.join(["id", "name", "city"]) + "\n" + delimiter.join(["1", "Ann", "Paris"]) + "\n"
    sheet = parsing.read_csv(text.encode())
    assert sheet.delimiter == delimiter and sheet.header == ["id", "name", "city"] and list(sheet.rows) == [["1", "Ann", "Paris"]]
