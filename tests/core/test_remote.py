"""What adapters of remote programs share: the base URL check and credentials scrubbed from the
remote's words before a user sees them."""

from __future__ import annotations

import pytest

from crm_graph.core.remote import base_url_problem, scrub


@pytest.mark.parametrize(("url", "problem"), [
    ("https://rt.example.com", None),
    ("http://127.0.0.1:8080/rt", None),
    ("", "required"),
    (None, "required"),
    ("ftp://rt.example.com", "not an http(s) address"),
    ("https://", "not an http(s) address"),
    ("https://crm:secret@rt.example.com", "must not hold a user or password"),
    ("https://rt.example.com/?x=1", "query or fragment"),
])
def test_a_base_url_is_an_http_address_without_credentials(url, problem):
    found = base_url_problem(url, "https://rt.example.com")
    assert (found is None) if problem is None else (problem in found)


def test_secrets_are_scrubbed_and_short_ones_do_not_blot_out_the_message():
    said = "login refused for p: wrong password correct-horse-battery in request (ConnectError, attempts failed)"
    out = scrub(said, ["p", "correct-horse-battery", ""])
    assert "correct-horse-battery" not in out and "for ***:" in out
    assert "ConnectError, attempts failed" in out  # the p inside words stays
