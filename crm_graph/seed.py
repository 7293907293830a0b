"""Demo data: a few hundred realistic customers with contacts, tags, consent and timelines,
and on top of them products, pipelines, deals, quotes, a year of orders, support tickets with
service levels and ratings, segments of every kind and a first RFM run.

Deterministic (fixed random seed) and idempotent: every demo customer carries the external
reference ``demo/<n>``, and customers that exist already are skipped. Everything goes through
the service layer, so the demo data obeys the same rules as data entered through the API.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import phonenumbers
import sqlalchemy as sa

from crm_graph.activities import service as activities
from crm_graph.core.actor import SYSTEM
from crm_graph.core.clock import frozen_clock, utcnow
from crm_graph.customers import service as customers
from crm_graph.customers.models import Customer
from crm_graph.db.session import Database
from crm_graph.loyalty.seed_loyalty import seed_loyalty
from crm_graph.sales.seed_sales import seed_sales
from crm_graph.segments.seed_segments import seed_segments
from crm_graph.support.seed_support import seed_support
from crm_graph.settings import Settings

DEMO_SYSTEM = "demo"

PEOPLE = {
    "US": (["James", "Mary", "Robert", "Patricia", "Michael", "Jennifer", "David", "Linda", "Ashley", "Daniel"],
           ["Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Garcia", "Wilson", "Moore"],
           ["New York", "Chicago", "Austin", "Seattle", "Denver"], "en-US"),
    "GB": (["Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Emily", "Charlie", "Sophie"],
           ["Taylor", "Evans", "Thomas", "Roberts", "Walker", "Wright", "Hughes", "Green", "Hall", "Wood"],
           ["London", "Manchester", "Leeds", "Bristol", "Edinburgh"], "en-GB"),
    "DE": (["Lukas", "Anna", "Felix", "Lena", "Jonas", "Mia", "Paul", "Hannah", "Leon", "Lea"],
           ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann", "Koch"],
           ["Berlin", "Hamburg", "München", "Köln", "Leipzig"], "de-DE"),
    "FR": (["Lucas", "Emma", "Hugo", "Chloé", "Louis", "Inès", "Jules", "Léa", "Arthur", "Manon"],
           ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau"],
           ["Paris", "Lyon", "Marseille", "Toulouse", "Nantes"], "fr-FR"),
    "JP": (["Haruto", "Yui", "Sota", "Hina", "Yuto", "Aoi", "Ren", "Sakura", "Riku", "Mei"],
           ["Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura", "Kobayashi", "Kato"],
           ["Tokyo", "Osaka", "Kyoto", "Nagoya", "Sapporo"], "ja-JP"),
    "BR": (["Miguel", "Alice", "Arthur", "Sophia", "Heitor", "Laura", "Bernardo", "Valentina", "Davi", "Helena"],
           ["Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima", "Gomes"],
           ["São Paulo", "Rio de Janeiro", "Belo Horizonte", "Curitiba", "Recife"], "pt-BR"),
    "IN": (["Aarav", "Ananya", "Vivaan", "Diya", "Aditya", "Isha", "Arjun", "Saanvi", "Reyansh", "Myra"],
           ["Sharma", "Verma", "Gupta", "Patel", "Reddy", "Iyer", "Singh", "Nair", "Mehta", "Kapoor"],
           ["Mumbai", "Bengaluru", "Delhi", "Pune", "Chennai"], "en-IN"),
    "ES": (["Hugo", "Lucía", "Martín", "Sofía", "Pablo", "Martina", "Daniel", "María", "Alejandro", "Paula"],
           ["García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez", "Gómez", "Ruiz"],
           ["Madrid", "Barcelona", "Valencia", "Sevilla", "Bilbao"], "es-ES"),
}
ORG_WORDS = (["Acme", "Northwind", "Blue Harbor", "Evergreen", "Summit", "Pioneer", "Atlas", "Lumen", "Cedar",
              "Orbit", "Keystone", "Silverline", "Redwood", "Helix", "Meridian"],
             ["Trading", "Foods", "Logistics", "Systems", "Retail", "Health", "Media", "Energy", "Textiles", "Labs"],
             ["Ltd", "GmbH", "Inc", "SA", "KK", "Ltda", "Pvt Ltd", "SL"])
INDUSTRIES = ["Retail", "Manufacturing", "Healthcare", "Software", "Logistics", "Hospitality", "Education"]
INCOME_BANDS = ["LOW", "MIDDLE", "UPPER_MIDDLE", "HIGH"]
TAGS = ["vip", "newsletter", "wholesale", "b2b", "retail", "beta-tester", "partner", "eco", "early-adopter", "price-sensitive"]
STAGES = ["LEAD", "EXPLORATION", "FORMATION", "STABILITY", "STABILITY", "DECLINE", "CHURNED"]
SOURCES = ["WEB", "APP", "PHONE", "IN_STORE", "SOCIAL", "REFERRAL", "IMPORT", "API"]
CONSENT = ["UNKNOWN", "OPTED_IN", "OPTED_IN", "OPTED_OUT"]
SUBJECTS = {
    "NOTE": ["Prefers email over phone", "Asked about volume discounts", "Met at the trade fair", "Budget review in Q3"],
    "CALL": ["Intro call", "Follow-up on proposal", "Support question about invoice", "Renewal discussion"],
    "MEETING": ["Product demo", "Quarterly business review", "On-site visit", "Contract negotiation"],
    "EMAIL": ["Sent price list", "Welcome email", "Replied to complaint", "Shared case study"],
    "TASK": ["Send revised quote", "Call back about delivery", "Prepare renewal offer", "Check payment status"],
}
ASSIGNEES = ["alex@example.com", "sam@example.com", "kim@example.com"]

CUSTOM_FIELDS = [
    {"key": "industry", "label": "Industry", "type": "SELECT", "options": INDUSTRIES},
    {"key": "employees", "label": "Employees", "type": "NUMBER"},
    {"key": "incomeBand", "label": "Income band", "type": "SELECT", "options": INCOME_BANDS},
    {"key": "interests", "label": "Interests", "type": "TEXT"},
    {"key": "memberSince", "label": "Loyalty member since", "type": "DATE"},
]


def _phone(rng: random.Random, country: str) -> str:
    example = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
    national = str(example.national_number)
    for _ in range(20):
        candidate = national[:-4] + f"{rng.randrange(10000):04d}"
        number = phonenumbers.parse(f"+{example.country_code}{candidate}")
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)


def _ascii(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().replace(" ", "")


def _plan(count: int, now: datetime) -> list[dict[str, Any]]:
    """The demo customers as API inputs; organizations first so people can refer to them."""
    rng = random.Random(20261122)
    countries = list(PEOPLE)
    n_orgs = max(1, count // 6)
    plans: list[dict[str, Any]] = []
    for i in range(count):
        country = rng.choice(countries)
        firsts, lasts, cities, locale = PEOPLE[country]
        created = now - timedelta(days=rng.randint(0, 720), minutes=rng.randint(0, 1440))
        plan: dict[str, Any] = {
            "externalRef": {"system": DEMO_SYSTEM, "externalId": f"{i + 1:04d}"},
            "country": country,
            "city": rng.choice(cities),
            "locale": locale,
            "source": rng.choice(SOURCES),
            "lifecycleStage": rng.choice(STAGES),
            "tags": rng.sample(TAGS, rng.randint(0, 3)),
            "_created": created,
        }
        consent = rng.choice(CONSENT)
        if consent != "UNKNOWN":
            plan["emailConsent"] = {"status": consent, "source": rng.choice(["signup form", "checkout", "event"]),
                                    "at": created}
        if i < n_orgs:
            name = f"{rng.choice(ORG_WORDS[0])} {rng.choice(ORG_WORDS[1])} {rng.choice(ORG_WORDS[2])}"
            domain = f"{_ascii(name.rsplit(' ', 1)[0])}{i + 1}.example"
            plan.update(kind="ORGANIZATION", organizationName=name,
                        emails=[{"address": f"info@{domain}", "label": "work"}],
                        phones=[{"number": _phone(rng, country), "label": "office"}],
                        addresses=[{"line1": f"{rng.randint(1, 250)} Market Street", "postalCode": f"{rng.randint(10000, 99999)}",
                                    "city": plan["city"], "country": country, "label": "billing"}],
                        customFields={"industry": rng.choice(INDUSTRIES), "employees": rng.choice([8, 25, 60, 240, 1200])})
            plan["_domain"] = domain
        else:
            first, last = rng.choice(firsts), rng.choice(lasts)
            plan.update(kind="PERSON", firstName=first, lastName=last,
                        gender=rng.choice(["FEMALE", "MALE", "NON_BINARY", "UNDISCLOSED"]),
                        birthday=date(rng.randint(1950, 2004), rng.randint(1, 12), rng.randint(1, 28)),
                        phones=[{"number": _phone(rng, country), "label": "mobile"}])
            employer = rng.randrange(n_orgs) if rng.random() < 0.35 else None
            domain = plans[employer]["_domain"] if employer is not None else rng.choice(["mail.example", "post.example", "inbox.example"])
            plan["emails"] = [{"address": f"{_ascii(first)}.{_ascii(last)}{i + 1}@{domain}", "label": "work" if employer is not None else "home"}]
            if employer is not None:
                plan["_employer"] = employer
                plan["jobTitle"] = rng.choice(["Buyer", "Head of Purchasing", "CFO", "Office Manager", "CTO", "Owner"])
            custom: dict[str, Any] = {"incomeBand": rng.choice(INCOME_BANDS)}
            if rng.random() < 0.5:
                custom["interests"] = ", ".join(rng.sample(["cycling", "cooking", "travel", "gaming", "gardening", "music"], 2))
            if rng.random() < 0.3:
                custom["memberSince"] = (created + timedelta(days=rng.randint(0, 60))).date().isoformat()
            plan["customFields"] = custom
        plan["_activities"] = [_activity(rng, created, now) for _ in range(rng.randint(0, 6))]
        plans.append(plan)
    return plans


def _activity(rng: random.Random, created: datetime, now: datetime) -> dict[str, Any]:
    kind = rng.choice(list(SUBJECTS))
    span = max(1, int((now - created).total_seconds() // 60))
    at = created + timedelta(minutes=rng.randint(0, span))
    data: dict[str, Any] = {"type": kind, "subject": rng.choice(SUBJECTS[kind]), "occurredAt": at}
    if kind in ("CALL", "EMAIL"):
        data["direction"] = rng.choice(["INBOUND", "OUTBOUND"])
    if kind in ("CALL", "MEETING"):
        data["durationMinutes"] = rng.choice([5, 15, 30, 45, 60])
    if kind == "TASK":
        data["dueAt"] = at + timedelta(days=rng.randint(1, 21))
        data["assignee"] = rng.choice(ASSIGNEES)
        data["_done"] = data["dueAt"] < now and rng.random() < 0.7
    return data


async def seed_demo(settings: Settings, *, count: int = 300, only_demo_data: bool = False) -> int | None:
    """Create the demo data that does not exist yet; returns how many customers were created.

    With ``only_demo_data`` (what ``serve --seed-demo`` uses), a database holding customers of its
    own is left alone (None is returned): demo records are never mixed into real data. A
    database of demo data only is completed, e.g. with the parts a newer version adds.
    """
    db = Database.from_settings(settings)
    try:
        async with db.reader() as session:
            own = await session.scalar(
                sa.select(sa.func.count()).select_from(Customer).where(
                    sa.or_(Customer.external_system.is_(None), Customer.external_system != DEMO_SYSTEM)
                )
            )
            existing = set(
                await session.scalars(sa.select(Customer.external_id).where(Customer.external_system == DEMO_SYSTEM))
            )
        if only_demo_data and own:
            return None
        config = customers.ServiceConfig(default_phone_region=settings.default_phone_region)
        now = utcnow()
        created = 0
        ids: dict[int, int] = {}
        async with db.writer() as session, session.begin():
            definitions = await customers.custom_field_definitions(session)
            for field in CUSTOM_FIELDS:
                if field["key"] not in definitions:
                    await customers.create_custom_field_definition(session, actor=SYSTEM, data=field)
            for index, plan in enumerate(_plan(count, now)):
                data = {k: v for k, v in plan.items() if not k.startswith("_")}
                if "_employer" in plan and plan["_employer"] in ids:
                    data["organizationId"] = ids[plan["_employer"]]
                is_new = data["externalRef"]["externalId"] not in existing
                with frozen_clock(plan["_created"]):
                    customer = await customers.create_customer(session, actor=SYSTEM, data=data, config=config)
                ids[index] = customer.id
                if not is_new:
                    continue
                created += 1
                for activity in plan["_activities"]:
                    done = activity.pop("_done", False)
                    with frozen_clock(activity["occurredAt"]):
                        logged = await activities.log_activity(
                            session, actor=SYSTEM, data={**activity, "customerId": customer.id}
                        )
                    if done:
                        with frozen_clock(min(activity["dueAt"], now)):
                            await activities.complete_task(session, actor=SYSTEM, activity_id=logged.id)
            # Sales, support and segments on top of the customers; each skips what exists.
            customer_ids = list(ids.values())
            await seed_sales(session, now=now, customer_ids=customer_ids)
            # One ticket per demo customer (300 with the default demo): a small demo stays fast.
            await seed_support(session, now=now, customer_ids=customer_ids, count=count)
            with frozen_clock(now):
                await seed_segments(session, customer_ids=customer_ids)
                await seed_loyalty(session)
        return created
    finally:
        await db.dispose()


__all__ = ["seed_demo", "DEMO_SYSTEM", "UTC"]
