"""Search over every script: the folded search index, the global `search` query."""
