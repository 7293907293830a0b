"""What plugins add at start-up: schema parts, routes, CLI commands; and clashes that stop it."""

from __future__ import annotations

import click
import pytest
import strawberry
from click.testing import CliRunner
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from strawberry.types import Info

from crm_graph import hookimpl
from crm_graph.app import create_app
from crm_graph.domains import SchemaPart
from crm_graph.graphql.errors import UserError
from crm_graph.plugins import PluginError, make_plugin_manager
from tests.plugins.test_manager import run_cli


@strawberry.type(description="A greeting from a plugin.")
class Greeting:
    text: str


@strawberry.type
class GreetingQuery:
    @strawberry.field(description="Say hello.")
    def greeting(self, name: str) -> Greeting:
        return Greeting(text=f"Hello, {name}!")


@strawberry.type
class GreetingPayload:
    greeting: Greeting | None
    errors: list[UserError]


@strawberry.type
class GreetingMutation:
    @strawberry.mutation(description="Shout a greeting.")
    def shout(self, info: Info, name: str) -> GreetingPayload:
        return GreetingPayload(greeting=Greeting(text=f"HELLO, {name.upper()}!"), errors=[])


class Greeter:
    name = "greeter"

    @hookimpl
    def crm_register_schema(self) -> SchemaPart:
        return SchemaPart(query=GreetingQuery, mutation=GreetingMutation, types=[Greeting])


async def test_hook_crm_register_schema_adds_query_fields_and_mutations(server_factory):
    server = await server_factory(Greeter())
    data = await server.client.execute('{ greeting(name: "Ada") { text } customers { totalCount } }')
    assert data == {"greeting": {"text": "Hello, Ada!"}, "customers": {"totalCount": 0}}
    shouted = await server.client.mutate('mutation { shout(name: "Ada") { greeting { text } errors { code } } }')
    assert shouted["greeting"] == {"text": "HELLO, ADA!"}


def test_a_field_clashing_with_the_core_stops_start_up_naming_the_plugin(settings):
    @strawberry.type
    class Clash:
        @strawberry.field
        def customers(self) -> int:
            return 0

    class Clasher:
        name = "clasher"

        @hookimpl
        def crm_register_schema(self) -> SchemaPart:
            return SchemaPart(query=Clash)

    pm = make_plugin_manager(settings, plugins=[Clasher()], entry_points=False)
    with pytest.raises(PluginError) as raised:
        create_app(settings, plugins=pm)
    assert "plugin 'clasher': query field 'customers' clashes with the core" in str(raised.value)


@strawberry.type(name="Customer")
class OtherCustomer:
    size: int


@strawberry.type
class Shadow:
    @strawberry.field
    def shadow(self) -> OtherCustomer:
        return OtherCustomer(size=0)


def test_a_type_named_like_a_core_type_stops_start_up_with_an_error(settings):
    # Strawberry refuses the second "Customer" while the schema is built; the error reaches the
    # caller (an exception chain that loops back on itself once made start-up spin forever).
    class Shadower:
        name = "shadower"

        @hookimpl
        def crm_register_schema(self) -> SchemaPart:
            return SchemaPart(query=Shadow)

    pm = make_plugin_manager(settings, plugins=[Shadower()], entry_points=False)
    with pytest.raises(Exception, match="Customer"):
        create_app(settings, plugins=pm)


def test_two_plugins_claiming_one_field_stop_start_up_naming_both(settings):
    class Second:
        name = "second_greeter"

        @hookimpl
        def crm_register_schema(self) -> SchemaPart:
            return SchemaPart(query=GreetingQuery)

    pm = make_plugin_manager(settings, plugins=[Greeter(), Second()], entry_points=False)
    with pytest.raises(PluginError) as raised:
        create_app(settings, plugins=pm)
    assert "second_greeter" in str(raised.value) and "plugin 'greeter'" in str(raised.value)


def test_a_schema_hook_returning_something_else_stops_start_up(settings):
    class Sloppy:
        name = "sloppy"

        @hookimpl
        def crm_register_schema(self):  # noqa: ANN201
            return {"query": GreetingQuery}

    pm = make_plugin_manager(settings, plugins=[Sloppy()], entry_points=False)
    with pytest.raises(PluginError, match="'sloppy': crm_register_schema returned dict"):
        create_app(settings, plugins=pm)


def test_export_schema_shows_the_installed_plugins_fields():
    exported = run_cli("export-schema")
    assert exported.returncode == 0, exported.stderr
    assert "changeHistory(" in exported.stdout and "type ChangeHistoryEntry implements Node" in exported.stdout
    blocked = run_cli("export-schema", CRM_PLUGINS_BLOCK="crm_audit")
    assert "changeHistory(" not in blocked.stdout and "createWebhookSubscription(" in blocked.stdout


class Pinger:
    name = "pinger"

    @hookimpl
    def crm_register_routes(self) -> list[Route]:
        async def ping(request: Request) -> JSONResponse:
            return JSONResponse({"pong": True, "database": request.app.state.db.dialect})

        return [Route("/plugins/pinger/ping", ping)]


async def test_hook_crm_register_routes_serves_the_plugins_routes(server_factory, backend):
    server = await server_factory(Pinger())
    response = await server.client.http.get("/plugins/pinger/ping")
    assert response.status_code == 200
    assert response.json() == {"pong": True, "database": backend}
    # The core's routes are still there.
    assert (await server.client.http.get("/healthz")).json() == {"status": "ok"}


def test_a_route_on_a_core_path_stops_start_up(settings):
    class Hijacker:
        name = "hijacker"

        @hookimpl
        def crm_register_routes(self) -> list[Route]:
            return [Route("/graphql", lambda request: JSONResponse({}))]

    pm = make_plugin_manager(settings, plugins=[Hijacker()], entry_points=False)
    with pytest.raises(PluginError, match="'hijacker': route /graphql clashes with the core"):
        create_app(settings, plugins=pm)


def test_hook_crm_register_commands_adds_subcommands(settings):
    from crm_graph.cli import cli
    from crm_graph.plugins import register_commands

    class Tools:
        name = "tools"

        @hookimpl
        def crm_register_commands(self, cli: click.Group) -> None:
            @cli.command("tools-hello")
            @click.argument("who")
            def hello(who: str) -> None:
                """Greet someone."""
                click.echo(f"hello {who}")

    try:
        register_commands(make_plugin_manager(settings, plugins=[Tools()], entry_points=False), cli)
        result = CliRunner().invoke(cli, ["tools-hello", "partner"])
        assert result.exit_code == 0, result.output
        assert result.output == "hello partner\n"
        assert "tools-hello" in CliRunner().invoke(cli, ["--help"]).output
    finally:
        cli.commands.pop("tools-hello", None)


def test_installed_plugin_commands_run_through_the_real_cli():
    shown = run_cli("--help")
    assert shown.returncode == 0
    assert "audit" in shown.stdout and "webhooks" in shown.stdout
    assert "audit" not in run_cli("--help", CRM_PLUGINS_BLOCK="crm_audit").stdout
