"""Rules of search."""

from __future__ import annotations
