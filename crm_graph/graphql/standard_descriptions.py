"""Descriptions of the members that mean the same wherever they appear: the page arguments of
every list, its ordering, optimistic concurrency, the errors of every payload, and the root
types. They are given once, here, when the schema is assembled (crm_graph/graphql/schema.py); a
field that says more about one of them keeps its own text. crm_graph/graphql/descriptions.py
checks that nothing else is left without one."""

from __future__ import annotations

from graphql import GraphQLInterfaceType, GraphQLObjectType, GraphQLSchema
from graphql.type.introspection import introspection_types

STANDARD_ARGUMENTS = {
    "first": "Return at most this many rows from the start of the list (or after `after`): 0 to 100. "
             "Without `first` and `last`, 20.",
    "after": "Start after the row with this cursor (an `endCursor` or `cursor` of an earlier page of the same list and ordering).",
    "last": "Return at most this many rows from the end of the list (or before `before`): 0 to 100. "
            "Not together with `first`.",
    "before": "End before the row with this cursor (a `startCursor` or `cursor` of an earlier page of the same list and ordering).",
    "orderBy": "Sort keys, the most significant first. The ID breaks the last tie, so pages never overlap.",
    "expectedVersion": "The `version` you last read. If the record changed since, the answer is VERSION_CONFLICT "
                       "and nothing changes; leave it out to write regardless.",
}
ROOT_TYPES = {
    "Query": "Everything you can read. Each field says which permission it needs; lists are paged with cursors.",
    "Mutation": "Everything you can change. Each mutation answers with a payload: the record as it is now, and "
                "`errors` for input it refused.",
    "Subscription": "Live updates over WebSocket (graphql-transport-ws), for records you may read.",
}
PAYLOAD_ERRORS = ("What was wrong with the input, one entry per problem with the input field's path and a code; "
                  "empty when the mutation did what it was asked.")


def describe_standard_members(schema: GraphQLSchema) -> None:
    """Give the standard members (``STANDARD_ARGUMENTS``, a payload's ``errors``) their text
    wherever the field that has them says nothing of its own, and the root types theirs."""
    for root in (schema.query_type, schema.mutation_type, schema.subscription_type):
        if root is not None and not root.description:
            root.description = ROOT_TYPES.get(root.name)
    for named in schema.type_map.values():
        if not isinstance(named, GraphQLObjectType | GraphQLInterfaceType) or named.name in introspection_types:
            continue
        for field_name, field in named.fields.items():
            if field_name == "errors" and named.name.endswith("Payload") and not field.description:
                field.description = PAYLOAD_ERRORS
            for arg_name, arg in field.args.items():
                if not arg.description and arg_name in STANDARD_ARGUMENTS:
                    arg.description = STANDARD_ARGUMENTS[arg_name]
