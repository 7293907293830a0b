"""verify_signature(): what a receiver runs on every delivery."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from crm_graph.webhooks.signature import InvalidSignature, sign, verify_signature

BODY = b'{"id":"5f0c","type":"order.paid"}'
NOW = 1_800_000_000


def test_a_signature_made_with_the_secret_verifies():
    header = sign(BODY, "s3cret-s3cret-s3cret", NOW)
    assert verify_signature(BODY, header, "s3cret-s3cret-s3cret", now=NOW + 10) == NOW


def test_the_header_is_t_and_v1_hmac_sha256_of_t_dot_body():
    header = sign(BODY, "s3cret-s3cret-s3cret", NOW)
    expected = hmac.new(b"s3cret-s3cret-s3cret", f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"


@pytest.mark.parametrize(
    "body, secret, now",
    [
        (BODY + b" ", "s3cret-s3cret-s3cret", NOW),  # body changed on the way
        (BODY, "another-secret-value", NOW),  # signed with a secret the receiver does not know
        (BODY, "s3cret-s3cret-s3cret", NOW + 301),  # older than the 300 s tolerance: a replay
        (BODY, "s3cret-s3cret-s3cret", NOW - 301),  # from the future
    ],
)
def test_a_changed_body_a_wrong_secret_or_an_old_timestamp_is_refused(body, secret, now):
    header = sign(BODY, "s3cret-s3cret-s3cret", NOW)
    with pytest.raises(InvalidSignature):
        verify_signature(body, header, secret, now=now)


def test_the_tolerance_is_300_seconds_by_default_and_adjustable():
    header = sign(BODY, "s3cret-s3cret-s3cret", NOW)
    assert verify_signature(BODY, header, "s3cret-s3cret-s3cret", now=NOW + 300) == NOW
    with pytest.raises(InvalidSignature):
        verify_signature(BODY, header, "s3cret-s3cret-s3cret", now=NOW + 60, tolerance=30)


def test_during_a_rotation_either_secret_verifies():
    header = sign(BODY, ["new-secret-new-secret", "old-secret-old-secret"], NOW)
    assert header.count("v1=") == 2
    assert verify_signature(BODY, header, "old-secret-old-secret", now=NOW) == NOW
    assert verify_signature(BODY, header, "new-secret-new-secret", now=NOW) == NOW
    # A receiver that rotates its own copy can pass both of its secrets.
    assert verify_signature(BODY, sign(BODY, "new-secret-new-secret", NOW), ["old-secret-old-secret", "new-secret-new-secret"], now=NOW)


@pytest.mark.parametrize("header", [None, "", "v1=abc", f"t={NOW}", "t=soon,v1=abc", "garbage"])
def test_a_missing_or_malformed_header_is_refused(header):
    with pytest.raises(InvalidSignature):
        verify_signature(BODY, header, "s3cret-s3cret-s3cret", now=NOW)
