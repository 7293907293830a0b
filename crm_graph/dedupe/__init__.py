"""Duplicate customers: the rules that find them, and merging them into one."""
