"""Tables of exports."""

from __future__ import annotations
