"""A flow's definition: its trigger, its graph of steps, the enrolment rule and the goal.

Definitions are stored as plain JSON (the GraphQL input's field names) and checked here, once,
when a flow is created or changed: every problem is a field error with its path
(``steps.2.next``), so a stored flow is always one the engine can run.

Steps are a list; ``next`` (and a condition's ``yes``) default to the following step, a
condition's ``no`` and the last step's ``next`` to the end of the flow. The graph may not loop:
every enrolment finishes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import errors as codes
from crm_graph.core.errors import ErrorCollector
from crm_graph.core.events import EVENT_TYPES, jsonable, known_pattern, matches
from crm_graph.core.filters import FilterError

TRIGGER_KINDS = ("EVENT", "SEGMENT_ENTERED", "SEGMENT_LEFT", "DATE", "INACTIVITY", "SCHEDULE")
STEP_TYPES = ("ACTION", "CONDITION", "WAIT", "WAIT_FOR_EVENT", "EXIT")
OPERATORS = ("EQ", "NE", "GT", "GTE", "LT", "LTE", "IN", "EXISTS")
WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
END = None  # a step's target when the flow ends there
MAX_STEPS = 100
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_time(value: str) -> time:
    hour, minute = value.split(":")
    return time(int(hour), int(minute))


def zone(name: str | None, default: str = "UTC") -> ZoneInfo:
    """The IANA time zone ``name``, or ``default`` when it is empty or unknown."""
    try:
        return ZoneInfo(name or default)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default)


def valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def duration(spec: Mapping[str, Any] | None) -> timedelta:
    spec = spec or {}
    return timedelta(days=spec.get("days") or 0, hours=spec.get("hours") or 0, minutes=spec.get("minutes") or 0)


def schedule_problem(value: Any) -> str | None:
    from dateutil.rrule import rrulestr

    if not isinstance(value, str) or not value.strip():
        return "An RFC 5545 recurrence rule, e.g. FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0."
    try:
        rule = rrulestr(value.strip(), dtstart=datetime(2026, 1, 1))
    except (ValueError, TypeError) as exc:
        return f"Not a recurrence rule: {exc}."
    if rule.after(datetime(2026, 1, 1)) is None:
        return "The rule has no occurrence."
    first, second = rule.after(datetime(2026, 1, 1), inc=True), None
    if first is not None:
        second = rule.after(first)
    if first is not None and second is not None and second - first < timedelta(hours=1):
        return "Occurrences must be at least an hour apart."
    return None


# --- payload conditions --------------------------------------------------------------------


def _lookup(data: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    value: Any = data
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _compare(op: str, actual: Any, expected: Any) -> bool:
    if op == "IN":
        return isinstance(expected, list) and any(_compare("EQ", actual, e) for e in expected)
    a, e = _number(actual), _number(expected)
    left, right = (a, e) if a is not None and e is not None else (actual, expected)
    try:
        return {
            "EQ": lambda: left == right, "NE": lambda: left != right,
            "GT": lambda: left > right, "GTE": lambda: left >= right,
            "LT": lambda: left < right, "LTE": lambda: left <= right,
        }[op]()
    except TypeError:
        return False


def event_matches(spec: Mapping[str, Any], event_type: str, data: Mapping[str, Any],
                  changes: Mapping[str, Any] | None) -> bool:
    """Whether an event of ``event_type`` with ``data`` fits ``spec`` (``eventType`` pattern and
    ``conditions``). Paths read the event's data; ``changes.<field>`` reads its changes."""
    if not matches(spec.get("eventType") or "", event_type):
        return False
    for cond in spec.get("conditions") or ():
        path = cond["path"]
        source: Mapping[str, Any] = data
        if path.startswith("changes."):
            source, path = (changes or {}), path[len("changes."):]
        found, actual = _lookup(source, path)
        if cond["op"] == "EXISTS":
            wanted = cond.get("value")
            if found != (True if wanted is None else bool(wanted)):  # no value: the path must be there
                return False
        elif not found or not _compare(cond["op"], actual, cond.get("value")):
            return False
    return True


# --- checking a definition -----------------------------------------------------------------


def _check_pattern(value: Any, field: str, errors: ErrorCollector) -> None:
    if not isinstance(value, str) or not value:
        errors.add(field, codes.REQUIRED, "An event type (e.g. order.paid or ticket.*) is required.")
    elif not known_pattern(value):
        errors.add(field, codes.INVALID_VALUE,
                   f"{value!r} matches no known event type (see docs/events.md; e.g. order.paid, ticket.*).")


def _check_conditions(value: Any, field: str, errors: ErrorCollector) -> list[dict[str, Any]]:
    out = []
    for i, cond in enumerate(value or ()):
        path, op = cond.get("path"), cond.get("op")
        if not isinstance(path, str) or not path.strip():
            errors.add(f"{field}.{i}.path", codes.REQUIRED, "A dotted path into the event's data, e.g. total.amount.")
            continue
        if op not in OPERATORS:
            errors.add(f"{field}.{i}.op", codes.INVALID_VALUE, f"One of {', '.join(OPERATORS)}.")
            continue
        if op == "IN" and not isinstance(cond.get("value"), list):
            errors.add(f"{field}.{i}.value", codes.INVALID_VALUE, "IN takes a list of values.")
            continue
        if op == "EXISTS" and cond.get("value") is not None and not isinstance(cond.get("value"), bool):
            errors.add(f"{field}.{i}.value", codes.INVALID_VALUE, "EXISTS takes true (the default) or false.")
            continue
        value = True if op == "EXISTS" and cond.get("value") is None else cond.get("value")
        out.append({"path": path.strip(), "op": op, "value": jsonable(value)})
    return out


def _check_time(value: Any, field: str, errors: ErrorCollector) -> None:
    if value is not None and (not isinstance(value, str) or not _TIME.match(value)):
        errors.add(field, codes.INVALID_VALUE, "A time of day as HH:MM (24 hours), e.g. 09:00.")


def _check_zone(value: Any, field: str, errors: ErrorCollector) -> None:
    if value is not None and (not isinstance(value, str) or not valid_zone(value)):
        errors.add(field, codes.INVALID_VALUE, f"{value!r} is not an IANA time zone (e.g. Europe/Berlin).")


def _check_duration(value: Any, field: str, errors: ErrorCollector, *, required: bool = True) -> None:
    if not value:
        if required:
            errors.add(field, codes.REQUIRED, "A duration ({days, hours, minutes}) is required.")
        return
    for part in ("days", "hours", "minutes"):
        n = value.get(part)
        if n is not None and (not isinstance(n, int) or n < 0 or n > 3660 * (1 if part == "days" else 24)):
            errors.add(f"{field}.{part}", codes.INVALID_VALUE, "A whole number, not negative.")
    if not duration(value) and not errors:
        errors.add(field, codes.INVALID_VALUE, "The duration is zero.")


async def _check_filter(session: AsyncSession, value: Any, field: str, errors: ErrorCollector) -> None:
    from crm_graph.customers.filters import build_condition

    if not value:
        return
    try:
        await build_condition(session, value)
    except FilterError as exc:
        errors.add(f"{field}.{exc.path}" if exc.path else field, "INVALID_FILTER", exc.reason)


async def _check_segment(session: AsyncSession, value: Any, field: str, errors: ErrorCollector) -> None:
    from crm_graph.segments.models import Segment

    segment = await session.get(Segment, value) if isinstance(value, int) else None
    if segment is None or segment.deleted_at is not None:
        errors.add(field, codes.NOT_FOUND, "The segment was not found.")


async def _check_trigger(session: AsyncSession, t: Mapping[str, Any] | None, errors: ErrorCollector) -> None:
    from crm_graph.customers.models import CustomFieldDefinition, CustomFieldType

    if not t:
        errors.add("trigger", codes.REQUIRED, "A flow needs a trigger.")
        return
    kind = t.get("kind")
    if kind not in TRIGGER_KINDS:
        errors.add("trigger.kind", codes.INVALID_VALUE, f"One of {', '.join(TRIGGER_KINDS)}.")
        return
    if kind == "EVENT":
        _check_pattern(t.get("eventType"), "trigger.eventType", errors)
        _check_conditions(t.get("conditions"), "trigger.conditions", errors)
    elif kind in ("SEGMENT_ENTERED", "SEGMENT_LEFT"):
        await _check_segment(session, t.get("segmentId"), "trigger.segmentId", errors)
    elif kind == "DATE":
        field = t.get("dateField") or "birthday"
        if field != "birthday":
            import sqlalchemy as sa

            definition = await session.scalar(sa.select(CustomFieldDefinition).where(CustomFieldDefinition.key == field))
            if definition is None or definition.type is not CustomFieldType.DATE:
                errors.add("trigger.dateField", codes.INVALID_VALUE,
                           "`birthday` or the key of a custom field of type DATE.")
        offset = t.get("offsetDays") or 0
        if not isinstance(offset, int) or abs(offset) > 366:
            errors.add("trigger.offsetDays", codes.INVALID_VALUE, "Days before (negative) or after the date, at most 366.")
        _check_time(t.get("atTime"), "trigger.atTime", errors)
    elif kind == "INACTIVITY":
        days = t.get("inactiveDays")
        if not isinstance(days, int) or not 1 <= days <= 3650:
            errors.add("trigger.inactiveDays", codes.INVALID_VALUE, "Days without a counted order, 1 to 3650.")
    elif kind == "SCHEDULE":
        problem = schedule_problem(t.get("schedule"))
        if problem:
            errors.add("trigger.schedule", codes.INVALID_VALUE, problem)
    _check_zone(t.get("timeZone"), "trigger.timeZone", errors)
    await _check_filter(session, t.get("audience"), "trigger.audience", errors)


def _target(raw: Mapping[str, Any], name: str, default: str | None) -> str | None:
    """A step's ``name`` target: absent is ``default``; ``END`` (or a stored null) ends the flow."""
    if name not in raw:
        return default
    value = raw[name]
    return None if value is None or value == "END" else value


def _targets(step: Mapping[str, Any]) -> list[tuple[str, Any]]:
    kind = step["type"]
    if kind == "CONDITION":
        return [("yes", step.get("yes")), ("no", step.get("no"))]
    if kind == "WAIT_FOR_EVENT":
        return [("next", step.get("next")), ("timedOut", step.get("timedOut"))]
    if kind == "EXIT":
        return []
    return [("next", step.get("next"))]


async def _check_steps(session: AsyncSession, steps: Any, actions: Mapping[str, Any], errors: ErrorCollector) -> list[dict[str, Any]]:
    if not steps:
        errors.add("steps", codes.REQUIRED, "A flow needs at least one step.")
        return []
    if len(steps) > MAX_STEPS:
        errors.add("steps", codes.TOO_MANY, f"At most {MAX_STEPS} steps.")
        return []
    keys = [s.get("key") for s in steps]
    out: list[dict[str, Any]] = []
    for i, raw in enumerate(steps):
        field = f"steps.{i}"
        key, kind = raw.get("key"), raw.get("type")
        if not isinstance(key, str) or not _KEY.match(key):
            errors.add(f"{field}.key", codes.INVALID_VALUE, "A key of letters, digits, - and _, starting with a letter (at most 64).")
        elif keys.count(key) > 1:
            errors.add(f"{field}.key", codes.DUPLICATE, f"Another step has the key {key!r}.")
        if kind not in STEP_TYPES:
            errors.add(f"{field}.type", codes.INVALID_VALUE, f"One of {', '.join(STEP_TYPES)}.")
            continue
        step: dict[str, Any] = {"key": key, "type": kind}
        following = keys[i + 1] if i + 1 < len(keys) else END
        if kind == "ACTION":
            name = raw.get("action")
            action = actions.get(name) if isinstance(name, str) else None
            if action is None:
                errors.add(f"{field}.action", codes.INVALID_VALUE,
                           f"Unknown action {name!r}; the actions are: {', '.join(sorted(actions))}.")
            else:
                params = raw.get("params") or {}
                if not isinstance(params, Mapping):
                    errors.add(f"{field}.params", codes.INVALID_VALUE, "An object of the action's parameters.")
                else:
                    problems = await action.validate(session, params)
                    errors.extend(problems, prefix=f"{field}.params")
                step.update(action=name, params=jsonable(dict(params)) if isinstance(params, Mapping) else {})
            step["next"] = _target(raw, "next", following)
        elif kind == "CONDITION":
            if not raw.get("condition"):
                errors.add(f"{field}.condition", codes.REQUIRED, "A condition step needs a CustomerFilter.")
            await _check_filter(session, raw.get("condition"), f"{field}.condition", errors)
            step.update(condition=jsonable(raw.get("condition")), yes=_target(raw, "yes", following), no=_target(raw, "no", END))
        elif kind == "WAIT":
            until_day, until_time = raw.get("untilWeekday"), raw.get("untilTime")
            if raw.get("wait"):
                _check_duration(raw.get("wait"), f"{field}.wait", errors)
            elif not until_day and not until_time:
                errors.add(f"{field}.wait", codes.REQUIRED, "A wait needs a duration or a weekday and/or time to wait until.")
            if until_day is not None and until_day not in WEEKDAYS:
                errors.add(f"{field}.untilWeekday", codes.INVALID_VALUE, f"One of {', '.join(WEEKDAYS)}.")
            _check_time(until_time, f"{field}.untilTime", errors)
            step.update(wait=raw.get("wait"), untilWeekday=until_day, untilTime=until_time, next=_target(raw, "next", following))
        elif kind == "WAIT_FOR_EVENT":
            _check_pattern(raw.get("eventType"), f"{field}.eventType", errors)
            _check_duration(raw.get("timeout"), f"{field}.timeout", errors)
            step.update(eventType=raw.get("eventType"),
                        conditions=_check_conditions(raw.get("conditions"), f"{field}.conditions", errors),
                        timeout=raw.get("timeout"), next=_target(raw, "next", following), timedOut=_target(raw, "timedOut", END))
        out.append(step)
    if errors:
        return out
    index = {s["key"]: s for s in out}
    for i, step in enumerate(out):
        for name, target in _targets(step):
            if target is not END and target not in index:
                errors.add(f"steps.{i}.{name}", codes.NOT_FOUND, f"No step has the key {target!r}.")
    if not errors:
        _check_acyclic(out, index, errors)
    return out


def _check_acyclic(steps: list[dict[str, Any]], index: Mapping[str, Any], errors: ErrorCollector) -> None:
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(key: str) -> bool:
        if state.get(key) == 2:
            return True
        if state.get(key) == 1:
            return False
        state[key] = 1
        for _, target in _targets(index[key]):
            if target is not END and not visit(target):
                return False
        state[key] = 2
        return True

    for i, step in enumerate(steps):
        if not visit(step["key"]):
            errors.add(f"steps.{i}", codes.INVALID_VALUE, "The steps go round in a loop; every path must reach an end.")
            return


async def _check_enrolment(session: AsyncSession, rule: Mapping[str, Any] | None, errors: ErrorCollector) -> dict[str, Any]:
    rule = dict(rule or {})
    again = rule.get("reenrolAfterDays")
    if again is not None and (not isinstance(again, int) or not 1 <= again <= 3650):
        errors.add("enrolmentRule.reenrolAfterDays", codes.INVALID_VALUE, "Days, 1 to 3650 (null: once per customer).")
    await _check_filter(session, rule.get("stayWhile"), "enrolmentRule.stayWhile", errors)
    for i, segment_id in enumerate(rule.get("suppressionSegmentIds") or ()):
        await _check_segment(session, segment_id, f"enrolmentRule.suppressionSegmentIds.{i}", errors)
    cap, days = rule.get("messageCap"), rule.get("messageCapDays")
    if cap is not None and (not isinstance(cap, int) or cap < 0):
        errors.add("enrolmentRule.messageCap", codes.INVALID_VALUE, "Messages per customer per period, 0 or more.")
    if cap is not None and (not isinstance(days, int) or not 1 <= days <= 365):
        errors.add("enrolmentRule.messageCapDays", codes.REQUIRED, "The cap's period in days, 1 to 365.")
    start, end = rule.get("quietHoursStart"), rule.get("quietHoursEnd")
    _check_time(start, "enrolmentRule.quietHoursStart", errors)
    _check_time(end, "enrolmentRule.quietHoursEnd", errors)
    if (start is None) != (end is None):
        errors.add("enrolmentRule.quietHoursEnd" if start else "enrolmentRule.quietHoursStart", codes.REQUIRED,
                   "Quiet hours need both a start and an end.")
    _check_zone(rule.get("timeZone"), "enrolmentRule.timeZone", errors)
    return jsonable(rule)


async def check_definition(session: AsyncSession, data: Mapping[str, Any], actions: Mapping[str, Any],
                           errors: ErrorCollector) -> dict[str, Any]:
    """The normalised definition of ``data`` (``trigger``, ``steps``, ``enrolment``, ``goal``),
    with every problem added to ``errors``."""
    await _check_trigger(session, data.get("trigger"), errors)
    steps = await _check_steps(session, data.get("steps"), actions, errors)
    enrolment = await _check_enrolment(session, data.get("enrolmentRule"), errors)
    goal = data.get("goal")
    if goal:
        _check_pattern(goal.get("eventType"), "goal.eventType", errors)
        goal = {"eventType": goal.get("eventType"), "conditions": _check_conditions(goal.get("conditions"), "goal.conditions", errors)}
    trigger = dict(data.get("trigger") or {})
    if trigger.get("kind") == "EVENT":
        trigger["conditions"] = _check_conditions(trigger.get("conditions"), "trigger.conditions", ErrorCollector())
    return {"trigger": jsonable({k: v for k, v in trigger.items() if v is not None}), "steps": steps,
            "enrolmentRule": enrolment, "goal": goal or None}


def known_event_types() -> list[str]:
    return sorted(EVENT_TYPES)
