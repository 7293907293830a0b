"""``crm-graph finance sync|pull|reconcile``: what the server does on its own, by hand."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from crm_graph.core.accounting import AccountingError


def _run(work: Any) -> Any:
    from crm_graph.db.session import Database
    from crm_graph.plugins import make_plugin_manager
    from crm_graph.settings import Settings

    from crm_finance import service

    settings = Settings.from_env()
    pm = make_plugin_manager(settings)
    backends = service.backends_of(pm)

    async def main() -> Any:
        db = Database.from_settings(settings)
        try:
            return await work(db, settings, backends)
        finally:
            await db.dispose()

    return asyncio.run(main())


async def _connections(db: Any, name: str | None) -> list[Any]:
    from crm_finance import service

    async with db.reader() as session:
        if name is None:
            return await service.connections(session, active=True)
        found = await service.connection_by_ref(session, name)
    if found is None:
        raise click.ClickException(f"no finance connection {name!r}")
    return [found]


@click.group()
def finance() -> None:
    """Push orders to the books, read payments back, reconcile."""


@finance.command("sync")
@click.option("--connection", "name", help="Only this connection (its name); default: every active one.")
def sync(name: str | None) -> None:
    """Push every order the books should have and do not (and reverse cancelled ones)."""
    from crm_finance import service

    async def work(db: Any, settings: Any, backends: Any) -> int:
        failed = 0
        for connection in await _connections(db, name):
            async with db.reader() as session:
                pending = await service.unsynced_orders(session, connection)
            done = 0
            for order_id in pending:
                outcome = await service.sync_order(db, settings, backends, order_id, connection.id)
                if outcome.error is not None:
                    failed += 1
                    click.echo(f"{connection.name}: order {order_id}: {outcome.error.message}", err=True)
                elif outcome.status is not None:
                    done += 1
            click.echo(f"{connection.name}: {done} of {len(pending)} orders synced")
        return failed

    sys.exit(1 if _run(work) else 0)


@finance.command("pull")
@click.option("--connection", "name", help="Only this connection (its name); default: every active one.")
def pull(name: str | None) -> None:
    """Read payments from the books and record the new ones on their orders."""
    from crm_finance import service

    async def work(db: Any, settings: Any, backends: Any) -> int:
        failed = 0
        for connection in await _connections(db, name):
            try:
                result = await service.pull_payments(db, settings, backends, connection.id)
            except AccountingError as exc:
                failed += 1
                click.echo(f"{connection.name}: {exc.message}", err=True)
                continue
            click.echo(f"{connection.name}: {result.seen} payments seen, {result.applied} recorded, "
                       f"{result.already} recorded before, {result.unmatched} without a matching order")
        return failed

    sys.exit(1 if _run(work) else 0)


@finance.command("reconcile")
@click.option("--connection", "name", required=True, help="The connection's name.")
@click.option("--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First day (YYYY-MM-DD).")
@click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Last day (YYYY-MM-DD).")
def reconcile(name: str, start: Any, end: Any) -> None:
    """List orders without an invoice, invoices without an order, and disagreements; exit 1 if any."""
    from crm_finance import service

    async def work(db: Any, settings: Any, backends: Any) -> Any:
        try:
            return await service.reconcile(db, settings, backends, name, start.date(), end.date())
        except AccountingError as exc:
            raise click.ClickException(f"the books could not be read: {exc.message}") from exc

    report = _run(work)
    click.echo(report_text(report))
    sys.exit(0 if report.clean else 1)


def report_text(r: Any) -> str:
    lines = [f"Reconciliation of {r.connection.name} ({r.connection.backend}), {r.start} to {r.end}"]
    lines.append("  CRM orders:      " + (", ".join(f"{v} {c}" for c, v in sorted(r.crm_totals.items())) or "none"))
    lines.append("  Books invoices:  " + (", ".join(f"{v} {c}" for c, v in sorted(r.remote_totals.items())) or "none"))
    lines.append(f"  Orders without an invoice ({len(r.missing_remote)}):")
    lines += [f"    {o.number}  {o.total} {o.currency}  {o.status.value}" for o in r.missing_remote]
    lines.append(f"  Invoices without an order ({len(r.missing_local)}):")
    lines += [f"    {i.reference or '-'}  {i.number or i.remote_id}  {i.total} {i.currency}  {i.state}" for i in r.missing_local]
    lines.append(f"  Disagreements ({len(r.mismatches)}):")
    lines += [f"    {m.reference}  {m.problem}: CRM {m.crm_total} {m.crm_currency}, books {m.remote_total} {m.remote_currency} "
              f"({m.remote_state})" for m in r.mismatches]
    lines.append("  Clean." if r.clean else "  Not clean.")
    return "\n".join(lines)

