"""Duplicate customers: stored blocking keys, candidate pairs, dismissals, and where merged
customers went. Merging itself is ``crm_graph.dedupe.merge``.

How it stays set-based at 100k customers: every customer has a few blocking keys
(``duplicate_keys``: its normalised emails, its phones, and its name tokens within its
organization and its city). Only customers sharing a key are compared, found by one indexed
query per batch; a name block larger than ``matching.TOKEN_BLOCK_LIMIT`` customers is skipped.
The keys and the pairs (``duplicate_candidates``) follow the customers through
``refresh_changed``: customers whose ``updated_at`` is past the stored watermark are re-keyed
and re-paired in batches (every create, update, delete, restore and erasure moves
``updated_at``). The GraphQL reads call it first, so what they show is current; a job may call
it too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core.access import SKIP_OPTION, Scope
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import FieldError, NotFound, ValidationFailed
from crm_graph.core import errors as codes
from crm_graph.customers.models import Customer, CustomerEmail, CustomerPhone
from crm_graph.dedupe import matching as m
from crm_graph.dedupe.models import (
    DuplicateCandidate,
    DuplicateDismissal,
    DuplicateKey,
    DuplicateRefreshState,
    MergedCustomer,
)

_UNSCOPED = {SKIP_OPTION: True}
BATCH = 500  # customers re-keyed per round of refresh_changed
# An arbitrary, fixed key for pg_try_advisory_xact_lock: one refresh of the stored pairs at a time.
REFRESH_LOCK_KEY = 7_402_118
# Customers a request's refresh handles (about a second's work); the rest on the next request,
# or all at once with ``refresh_all`` (``crm-graph duplicates refresh``, after a bulk import).
REFRESH_LIMIT = 1000
# Rows changed this recently are looked at again by the next refresh: a transaction that set
# ``updated_at`` before the watermark moved may commit a moment later.
LAG = timedelta(seconds=10)


@dataclass(frozen=True)
class Candidate:
    """A customer that looks like another: who, how sure (0-100) and why."""

    customer_id: int
    score: int
    reasons: tuple[m.Reason, ...]


# --- profiles and keys ---------------------------------------------------------------------------


async def _profiles(session: AsyncSession, ids: Sequence[int], *, scoped: bool) -> dict[int, m.Profile]:
    """The live customers of ``ids`` as the rules read them (three statements)."""
    if not ids:
        return {}
    options = {} if scoped else _UNSCOPED
    stmt = sa.select(Customer).where(Customer.id.in_(ids), Customer.deleted_at.is_(None)).execution_options(**options)
    customers = list((await session.scalars(stmt)).all())
    out = {
        c.id: m.Profile(
            id=c.id, kind=c.kind.value, name=c.organization_name or "" if c.kind.value == "ORGANIZATION" else c.display_name,
            organization_id=c.organization_id, city=c.city,
        )
        for c in customers
    }
    if not out:
        return out
    live = list(out)
    for row in (await session.execute(
        sa.select(CustomerEmail.customer_id, CustomerEmail.address).where(CustomerEmail.customer_id.in_(live))
        .order_by(CustomerEmail.customer_id, CustomerEmail.position).execution_options(**_UNSCOPED)
    )).all():
        out[row.customer_id].emails.append(row.address)
    for row in (await session.execute(
        sa.select(CustomerPhone.customer_id, CustomerPhone.number).where(CustomerPhone.customer_id.in_(live))
        .order_by(CustomerPhone.customer_id, CustomerPhone.position).execution_options(**_UNSCOPED)
    )).all():
        out[row.customer_id].phones.append(row.number)
    return out


async def _matches(
    session: AsyncSession, keys: dict[int, dict[str, str]], *, scope: Scope | None, scoped: bool
) -> dict[int, list[Candidate]]:
    """For each customer of ``keys`` (its keys and their values), the other live customers that
    share a key and meet a rule, best first. Two statements, whatever the number of customers."""
    wanted = sorted({k for ks in keys.values() for k in ks})
    if not wanted:
        return {cid: [] for cid in keys}
    own = list(keys)
    sizes: dict[str, int] = {}
    for chunk in _chunks(wanted, 500):
        stmt = (
            sa.select(DuplicateKey.key, sa.func.count())
            .where(DuplicateKey.key.in_(chunk), DuplicateKey.customer_id.not_in(own))
            .group_by(DuplicateKey.key)
        )
        for key, count in (await session.execute(stmt)).all():
            sizes[key] = int(count)
    usable = [k for k, n in sizes.items() if (limit := m.block_limit(k)) is None or n + 1 <= limit]
    theirs: dict[int, dict[str, str]] = defaultdict(dict)
    for chunk in _chunks(sorted(usable), 500) or [[]]:  # one query even when empty: a constant cost
        stmt = (
            sa.select(DuplicateKey.customer_id, DuplicateKey.key, DuplicateKey.value)
            .join(Customer, Customer.id == DuplicateKey.customer_id)
            .where(DuplicateKey.key.in_(chunk), DuplicateKey.customer_id.not_in(own), Customer.deleted_at.is_(None))
        )
        if scope is not None and (condition := scope.condition(Customer)) is not None:
            stmt = stmt.where(condition)
        if not scoped:
            stmt = stmt.execution_options(**_UNSCOPED)
        for row in (await session.execute(stmt)).all():
            theirs[row.customer_id][row.key] = row.value
    # The customers of the batch are compared with each other too (in memory).
    universe: dict[int, dict[str, str]] = {**theirs, **keys}
    by_key: dict[str, set[int]] = defaultdict(set)
    for cid, ks in universe.items():
        for k in ks:
            by_key[k].add(cid)
    out: dict[int, list[Candidate]] = {}
    for cid, mine in keys.items():
        shared: dict[int, set[str]] = defaultdict(set)
        for k in mine:
            members = by_key.get(k, set())
            limit = m.block_limit(k)
            if limit is not None and len(members) > limit:
                continue
            for other in members:
                if other != cid:
                    shared[other].add(k)
        found = []
        for other, common in shared.items():
            reasons = m.score_pair(common, mine, universe[other])
            if reasons:
                found.append(Candidate(other, m.combined_score(reasons), tuple(reasons)))
        found.sort(key=lambda c: (-c.score, c.customer_id))
        out[cid] = found
    return out


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def find_duplicates(
    session: AsyncSession, *, scope: Scope | None = None, customer_ids: Sequence[int]
) -> dict[int, list[Candidate]]:
    """Which live customers look like each of ``customer_ids``, best first, with reasons.

    The given customers are read as they are now; the others through their stored keys (see
    ``refresh_changed``). Only customers ``session``'s scope shows (a request's session carries
    it) and, when given, ``scope`` (for an importer's unscoped session) are returned. Reads only:
    a constant number of statements for any number of customers. A warning, never a decision.
    """
    profiles = await _profiles(session, customer_ids, scoped=True)
    keys = {cid: dict(m.blocking_keys(p)) for cid, p in profiles.items()}
    found = await _matches(session, keys, scope=scope, scoped=True)
    pairs = [tuple(sorted((cid, c.customer_id))) for cid, cs in found.items() for c in cs]
    dismissed = await _dismissed(session, pairs) if pairs else set()
    return {
        cid: [c for c in found.get(cid, []) if tuple(sorted((cid, c.customer_id))) not in dismissed]
        for cid in customer_ids
    }


# --- keeping the stored keys and pairs current ------------------------------------------------------


async def refresh_customers(session: AsyncSession, ids: Sequence[int]) -> None:
    """Re-key and re-pair ``ids`` (unscoped: the stored pairs cover every customer; reads filter)."""
    if not ids:
        return
    ids = sorted(set(ids))
    profiles = await _profiles(session, ids, scoped=False)
    await session.execute(sa.delete(DuplicateKey).where(DuplicateKey.customer_id.in_(ids)).execution_options(**_UNSCOPED))
    keys = {cid: dict(m.blocking_keys(p)) for cid, p in profiles.items()}
    rows = [{"customer_id": cid, "key": k, "value": v} for cid, ks in keys.items() for k, v in ks.items()]
    if rows:
        await session.execute(sa.insert(DuplicateKey), rows)
    found = await _matches(session, keys, scope=None, scoped=False)
    now = utcnow()
    pairs: dict[tuple[int, int], dict[str, Any]] = {}
    for cid, candidates in found.items():
        for c in candidates:
            a, b = sorted((cid, c.customer_id))
            reasons = c.reasons if a == cid else tuple(_flipped(r) for r in c.reasons)
            pairs.setdefault((a, b), {
                "customer_a_id": a, "customer_b_id": b, "score": c.score,
                "reasons": [r.as_json() for r in reasons], "computed_at": now,
            })
    dismissed = await _dismissed(session, list(pairs)) if pairs else set()
    # Pairs that stay keep their row (and so their place in a page being read); changed ones
    # are updated, vanished ones deleted, new ones inserted.
    stored = (await session.execute(
        sa.select(DuplicateCandidate.id, DuplicateCandidate.customer_a_id, DuplicateCandidate.customer_b_id,
                  DuplicateCandidate.score, DuplicateCandidate.reasons)
        .where(sa.or_(DuplicateCandidate.customer_a_id.in_(ids), DuplicateCandidate.customer_b_id.in_(ids)))
        .execution_options(**_UNSCOPED)
    )).all()
    gone = []
    for row in stored:
        pair = (row.customer_a_id, row.customer_b_id)
        new = pairs.pop(pair, None)
        if new is None or pair in dismissed:
            gone.append(row.id)
        elif new["score"] != row.score or new["reasons"] != row.reasons:
            await session.execute(
                sa.update(DuplicateCandidate).where(DuplicateCandidate.id == row.id)
                .values(score=new["score"], reasons=new["reasons"], computed_at=now).execution_options(**_UNSCOPED)
            )
    if gone:
        await session.execute(sa.delete(DuplicateCandidate).where(DuplicateCandidate.id.in_(gone)).execution_options(**_UNSCOPED))
    rows = [row for pair, row in pairs.items() if pair not in dismissed]
    if rows:
        await session.execute(sa.insert(DuplicateCandidate), rows)


def _flipped(reason: m.Reason) -> m.Reason:
    return m.Reason(reason.rule, reason.field, (reason.values[1], reason.values[0]), reason.score, reason.similarity)


async def _dismissed(session: AsyncSession, pairs: list[tuple[int, int]]) -> set[tuple[int, int]]:
    ids = sorted({i for pair in pairs for i in pair})
    stmt = sa.select(DuplicateDismissal.customer_a_id, DuplicateDismissal.customer_b_id).where(
        DuplicateDismissal.customer_a_id.in_(ids), DuplicateDismissal.customer_b_id.in_(ids)
    )
    return {(a, b) for a, b in (await session.execute(stmt.execution_options(**_UNSCOPED))).all()}


async def refresh_changed(session: AsyncSession, *, limit: int = REFRESH_LIMIT) -> int:
    """Bring the keys and pairs up to date with customers changed since the last refresh (at most
    ``limit`` of them per call, in ``(updated_at, id)`` order from where the last call stopped).
    Customers changed in the last ``LAG`` are looked at again, so a transaction that committed
    after a later one is not missed. Returns how many customers were handled.

    One refresh at a time: on PostgreSQL a transaction-scoped advisory lock, and a request that
    finds it taken skips the refresh (the holder is doing the same work); SQLite's write
    transactions are one at a time already."""
    if (await session.connection()).dialect.name == "postgresql":
        if not await session.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(REFRESH_LOCK_KEY))):
            return 0
    state = await session.get(DuplicateRefreshState, 1, execution_options=_UNSCOPED)
    if state is None:
        state = DuplicateRefreshState(id=1, refreshed_to=None, refreshed_id=None)
        session.add(state)
    position = (state.refreshed_to, state.refreshed_id or 0) if state.refreshed_to is not None else None
    done = 0
    handled: set[int] = set()
    while done < limit:
        stmt = sa.select(Customer.id, Customer.updated_at).order_by(Customer.updated_at, Customer.id).limit(BATCH)
        if position is not None:
            stmt = stmt.where(sa.or_(
                Customer.updated_at > position[0], sa.and_(Customer.updated_at == position[0], Customer.id > position[1])
            ))
        rows = (await session.execute(stmt.execution_options(**_UNSCOPED))).all()
        if not rows:
            break
        await refresh_customers(session, [r.id for r in rows])
        handled.update(r.id for r in rows)
        done += len(rows)
        position = (rows[-1].updated_at, rows[-1].id)
        if len(rows) < BATCH:
            break
    if position is not None:
        recent = (await session.execute(
            sa.select(Customer.id).where(
                Customer.updated_at > utcnow() - LAG,
                sa.or_(Customer.updated_at < position[0], sa.and_(Customer.updated_at == position[0], Customer.id <= position[1])),
            ).order_by(Customer.updated_at.desc()).limit(BATCH).execution_options(**_UNSCOPED)
        )).scalars().all()
        again = [pk for pk in recent if pk not in handled]
        if again:
            await refresh_customers(session, again)
        state.refreshed_to, state.refreshed_id = position
    await session.flush()
    return done


async def refresh_all(db: Any) -> int:
    """Refresh until nothing changed is left, one transaction per ``REFRESH_LIMIT`` customers."""
    total = 0
    while True:
        async with db.writer() as session, session.begin():
            done = await refresh_changed(session)
        total += done
        if done < REFRESH_LIMIT:
            return total


# --- the candidate list, dismissals ------------------------------------------------------------------


def candidate_select(*, customer_id: int | None = None) -> sa.Select[tuple[DuplicateCandidate]]:
    """Stored pairs whose two customers are both live and readable (the request's scope applies
    to the ``Customer`` subqueries), optionally only those involving ``customer_id``.
    Correlated ``EXISTS`` by primary key, not ``IN (subquery)``: SQLite would drive the pair
    index from both lists; and not joins of aliases, which the scope's conditions do not follow."""

    def live(column: Any) -> sa.Exists:
        return sa.exists().where(Customer.id == column, Customer.deleted_at.is_(None))

    stmt = sa.select(DuplicateCandidate).where(live(DuplicateCandidate.customer_a_id), live(DuplicateCandidate.customer_b_id))
    if customer_id is not None:
        stmt = stmt.where(sa.or_(DuplicateCandidate.customer_a_id == customer_id, DuplicateCandidate.customer_b_id == customer_id))
    return stmt


def reasons_of(candidate: DuplicateCandidate) -> list[m.Reason]:
    return [m.Reason.from_json(r) for r in candidate.reasons or []]


async def dismiss_duplicate(session: AsyncSession, *, actor: Actor, customer_id: int, other_id: int) -> tuple[int, int]:
    """Say two customers are not duplicates: the pair leaves the candidates and never returns.
    Both must be customers the actor can read; saying it again changes nothing."""
    if customer_id == other_id:
        raise ValidationFailed([FieldError("otherId", codes.INVALID_VALUE, "A customer cannot be a duplicate of itself.")])
    for field, pk in (("customerId", customer_id), ("otherId", other_id)):
        found = await session.scalar(sa.select(Customer.id).where(Customer.id == pk, Customer.deleted_at.is_(None)))
        if found is None:
            raise NotFound("Customer", field)
    a, b = sorted((customer_id, other_id))
    existing = await session.get(DuplicateDismissal, (a, b), execution_options=_UNSCOPED)
    if existing is None:
        session.add(DuplicateDismissal(customer_a_id=a, customer_b_id=b, dismissed_at=utcnow(), dismissed_by=actor.principal))
    await session.execute(
        sa.delete(DuplicateCandidate).where(DuplicateCandidate.customer_a_id == a, DuplicateCandidate.customer_b_id == b)
        .execution_options(**_UNSCOPED)
    )
    await session.flush()
    return a, b


# --- merged customers' IDs ------------------------------------------------------------------------


async def survivors_of(session: AsyncSession, ids: Sequence[int]) -> dict[int, int]:
    """For merged customers among ``ids``: the customer each was merged into (chains followed:
    a merge into a customer that was merged later leads to the later survivor)."""
    if not ids:
        return {}
    stmt = sa.select(MergedCustomer.customer_id, MergedCustomer.survivor_id).where(MergedCustomer.customer_id.in_(ids))
    return {a: b for a, b in (await session.execute(stmt.execution_options(**_UNSCOPED))).all()}
