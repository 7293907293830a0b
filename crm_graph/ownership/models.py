"""The ownership domain has no tables of its own: owners are the ``owner_id`` and ``team_id``
columns of ``OwnedMixin`` (``crm_graph/db/base.py``) on each owned table."""
