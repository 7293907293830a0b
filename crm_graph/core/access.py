"""Record-level access, enforced in the read layer itself.

A request's ``Actor`` becomes a ``Scope``. Every session the request opens carries it
(``Database.scoped``), and a session event adds the scope's SQL conditions to every ORM
statement that session runs: each select builder, loader, page, count, aggregate, ``node``
lookup, subquery and join, and every ORM ``UPDATE``/``DELETE``. Nothing in a resolver or service
has to remember it, so a new query cannot forget it, and because the conditions are part of the
SQL, counts, pages and cursors are right and a hidden record looks exactly like a missing one.

Domains say which tables are guarded (``guard_owned`` for records with an owner and a team,
``guard_child`` for rows that belong to such a record, ``guard_object`` for the rest); ``core``
imports no domain.

Two layers of rules:

- The role: whether the actor may ``read`` objects of a type at all (``Actor.can``). An object
  type the role cannot read matches nothing.
- The record: for owned objects, the organisation-wide sharing default of the object type
  (``Sharing``) decides what others than the owner see and change. Actors with ``view_all``
  (administrators, integration keys, the system) are not limited.

Plugins narrow a scope through ``crm_scope_sql(actor, entity)``; what they return is ANDed, so
they can never widen it.

Writes: before each flush, records about to be changed or deleted (and the parents of changed
child rows) are checked against the write rule in one query per table; a change of owner needs
the ``assign`` permission. A refusal raises ``AccessDenied`` (``FORBIDDEN``) and nothing is
written. Sessions without a scope (the dispatcher, jobs, the CLI) act as the system.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from crm_graph.core.actor import Actor
from crm_graph.core.errors import DomainError, FieldError

FORBIDDEN = "FORBIDDEN"
SCOPE_KEY = "crm_scope"
SKIP_OPTION = "crm_skip_scope"  # execution option for the access layer's own lookups


class Sharing(str, enum.Enum):
    PRIVATE = "PRIVATE"  # the owner, managers of the record's team, administrators
    TEAM = "TEAM"  # PRIVATE, plus everyone in the record's team (read and write)
    PUBLIC_READ = "PUBLIC_READ"  # everyone reads; writes as PRIVATE
    PUBLIC_READ_WRITE = "PUBLIC_READ_WRITE"  # everyone reads and writes


# What a fresh installation uses until an administrator changes it (``setSharingDefault``):
# customers and service records are shared work, deals belong to the team that works them.
DEFAULT_SHARING: dict[str, Sharing] = {
    "customers": Sharing.PUBLIC_READ,
    "opportunities": Sharing.TEAM,
    "quotes": Sharing.TEAM,
    "orders": Sharing.TEAM,
    "tickets": Sharing.PUBLIC_READ_WRITE,
}


class AccessDenied(DomainError):
    def __init__(self, message: str, field: str | None = None) -> None:
        self.code = FORBIDDEN
        super().__init__([FieldError(field, FORBIDDEN, message)])


@dataclass(frozen=True)
class Guard:
    model: Any
    object: str  # the permission object ("customers")
    owned: bool = False  # has owner_id and team_id columns
    parent: Any = None  # for child rows: the guarded model they belong to
    parent_key: str | None = None  # attribute holding the parent's id
    extra: Callable[[Scope], Any] | None = None  # another condition (e.g. by principal)


_GUARDS: dict[Any, Guard] = {}


def guard_owned(model: Any, obj: str) -> None:
    """``model`` has ``owner_id`` and ``team_id``; sharing rules of ``obj`` apply to it."""
    _GUARDS[model] = Guard(model, obj, owned=True)


def guard_child(model: Any, obj: str, parent: Any, parent_key: str) -> None:
    """Rows of ``model`` are visible and writable exactly when their parent record is."""
    _GUARDS[model] = Guard(model, obj, parent=parent, parent_key=parent_key)


def guard_object(model: Any, obj: str, extra: Callable[[Scope], Any] | None = None) -> None:
    """Rows of ``model`` need ``obj:read``; ``extra(scope)`` may narrow them further."""
    _GUARDS[model] = Guard(model, obj, extra=extra)


def primary_model(obj: str) -> Any:
    """The main model of a permission object: the first one registered for it (Customer for
    "customers", Activity for "activities"). ``crm_scope_sql`` conditions apply to it; the rows
    that belong to it (emails, tags, lines) follow it through their parent."""
    return next((m for m, g in _GUARDS.items() if g.object == obj), None)


def guards() -> Mapping[Any, Guard]:
    return dict(_GUARDS)


@dataclass
class Scope:
    """What one actor may see and change. Conditions are built once per scope and reused."""

    actor: Actor
    sharing: Mapping[str, Sharing] = field(default_factory=lambda: dict(DEFAULT_SHARING))
    narrow: Callable[[Actor, str], list[Any]] | None = None  # plugins' crm_scope_sql
    _cache: dict[tuple[Any, str], Any] = field(default_factory=dict, repr=False)
    _options: dict[str, tuple[Any, ...]] = field(default_factory=dict, repr=False)

    @property
    def unrestricted(self) -> bool:
        return self.actor.view_all and self.narrow is None

    def condition(self, model: Any, mode: str = "read") -> Any:
        """The SQL condition rows of ``model`` must meet, or None when every row passes."""
        key = (model, mode)
        if key not in self._cache:
            self._cache[key] = self._build(model, mode)
        return self._cache[key]

    def options(self, mode: str) -> tuple[Any, ...]:
        """The ``with_loader_criteria`` options every statement of this scope gets (built once:
        a request runs many statements with the same scope)."""
        if mode not in self._options:
            self._options[mode] = tuple(
                with_loader_criteria(model, condition, include_aliases=True)
                for model in _GUARDS
                if (condition := self.condition(model, mode)) is not None
            )
        return self._options[mode]

    def _build(self, model: Any, mode: str) -> Any:
        guard = _GUARDS.get(model)
        if guard is None:
            return None
        if not self.actor.can(guard.object, "read"):
            return sa.false()
        parts: list[Any] = []
        if guard.owned:
            record = self._record_condition(model, guard.object, mode)
            if record is not None:
                parts.append(record)
        if guard.parent is not None:
            parent = self.condition(guard.parent, mode)
            if parent is not None:
                parts.append(getattr(model, guard.parent_key).in_(sa.select(guard.parent.id).where(parent)))
        if guard.extra is not None:
            extra = guard.extra(self)
            if extra is not None:
                parts.append(extra)
        if self.narrow is not None and primary_model(guard.object) is model:
            parts.extend(self.narrow(self.actor, guard.object))
        if not parts:
            return None
        return sa.and_(*parts) if len(parts) > 1 else parts[0]

    def _record_condition(self, model: Any, obj: str, mode: str) -> Any:
        actor = self.actor
        if actor.view_all:
            return None
        level = self.sharing.get(obj, Sharing.PRIVATE)
        if level is Sharing.PUBLIC_READ_WRITE or (mode == "read" and level is Sharing.PUBLIC_READ):
            return None
        either = []
        if actor.user_id is not None:
            either.append(model.owner_id == actor.user_id)
        if actor.team_id is not None and (level is Sharing.TEAM or actor.manages_team):
            either.append(model.team_id == actor.team_id)
        return sa.or_(*either) if either else sa.false()


def scope_of(session: Session) -> Scope | None:
    return session.info.get(SCOPE_KEY)


@event.listens_for(Session, "do_orm_execute")
def _add_scope_criteria(state: ORMExecuteState) -> None:
    scope = scope_of(state.session)
    if scope is None or scope.unrestricted or state.execution_options.get(SKIP_OPTION):
        return
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load:
        return  # the row itself was loaded through a scoped statement
    options = scope.options("read" if state.is_select else "write")
    if options:
        state.statement = state.statement.options(*options)


@event.listens_for(Session, "before_flush")
def _check_writes(session: Session, _context: Any, _instances: Any) -> None:
    scope = scope_of(session)
    if scope is None:
        return
    actor = scope.actor
    # New owned records belong to the actor unless the service chose an owner.
    for obj in session.new:
        guard = _GUARDS.get(type(obj))
        if guard is not None and guard.owned and obj.owner_id is None and actor.user_id is not None:
            obj.owner_id = actor.user_id
            if obj.team_id is None:
                obj.team_id = actor.team_id
    if scope.unrestricted:
        return
    to_check: dict[Any, set[int]] = {}
    for obj in [*session.dirty, *session.deleted, *session.new]:
        guard = _GUARDS.get(type(obj))
        if guard is None:
            continue
        is_new = obj in session.new
        if guard.owned and not is_new:
            if obj in session.dirty and not session.is_modified(obj):
                continue
            if _changed(obj, ("owner_id", "team_id")) and not actor.can(guard.object, "assign"):
                raise AccessDenied(f"Changing the owner of {guard.object} needs the `{guard.object}:assign` permission.", "ownerId")
            to_check.setdefault(guard.model, set()).add(_committed(obj, "id"))
        elif guard.parent is not None:
            parent_id = getattr(obj, guard.parent_key)
            parent = session.identity_map.get(sa.inspect(guard.parent).identity_key_from_primary_key((parent_id,))) if parent_id else None
            if parent_id is None or (parent is not None and parent in session.new):
                continue  # its parent is created in this flush
            to_check.setdefault(guard.parent, set()).add(parent_id)
    _check_writable(session, scope, to_check)


def _check_writable(session: Session, scope: Scope, to_check: Mapping[Any, Iterable[int]]) -> None:
    for model, ids in to_check.items():
        condition = scope.condition(model, "write")
        if condition is None:
            continue
        wanted = {i for i in ids if i is not None}
        if not wanted:
            continue
        stmt = sa.select(model.id).where(model.id.in_(wanted), condition).execution_options(**{SKIP_OPTION: True})
        allowed = set(session.execute(stmt).scalars())
        if wanted - allowed:
            raise AccessDenied(f"You may read but not change this record of {_GUARDS[model].object}.")


def _changed(obj: Any, attrs: Iterable[str]) -> bool:
    state = sa.inspect(obj)
    return any(state.attrs[a].history.has_changes() for a in attrs)


def _committed(obj: Any, attr: str) -> Any:
    return sa.inspect(obj).committed_state.get(attr, getattr(obj, attr))


# --- who a stored principal is (webhook subscriptions), and what it may read ----------------------

_principal_resolvers: dict[str, Any] = {}


def register_principals(*, actor: Any, sharing: Any) -> None:
    """The access domain tells the core how to turn a stored principal (``user:5``,
    ``api_key:3``) into an ``Actor`` (``await actor(session, principal) -> Actor | None``) and
    how to read the sharing defaults (``await sharing(session) -> {object: Sharing}``)."""
    _principal_resolvers["actor"] = actor
    _principal_resolvers["sharing"] = sharing


async def principal_actor(session: Any, principal: str) -> Actor | None:
    """The actor of a stored principal, or None when it cannot act any more (revoked, inactive)
    or nothing can tell (fail closed)."""
    resolve = _principal_resolvers.get("actor")
    return await resolve(session, principal) if resolve is not None else None


async def sharing_defaults(session: Any) -> dict[str, Sharing]:
    load = _principal_resolvers.get("sharing")
    return await load(session) if load is not None else dict(DEFAULT_SHARING)


async def readable_ids(sessionmaker: Any, scope: Scope, entity_type: str, ids: Iterable[str]) -> set[str]:
    """Which of the records ``entity_type`` (a model's class name, as events name it) with ids
    ``ids`` the scope may read. A record that no longer exists is readable only for actors who
    see everything (its event may still say it was removed)."""
    wanted = {str(i) for i in ids}
    guard = next((g for g in _GUARDS.values() if g.model.__name__ == entity_type), None)
    if guard is None:
        return wanted
    if not scope.actor.can(guard.object, "read"):
        return set()
    if scope.unrestricted:
        return wanted
    numeric = {int(i) for i in wanted if i.isdigit()}
    if not numeric:
        return set()
    model = guard.model
    async with sessionmaker(info={SCOPE_KEY: scope}) as session:
        found = set((await session.execute(sa.select(model.id).where(model.id.in_(numeric)))).scalars())
    missing = numeric - found
    if missing and scope.actor.view_all:
        async with sessionmaker() as session:
            existing = set((await session.execute(sa.select(model.id).where(model.id.in_(missing)))).scalars())
        found |= missing - existing
    return {str(i) for i in found}
