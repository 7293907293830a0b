"""What a document may ask for, measured before any resolver runs.

One pass over the operation's AST, with the schema's types, yields four figures:

- **cost**: every object in the answer costs 1 (scalars and enums cost nothing); a list
  multiplies the cost of what it holds by its expected length. A connection's `first` / `last`
  (default 20, at most 100: ``core/pagination.py``) is the length of its `edges`; any other list
  of objects counts ``LIST_LENGTH`` items. A mutation's root field costs ``MUTATION_COST`` more,
  an introspection field ``INTROSPECTION_COST`` (flat: its answer is bounded by the schema).
  So ``customers(first: 20) { edges { node { id } } }`` costs 1 + 20 * (1 + 1) = 41.
- **depth**: nested selection sets below the root (``{ customers { totalCount } }`` is 1 deep);
- **aliases** and **directives**: how many the executed operation holds, fragments expanded.

Fragment spreads are expanded with memoisation (one summary per fragment and page size), so a
document of fragments spreading each other many times is analysed in time linear in its length,
while the figures count every expansion: 30 fragments each spreading the next twice cost 2**30
times the last one, and are refused. A fragment cycle (which validation refuses anyway) is cut,
so the pass always ends. Two selections of one field are counted twice, although execution
merges them: the figure is an upper bound.

``DocumentLimits`` is the schema extension that applies the limits (settings
``CRM_MAX_QUERY_COST``, ``CRM_MAX_QUERY_DEPTH``, ``CRM_MAX_ALIASES``, ``CRM_MAX_DIRECTIVES``,
``CRM_MAX_QUERY_LENGTH`` and ``CRM_MAX_TOKENS``), keeps a cache of parsed and validated documents
bounded by their total size, and hands the cost to the rate limiter (``graphql/ratelimit.py``).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
)
from strawberry.extensions import SchemaExtension

from crm_graph.observability import context as request_context
from crm_graph.core.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from crm_graph.graphql.inputs import control_character_errors

LIST_LENGTH = 10  # expected length of a list of objects that takes no `first` / `last`
MUTATION_COST = 10  # a write costs more than the objects it answers with
INTROSPECTION_COST = 100  # `__schema` / `__type`: GraphiQL's docs query, once
# The least a request is charged to the rate limiter: a point per this many characters of its
# document (GraphiQL's introspection query, about 1,700 characters, is 3 points; a document at
# the length limit, 100,000 characters, 200).
CHARACTERS_PER_POINT = 500


@dataclass(frozen=True)
class Figures:
    cost: int = 0
    depth: int = 0
    aliases: int = 0
    directives: int = 0

    def __add__(self, other: Figures) -> Figures:
        return Figures(self.cost + other.cost, max(self.depth, other.depth),
                       self.aliases + other.aliases, self.directives + other.directives)


NOTHING = Figures()


class Analysis:
    """The figures of one operation of a document, with the request's variables."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any] | None) -> None:
        self.schema = schema
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self.variables = dict(variables or {})
        self._memo: dict[tuple[str, int | None], Figures] = {}
        self._open: set[str] = set()
        # The first page size out of range (argument name, value): refused before anything runs.
        self.bad_page: tuple[str, int] | None = None

    def operation(self, operation: OperationDefinitionNode) -> Figures:
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            if name not in self.variables and isinstance(definition.default_value, IntValueNode):
                self.variables[name] = int(definition.default_value.value)
        root = self.schema.get_root_type(operation.operation)
        figures = self.selections(root, operation.selection_set, None, mutation=operation.operation is OperationType.MUTATION)
        return Figures(figures.cost, figures.depth, figures.aliases, figures.directives + len(operation.directives or ()))

    def selections(self, parent: Any, selection_set: SelectionSetNode | None, page: int | None, *, mutation: bool = False) -> Figures:
        """The sum of a selection set's figures; ``page`` is the length of the lists it holds
        when it is a connection's (its `first` / `last`)."""
        total = NOTHING
        for selection in selection_set.selections if selection_set is not None else ():
            directives = len(selection.directives or ())
            if isinstance(selection, FieldNode):
                found = self.field(parent, selection, page)
                if mutation:
                    found = Figures(found.cost + MUTATION_COST, found.depth, found.aliases, found.directives)
            elif isinstance(selection, InlineFragmentNode):
                condition = self.schema.get_type(selection.type_condition.name.value) if selection.type_condition else parent
                found = self.selections(condition, selection.selection_set, page)
            else:
                found = self.spread(selection, page)
            total = total + found + Figures(directives=directives)
        return total

    def spread(self, spread: FragmentSpreadNode, page: int | None) -> Figures:
        name = spread.name.value
        key = (name, page)
        if key in self._memo:
            return self._memo[key]
        fragment = self.fragments.get(name)
        if fragment is None or name in self._open:  # unknown, or a cycle: validation reports it
            return NOTHING
        self._open.add(name)
        try:
            found = self.selections(self.schema.get_type(fragment.type_condition.name.value), fragment.selection_set, page)
        finally:
            self._open.discard(name)
        self._memo[key] = found
        return found

    def field(self, parent: Any, node: FieldNode, page: int | None) -> Figures:
        aliases = 1 if node.alias is not None else 0
        name = node.name.value
        if name.startswith("__"):
            return Figures(cost=0 if name == "__typename" else INTROSPECTION_COST, aliases=aliases)
        definition = getattr(parent, "fields", {}).get(name) if parent is not None else None
        if definition is None:  # unknown to the schema: validation reports it
            return Figures(cost=1, aliases=aliases)
        if is_leaf_type(get_named_type(definition.type)):
            return Figures(aliases=aliases)
        size = self.page_size(node) if ("first" in definition.args or "last" in definition.args) else None
        inner = get_named_type(definition.type)
        children = self.selections(inner, node.selection_set, size if not _is_list(definition.type) else None)
        if _is_list(definition.type):
            length = size if size is not None else page if page is not None else LIST_LENGTH
            cost = length * (1 + children.cost)
        else:
            cost = 1 + children.cost
        return Figures(cost, 1 + children.depth, aliases + children.aliases, children.directives)

    def page_size(self, node: FieldNode) -> int:
        """The field's `first` or `last` (a variable's value when given as one), else the default;
        at most the cap (a larger one is refused with its own error when the field runs)."""
        for argument in node.arguments or ():
            if argument.name.value not in ("first", "last"):
                continue
            value: Any = argument.value
            if isinstance(value, VariableNode):
                value = self.variables.get(value.name.value)
            elif isinstance(value, IntValueNode):
                value = int(value.value)
            if isinstance(value, int) and not isinstance(value, bool):
                if not 0 <= value <= MAX_PAGE_SIZE and self.bad_page is None:
                    self.bad_page = (argument.name.value, value)
                return max(0, min(value, MAX_PAGE_SIZE))
        return DEFAULT_PAGE_SIZE


def _is_list(type_: Any) -> bool:
    return is_list_type(type_.of_type if is_non_null_type(type_) else type_)


def select_operation(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name is not None and o.name.value == operation_name), None)


def measure(schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any] | None = None,
            operation_name: str | None = None) -> Figures:
    """The figures of the operation a request would run (``NOTHING`` when none can be chosen)."""
    return analyse(schema, document, variables, operation_name)[0]


def analyse(schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any] | None = None,
            operation_name: str | None = None) -> tuple[Figures, tuple[str, int] | None]:
    """The figures, and the first page size out of range (`first: 100000`) if there is one."""
    operation = select_operation(document, operation_name)
    if operation is None:
        return NOTHING, None
    analysis = Analysis(schema, document, variables)
    return analysis.operation(operation), analysis.bad_page


class DocumentCache:
    """Parsed documents and their validation errors, by query text, bounded by the total length
    of the texts it holds (an AST takes a roughly constant multiple of its text's size, so this
    bounds memory where a count of entries would not). Texts longer than ``max_entry`` are not
    kept at all: a cache is for the documents clients send again and again, which are small."""

    def __init__(self, max_total: int, max_entry: int) -> None:
        self.max_total, self.max_entry = max_total, max_entry
        self._entries: OrderedDict[str, list[Any]] = OrderedDict()  # text -> [document, errors | None]
        self.size = 0

    def get(self, text: str) -> list[Any] | None:
        entry = self._entries.get(text)
        if entry is not None:
            self._entries.move_to_end(text)
        return entry

    def put(self, text: str, document: DocumentNode) -> None:
        if len(text) > self.max_entry or text in self._entries:
            return
        self._entries[text] = [document, None]
        self.size += len(text)
        while self.size > self.max_total:
            old, _ = self._entries.popitem(last=False)
            self.size -= len(old)


# GraphQL's tokens as graphql-core counts them for its token limit: punctuators, names, numbers
# and strings (a string, even a block string, is one token); comments are matched so that
# nothing inside them counts, and are not counted either. Commas and white space are no tokens.
_TOKEN = re.compile(r'"""(?:\\"""|[^"]|"(?!""))*"""|"(?:\\.|[^"\\\n\r])*"|(#[^\n\r]*)|\.\.\.|[!$&()\[\]{}:=@|]'
                    r"|-?\d[\w.+-]*|[_A-Za-z]\w*")


def over_token_limit(query: str, limit: int) -> bool:
    """Whether ``query`` holds more than ``limit`` tokens, found with one regular-expression scan
    (some 50 times faster than graphql-core's lexer, which would take 100-300 ms to reach the
    limit of a flood). Never more than graphql-core counts, so it refuses nothing the parser
    would accept."""
    count = 0
    for match in _TOKEN.finditer(query):
        if match.group(1) is None:
            count += 1
            if count > limit:
                return True
    return False


def repeat_errors(document: DocumentNode, limit: int) -> list[GraphQLError]:
    """A ``TOO_MANY_REPEATS`` error when a selection set of ``document`` (an operation's or a
    fragment's, as written) selects one response name more than ``limit`` times."""
    stack = [d.selection_set for d in document.definitions if getattr(d, "selection_set", None) is not None]
    while stack:
        selection_set = stack.pop()
        seen: dict[str, int] = {}
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = (selection.alias or selection.name).value
                seen[name] = seen.get(name, 0) + 1
                if seen[name] > limit:
                    return [limit_error(f"`{name}` is selected more than {limit} times in one selection set.",
                                        "TOO_MANY_REPEATS")]
            if getattr(selection, "selection_set", None) is not None:
                stack.append(selection.selection_set)
    return []


def limit_error(message: str, code: str, **extra: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extra})


class DocumentLimits(SchemaExtension):
    """Parse (with the size limits), validate and measure each document before it runs; refuse
    it with a coded error when it passes a limit, and charge its cost to the rate limiter
    (``graphql/ratelimit.py``), whose verdict goes into the HTTP response's headers.

    Built per request from ``settings``, the schema's ``cache`` and its ``limiter``."""

    def __init__(self, settings: Any, cache: DocumentCache, limiter: Any = None) -> None:
        self.settings, self.cache, self.limiter = settings, cache, limiter
        self.figures: Figures | None = None
        self.decision: Any = None

    def on_operation(self) -> Iterator[None]:
        # graphql-core's own limits: the text's length covers comments and whitespace (which the
        # token count does not), the token count covers what a short text can still hold.
        self.execution_context.parse_options.update(
            max_source_length=self.settings.max_query_length, max_tokens=self.settings.max_tokens,
        )
        yield
        self.report_rate()

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        entry = self.cache.get(ctx.query) if ctx.query is not None else None
        if entry is not None:
            ctx.graphql_document = entry[0]
        yield
        if entry is None and ctx.query is not None and ctx.graphql_document is not None:
            self.cache.put(ctx.query, ctx.graphql_document)
        if ctx.graphql_document is None and self.limiter is not None and ctx.context is not None:
            self.decision = self.limiter.charge(ctx.context, self.reading())  # it did not parse: nothing else runs

    def reading(self) -> int:
        """What reading the document costs, whether it then runs or is refused: a point per
        ``CHARACTERS_PER_POINT`` characters (parsing takes some 20-60 us per token), so a client
        cannot keep a worker parsing 5,000-token documents for a point each."""
        return max(1, len(self.execution_context.query or "") // CHARACTERS_PER_POINT)

    def on_validate(self) -> Iterator[None]:
        from strawberry.schema.schema import validate_document  # a cycle at import time

        ctx = self.execution_context
        assert ctx.graphql_document is not None
        # The linear measures first (depth, aliases, directives, cost, page sizes): a document
        # past them is refused without the validation rules' work, which grows with its size.
        errors = self.check(ctx)
        if not errors:
            entry = self.cache.get(ctx.query) if ctx.query is not None else None
            if entry is not None and entry[1] is not None:
                errors = entry[1]
            else:
                # Repeats before validation: its check that repeated selections can merge compares
                # them pairwise (500 copies of one field: 10 s).
                errors = (repeat_errors(ctx.graphql_document, self.settings.max_field_repeats)
                          or validate_document(ctx.schema._schema, ctx.graphql_document, ctx.validation_rules))
                errors = list(errors) or control_character_errors(ctx.graphql_document, None)
                if entry is not None:
                    entry[1] = errors
            errors = list(errors) or control_character_errors(None, ctx.variables)
        if self.limiter is not None and ctx.context is not None:
            charge = self.reading() if errors or self.figures is None else max(self.reading(), self.figures.cost)
            self.decision = self.limiter.charge(ctx.context, charge)
            if not self.decision.allowed:
                errors = [limit_error(
                    f"Rate limit reached: this request costs {charge} points and "
                    f"{self.decision.remaining} are left; retry in {self.decision.retry_after} s.",
                    "RATE_LIMITED", retryAfter=self.decision.retry_after,
                )]
        ctx.pre_execution_errors = errors  # set, so Strawberry's own validation is skipped
        yield

    def check(self, ctx: Any) -> list[GraphQLError]:
        settings = self.settings
        figures, bad_page = analyse(ctx.schema._schema, ctx.graphql_document, ctx.variables, ctx.operation_name)
        self.figures = figures
        request_context.note(cost=_clip(figures.cost))  # for the request's log line and metrics
        if bad_page is not None:  # the same words the list would answer with when it runs
            name, value = bad_page
            said = f"`{name}` must not be negative." if value < 0 else f"`{name}` must be at most {MAX_PAGE_SIZE}."
            return [limit_error(said, "BAD_REQUEST")]
        if figures.depth > settings.max_query_depth:
            return [limit_error(f"The operation exceeds maximum operation depth of {settings.max_query_depth} "
                                f"(it is {figures.depth} deep).", "QUERY_TOO_DEEP")]
        if figures.aliases > settings.max_aliases:
            return [limit_error(f"{_count(figures.aliases)} aliases found (fragments expanded); "
                                f"allowed: {settings.max_aliases}.", "TOO_MANY_ALIASES")]
        if figures.directives > settings.max_directives:
            return [limit_error(f"{_count(figures.directives)} directives found (fragments expanded); "
                                f"allowed: {settings.max_directives}.", "TOO_MANY_DIRECTIVES")]
        if figures.cost > settings.max_query_cost:
            return [limit_error(
                f"The query would cost {_count(figures.cost)} points, more than the {settings.max_query_cost} "
                "one request may; ask for smaller pages (`first`) or fewer nested lists (see docs/api.md).",
                "QUERY_TOO_COSTLY", cost={"requested": _clip(figures.cost), "limit": settings.max_query_cost},
            )]
        return []

    def report_rate(self) -> None:
        """The rate limit's headers on the HTTP response (and 429 when the request was refused)."""
        context = self.execution_context.context
        response = getattr(context, "response", None)
        if self.limiter is None or response is None or not hasattr(response, "headers"):
            return
        decision = self.decision or self.limiter.peek(context)
        for name, value in decision.headers().items():
            response.headers[name] = value
        if not decision.allowed:
            response.status_code = 429

    def get_results(self) -> dict[str, Any]:
        if self.figures is None or self.execution_context.graphql_document is None:
            return {}
        operation = select_operation(self.execution_context.graphql_document, self.execution_context.operation_name)
        if operation is None or operation.operation is OperationType.SUBSCRIPTION:
            return {}
        return {"cost": {"requested": _clip(self.figures.cost), "limit": self.settings.max_query_cost}}


def _clip(value: int) -> int:
    """A cost as JSON can carry it (a fragment fan-out's figure can pass 2**64)."""
    return min(value, 2**53)


def _count(value: int) -> str:
    return str(value) if value < 10**15 else "more than 10^15"
