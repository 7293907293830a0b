"""Tables of dedupe."""

from __future__ import annotations
