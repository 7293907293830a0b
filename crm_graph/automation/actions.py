"""The built-in actions of automation flows (``crm_automation_actions``; the contract is
crm_graph/core/automation.py). Each goes through the domain's own service, as the system, so the
same rules and events apply as to a change made through the API."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any

import sqlalchemy as sa

from crm_graph.core import errors as codes
from crm_graph.core.actor import SYSTEM
from crm_graph.core.automation import ActionContext, ActionError
from crm_graph.core.errors import DomainError, FieldError

AUTOMATION = SYSTEM  # actions act as the system; the step log says which flow did what


def _problem(field: str | None, message: str, code: str = codes.INVALID_VALUE) -> FieldError:
    return FieldError(field, code, message)


def _text(params: Mapping[str, Any], name: str, *, required: bool, limit: int) -> list[FieldError]:
    value = params.get(name)
    if value is None or value == "":
        return [_problem(name, f"`{name}` is required.", codes.REQUIRED)] if required else []
    if not isinstance(value, str) or len(value) > limit:
        return [_problem(name, f"A text of at most {limit} characters.")]
    return []


def _domain_message(exc: DomainError) -> str:
    return "; ".join(f"{e.field}: {e.message}" if e.field else e.message for e in exc.errors)[:900]


@contextmanager
def domain_refusal() -> Iterator[None]:
    """A domain service's refusal (a validation error, a record gone) as the step's failure:
    the same input would be refused again, so it is not retried."""
    try:
        yield
    except DomainError as exc:
        raise ActionError(_domain_message(exc), retry=False) from None


# --- templates -------------------------------------------------------------------------------

_ENV: Any = None


def _environment() -> Any:
    global _ENV
    if _ENV is None:
        from jinja2 import StrictUndefined
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        _ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    return _ENV


def template_problem(source: str) -> str | None:
    from jinja2 import TemplateSyntaxError

    try:
        _environment().from_string(source)
    except TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    return None


def render(source: str, variables: Mapping[str, Any]) -> str:
    from jinja2.exceptions import SecurityError, TemplateError

    try:
        return _environment().from_string(source).render(**variables)
    except SecurityError as exc:
        raise ActionError(f"the template does something not allowed: {exc}", retry=False) from None
    except TemplateError as exc:
        raise ActionError(f"the template cannot be rendered: {exc}", retry=False) from None


def template_variables(ctx: ActionContext) -> dict[str, Any]:
    c = ctx.customer
    return {"customer": {"id": c.get("id"), "display_name": c.get("displayName"), "first_name": c.get("firstName"),
                         "last_name": c.get("lastName"), "email": c.get("email"), "city": c.get("city"),
                         "country": c.get("country"), "locale": c.get("locale")},
            "results": ctx.results, "trigger": ctx.trigger}


# --- send_email --------------------------------------------------------------------------------


class SendEmail:
    name = "send_email"
    description = ("Mail the customer at their primary address: `subject` and `text` (and optional `html`) are "
                   "Jinja2 templates over `customer`, `results` (earlier steps' results, e.g. "
                   "`results.coupon.code`) and `trigger`. Not sent to customers who opted out of email.")
    external = True
    message = True

    async def validate(self, session: Any, params: Mapping[str, Any]) -> Sequence[FieldError]:
        problems = _text(params, "subject", required=True, limit=500) + _text(params, "text", required=True, limit=100_000) \
            + _text(params, "html", required=False, limit=500_000) + _text(params, "fromAddress", required=False, limit=320)
        for name in ("subject", "text", "html"):
            if not any(p.field == name for p in problems) and isinstance(params.get(name), str):
                problem = template_problem(params[name])
                if problem:
                    problems.append(_problem(name, problem))
        return problems

    async def run(self, ctx: ActionContext) -> Mapping[str, Any]:
        from crm_graph.automation.config import automation_settings
        from crm_graph.core.mail import MailError, OutgoingMail
        from crm_graph.mail.config import mail_settings
        from crm_graph.mail.transports import transports_of

        address = ctx.customer.get("email")
        if not address:
            raise ActionError("the customer has no e-mail address", retry=False, skip=True)
        if (ctx.customer.get("emailConsent") or {}).get("status") == "OPTED_OUT":
            raise ActionError("the customer opted out of email", retry=False, skip=True)
        variables = template_variables(ctx)
        subject = " ".join(render(ctx.params["subject"], variables).split())
        text = render(ctx.params["text"], variables)
        mail = mail_settings()
        sender = ctx.params.get("fromAddress") or mail.mail_from
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = sender, address, subject
        msg["Date"] = formatdate(localtime=False)
        domain = (parseaddr(sender)[1].rpartition("@")[2] or "localhost")
        msg["Message-ID"] = make_msgid(idstring=f"crm.flow.{ctx.flow_id}.{ctx.enrolment_id}.{ctx.step_key}", domain=domain)
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(text)
        if ctx.params.get("html"):
            msg.add_alternative(render(ctx.params["html"], {**variables}), subtype="html")
        name = automation_settings().transport
        transport = transports_of(ctx.plugins).get(name)
        if transport is None:
            raise ActionError(f"no mail transport {name!r} (CRM_AUTOMATION_TRANSPORT)", retry=False)
        envelope = parseaddr(sender)[1] or sender
        try:
            session = await transport.open(mail.transport_config())
            try:
                answer = await session.send(OutgoingMail(content=msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")),
                                                         envelope_from=envelope, recipients=[address],
                                                         message_id=str(msg["Message-ID"])))
            finally:
                await session.aclose()
        except MailError as exc:
            raise ActionError(exc.message, retry=not exc.permanent and not exc.accepted_maybe) from None
        return {"to": address, "subject": subject, "messageId": str(msg["Message-ID"]), "answer": answer[:200]}

    def describe(self, params: Mapping[str, Any], customer: Mapping[str, Any]) -> str:
        if not customer.get("email"):
            return "would skip the mail: the customer has no e-mail address"
        if (customer.get("emailConsent") or {}).get("status") == "OPTED_OUT":
            return "would skip the mail: the customer opted out of email"
        return f"would mail {customer['email']} the message {params.get('subject')!r}"


# --- create_task -------------------------------------------------------------------------------


class CreateTask:
    name = "create_task"
    description = ("Create a task on the customer for their owner (`assignTo: OWNER`, the default) or the next "
                   "member of a team in turn (`assignTo: TEAM`, `teamId`): `subject`, optional `body`, due in "
                   "`dueInDays` (default 1).")
    external = False
    message = False

    async def validate(self, session: Any, params: Mapping[str, Any]) -> Sequence[FieldError]:
        from crm_graph.auth.models import Team

        problems = _text(params, "subject", required=True, limit=300) + _text(params, "body", required=False, limit=100_000)
        assign = params.get("assignTo", "OWNER")
        if assign not in ("OWNER", "TEAM"):
            problems.append(_problem("assignTo", "OWNER or TEAM."))
        elif assign == "TEAM":
            team = params.get("teamId")
            if not isinstance(team, int) or await session.get(Team, team) is None:
                problems.append(_problem("teamId", "The team was not found.", codes.NOT_FOUND))
        due = params.get("dueInDays", 1)
        if not isinstance(due, int) or not 0 <= due <= 365:
            problems.append(_problem("dueInDays", "Days, 0 to 365."))
        return problems

    async def _assignee(self, ctx: ActionContext) -> str | None:
        from crm_graph.activities.models import Activity, ActivityType
        from crm_graph.auth.models import User
        from crm_graph.customers.models import Customer

        session = ctx.session
        if ctx.params.get("assignTo", "OWNER") == "OWNER":
            owner = await session.scalar(sa.select(User).join(Customer, Customer.owner_id == User.id)
                                         .where(Customer.id == ctx.customer_id))
            return owner.email if owner is not None and owner.active else None
        members = list(await session.scalars(
            sa.select(User.email).where(User.team_id == ctx.params["teamId"], User.active.is_(True)).order_by(User.id)))
        if not members:
            return None
        # Round robin: the member who was given the fewest tasks so far, first in the team's order.
        counts = dict((await session.execute(
            sa.select(Activity.assignee, sa.func.count()).where(Activity.type == ActivityType.TASK,
                                                               Activity.assignee.in_(members))
            .group_by(Activity.assignee))).all())
        return min(members, key=lambda m: (counts.get(m, 0), members.index(m)))

    async def run(self, ctx: ActionContext) -> Mapping[str, Any]:
        from crm_graph.activities import service as activities

        assignee = await self._assignee(ctx)
        variables = template_variables(ctx)
        with domain_refusal():
            task = await activities.log_activity(ctx.session, actor=AUTOMATION, data={
                "customerId": ctx.customer_id, "type": "TASK", "subject": render(ctx.params["subject"], variables)[:300],
                "body": render(ctx.params["body"], variables) if ctx.params.get("body") else None,
                "dueAt": ctx.now + timedelta(days=ctx.params.get("dueInDays", 1)), "assignee": assignee})
        return {"activityId": task.id, "assignee": assignee}

    def describe(self, params: Mapping[str, Any], customer: Mapping[str, Any]) -> str:
        who = "the customer's owner" if params.get("assignTo", "OWNER") == "OWNER" else f"the next member of team {params.get('teamId')}"
        return f"would create the task {params.get('subject')!r} for {who}"


# --- update_customer ---------------------------------------------------------------------------


class UpdateCustomer:
    name = "update_customer"
    description = ("Change the customer: `lifecycleStage`, `addTags`, `removeTags`, `customFields` "
                   "(`{key: value}`), through the same rules as updateCustomer.")
    external = False
    message = False

    async def validate(self, session: Any, params: Mapping[str, Any]) -> Sequence[FieldError]:
        from crm_graph.customers.models import LifecycleStage

        problems = []
        if not any(params.get(k) for k in ("lifecycleStage", "addTags", "removeTags", "customFields")):
            problems.append(_problem(None, "Say what to change: lifecycleStage, addTags, removeTags or customFields.", codes.REQUIRED))
        stage = params.get("lifecycleStage")
        if stage is not None and stage not in LifecycleStage.__members__:
            problems.append(_problem("lifecycleStage", f"One of {', '.join(LifecycleStage.__members__)}."))
        for name in ("addTags", "removeTags"):
            value = params.get(name)
            if value is not None and (not isinstance(value, list) or not all(isinstance(t, str) and t for t in value)):
                problems.append(_problem(name, "A list of tags."))
        if params.get("customFields") is not None and not isinstance(params.get("customFields"), Mapping):
            problems.append(_problem("customFields", "An object of custom field keys and values."))
        return problems

    async def run(self, ctx: ActionContext) -> Mapping[str, Any]:
        from crm_graph.customers import service as customers

        p, data = ctx.params, {}
        if p.get("lifecycleStage"):
            data["lifecycleStage"] = p["lifecycleStage"]
        if p.get("addTags") or p.get("removeTags"):
            tags = set((await customers.tags_for(ctx.session, [ctx.customer_id])).get(ctx.customer_id, []))
            data["tags"] = sorted((tags | set(p.get("addTags") or ())) - set(p.get("removeTags") or ()))
        if p.get("customFields"):
            data["customFields"] = [{"key": k, "value": v} for k, v in p["customFields"].items()]
        with domain_refusal():
            customer = await customers.update_customer(
                ctx.session, actor=AUTOMATION, customer_id=ctx.customer_id, data=data, expected_version=None,
                config=customers.ServiceConfig(default_phone_region=ctx.settings.default_phone_region))
        return {"version": customer.version}

    def describe(self, params: Mapping[str, Any], customer: Mapping[str, Any]) -> str:
        parts = []
        if params.get("lifecycleStage"):
            parts.append(f"set the lifecycle stage to {params['lifecycleStage']}")
        if params.get("addTags"):
            parts.append(f"add the tags {', '.join(params['addTags'])}")
        if params.get("removeTags"):
            parts.append(f"remove the tags {', '.join(params['removeTags'])}")
        if params.get("customFields"):
            parts.append(f"set {', '.join(params['customFields'])}")
        return "would " + " and ".join(parts)


# --- segments ----------------------------------------------------------------------------------


class SegmentMembership:
    external = False
    message = False

    def __init__(self, name: str, add: bool) -> None:
        self.name, self.add = name, add
        self.description = f"{'Add the customer to' if add else 'Remove the customer from'} the STATIC segment `segmentId`."

    async def validate(self, session: Any, params: Mapping[str, Any]) -> Sequence[FieldError]:
        from crm_graph.segments.models import Segment, SegmentKind

        segment = await session.get(Segment, params.get("segmentId")) if isinstance(params.get("segmentId"), int) else None
        if segment is None or segment.deleted_at is not None:
            return [_problem("segmentId", "The segment was not found.", codes.NOT_FOUND)]
        if segment.kind is not SegmentKind.STATIC:
            return [_problem("segmentId", "Only STATIC segments take members by hand.")]
        return []

    async def run(self, ctx: ActionContext) -> Mapping[str, Any]:
        from crm_graph.segments import service as segments

        change = segments.add_customers if self.add else segments.remove_customers
        with domain_refusal():
            await change(ctx.session, actor=AUTOMATION, segment_id=ctx.params["segmentId"], customer_ids=[ctx.customer_id])
        return {"segmentId": ctx.params["segmentId"]}

    def describe(self, params: Mapping[str, Any], customer: Mapping[str, Any]) -> str:
        return f"would {'add the customer to' if self.add else 'remove the customer from'} segment {params.get('segmentId')}"


# --- create_opportunity ------------------------------------------------------------------------


class CreateOpportunity:
    name = "create_opportunity"
    description = "Open an opportunity for the customer: `title` (a template), optional `pipelineId`, `amount`, `currency`."
    external = False
    message = False

    async def validate(self, session: Any, params: Mapping[str, Any]) -> Sequence[FieldError]:
        problems = _text(params, "title", required=True, limit=300)
        if params.get("amount") is not None:
            try:
                if Decimal(str(params["amount"])) < 0:
                    raise InvalidOperation
            except (InvalidOperation, ValueError):
                problems.append(_problem("amount", "An amount, not negative."))
        return problems

    async def run(self, ctx: ActionContext) -> Mapping[str, Any]:
        from crm_graph.sales.service import opportunities

        data: dict[str, Any] = {"customerId": ctx.customer_id, "title": render(ctx.params["title"], template_variables(ctx))[:300]}
        for key in ("pipelineId", "currency"):
            if ctx.params.get(key) is not None:
                data[key] = ctx.params[key]
        if ctx.params.get("amount") is not None:
            data["amount"] = Decimal(str(ctx.params["amount"]))
        with domain_refusal():
            opportunity = await opportunities.create_opportunity(ctx.session, actor=AUTOMATION, data=data)
        return {"opportunityId": opportunity.id}

    def describe(self, params: Mapping[str, Any], customer: Mapping[str, Any]) -> str:
        return f"would open the opportunity {params.get('title')!r}"


# --- loyalty -----------------------------------------------------------------------------------


class Points:
    external = False
    message = False

    def __init__(self, name: str, award: bool) -> None:
        self.name, self.award = name, award
        self.description = (f"{'Award the customer' if award else 'Take from the customer'} `points` loyalty points "
                            "(once per enrolment and step: the ledger entry's idempotency key is the step's), with a `reason`.")

    async def validate(self, session: Any, params: Mapping[str, Any]) -> Sequence[FieldError]:
        points = params.get("points")
        problems = [] if isinstance(points, int) and 0 < points <= 10_000_000 else [_problem("points", "Points, 1 to 10,000,000.")]
        return problems + _text(params, "reason", required=False, limit=500)

    async def run(self, ctx: ActionContext) -> Mapping[str, Any]:
        from crm_graph.loyalty import service as loyalty

        reason = ctx.params.get("reason") or f"automation flow {ctx.flow_id}"
        with domain_refusal():
            if self.award:
                entry = await loyalty.earn_points(ctx.session, actor=AUTOMATION, customer_id=ctx.customer_id,
                                                  points=ctx.params["points"], idempotency_key=ctx.idempotency_key,
                                                  source=f"automation:{ctx.flow_id}", reason=reason)
            else:
                entry = await loyalty.adjust_points(ctx.session, actor=AUTOMATION, customer_id=ctx.customer_id,
                                                    points=-ctx.params["points"], idempotency_key=ctx.idempotency_key,
                                                    reason=reason, source=f"automation:{ctx.flow_id}")
        return {"entryId": entry.id, "points": ctx.params["points"] if self.award else -ctx.params["points"]}

    def describe(self, params: Mapping[str, Any], customer: Mapping[str, Any]) -> str:
        return f"would {'award' if self.award else 'take'} {params.get('points')} points"


class IssueCoupon:
    name = "issue_coupon"
    description = ("Issue the customer a single-use coupon: `percentOff` or `amountOff` with `currency`, valid "
                   "`validDays` (default 30), codes starting with `prefix`. Later mails name it as "
                   "`results.<step key>.code`.")
    external = False
    message = False

    async def validate(self, session: Any, params: Mapping[str, Any]) -> Sequence[FieldError]:
        problems = []
        percent, amount = params.get("percentOff"), params.get("amountOff")
        if (percent is None) == (amount is None):
            problems.append(_problem("percentOff", "Give percentOff or amountOff (with currency).", codes.REQUIRED))
        for name, value in (("percentOff", percent), ("amountOff", amount)):
            if value is not None:
                try:
                    number = Decimal(str(value))
                    if number <= 0 or (name == "percentOff" and number > 100):
                        raise InvalidOperation
                except (InvalidOperation, ValueError):
                    problems.append(_problem(name, "A positive number (a percentage at most 100)."))
        if amount is not None and not isinstance(params.get("currency"), str):
            problems.append(_problem("currency", "An amount off needs a currency.", codes.REQUIRED))
        days = params.get("validDays", 30)
        if not isinstance(days, int) or not 1 <= days <= 3650:
            problems.append(_problem("validDays", "Days, 1 to 3650."))
        prefix = params.get("prefix", "")
        if not isinstance(prefix, str) or len(prefix) > 20 or not all(c.isalnum() or c == "-" for c in prefix):
            problems.append(_problem("prefix", "Up to 20 letters, digits and -."))
        return problems

    async def run(self, ctx: ActionContext) -> Mapping[str, Any]:
        from crm_graph.loyalty import service as loyalty

        p = ctx.params
        with domain_refusal():
            coupon = await loyalty.issue_coupon(
                ctx.session, actor=AUTOMATION, customer_id=ctx.customer_id, idempotency_key=ctx.idempotency_key,
                percent_off=Decimal(str(p["percentOff"])) if p.get("percentOff") is not None else None,
                amount_off=Decimal(str(p["amountOff"])) if p.get("amountOff") is not None else None,
                currency=p.get("currency"), valid_days=p.get("validDays", 30), prefix=p.get("prefix", ""))
        return {"code": coupon.code, "expiresAt": coupon.expires_at.isoformat() if coupon.expires_at else None}

    def describe(self, params: Mapping[str, Any], customer: Mapping[str, Any]) -> str:
        off = f"{params.get('percentOff')}%" if params.get("percentOff") is not None else f"{params.get('amountOff')} {params.get('currency')}"
        return f"would issue a single-use coupon for {off} off, valid {params.get('validDays', 30)} days"


# --- call_webhook ------------------------------------------------------------------------------


class CallWebhook:
    name = "call_webhook"
    description = ("POST the enrolment (flow, step, customer, trigger) as JSON to `url`, signed like webhook "
                   "deliveries (`CRM-Signature` with `secret`), with an `Idempotency-Key` header. 2xx is success; "
                   "5xx, 429 and network failures are retried.")
    external = True
    message = False

    async def validate(self, session: Any, params: Mapping[str, Any]) -> Sequence[FieldError]:
        from crm_graph.core.remote import base_url_problem

        problems = _text(params, "url", required=True, limit=2000) + _text(params, "secret", required=True, limit=200)
        if not problems:
            problem = base_url_problem(params["url"])
            if problem:
                problems.append(_problem("url", problem))
            if len(params["secret"]) < 16:
                problems.append(_problem("secret", "At least 16 characters."))
        return problems

    async def run(self, ctx: ActionContext) -> Mapping[str, Any]:
        import httpx

        from crm_graph.webhooks.signature import sign

        body = json.dumps({"flowId": ctx.flow_id, "enrolmentId": ctx.enrolment_id, "step": ctx.step_key,
                           "customer": ctx.customer, "trigger": ctx.trigger, "at": ctx.now.isoformat()},
                          default=str, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": ctx.idempotency_key,
                   "CRM-Signature": sign(body, ctx.params["secret"])}
        try:
            async with httpx.AsyncClient(timeout=15.0, follow_redirects=False) as client:
                response = await client.post(ctx.params["url"], content=body, headers=headers)
        except httpx.ConnectError:
            raise ActionError("cannot connect to the receiver") from None  # nothing was sent: retried
        except httpx.HTTPError as exc:
            # Sent, but whether the receiver acted on it is not known: not repeated (at most once).
            raise ActionError(f"the call failed: {type(exc).__name__}", retry=False) from None
        if response.status_code >= 300:
            raise ActionError(f"the receiver answered {response.status_code}",
                              retry=response.status_code >= 500 or response.status_code == 429)
        return {"status": response.status_code}

    def describe(self, params: Mapping[str, Any], customer: Mapping[str, Any]) -> str:
        return f"would POST the enrolment to {params.get('url')}"


def builtin_actions() -> list[Any]:
    return [SendEmail(), CreateTask(), UpdateCustomer(), SegmentMembership("add_to_segment", True),
            SegmentMembership("remove_from_segment", False), CreateOpportunity(), Points("award_points", True),
            Points("take_points", False), IssueCoupon(), CallWebhook()]
