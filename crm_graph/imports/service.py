"""Rules of imports."""

from __future__ import annotations
