"""The webhook signature a receiver checks, and the README's verification example, run against the signer."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable

import pytest

from services.common.settings import PROJECT_ROOT
from services.notifier.webhook_signature import signature_header

BODY = '{"delivery_id":"5b0c","saved_search":{"id":"ss_x","name":"Crické"},"video":{}}'.encode()


def readme_verify() -> Callable[..., bool]:
    """The ``verify`` function of the README's Webhooks section, exactly as printed there."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme[readme.index("#### Webhooks") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the Webhooks section shows a Python example"
    namespace: dict[str, object] = {}
    exec(compile(match.group(1), "README.md (Webhooks)", "exec"), namespace)
    verify = namespace["verify"]
    assert callable(verify)
    return verify


def test_the_header_is_the_timestamp_then_one_hmac_of_timestamp_dot_body_per_secret() -> None:
    header = signature_header(["new", "old"], 1764700000, BODY)
    expected = [
        hmac.new(secret.encode(), b"1764700000." + BODY, hashlib.sha256).hexdigest() for secret in ("new", "old")
    ]
    assert header == f"t=1764700000,v1={expected[0]},v1={expected[1]}"


def test_a_webhook_is_never_sent_unsigned() -> None:
    with pytest.raises(ValueError):
        signature_header([], 1764700000, BODY)


def test_the_readme_example_accepts_a_real_signature_with_either_secret_of_a_rotation() -> None:
    verify = readme_verify()
    header = signature_header(["new-secret", "old-secret"], int(time.time()), BODY)
    assert verify("new-secret", header, BODY)
    assert verify("old-secret", header, BODY)


@pytest.mark.parametrize(
    ("secret", "body", "age_seconds"),
    [
        ("another-secret", BODY, 0),  # not the receiver's secret
        ("new-secret", BODY.replace(b"ss_x", b"ss_y"), 0),  # the body was changed
        ("new-secret", BODY, 600),  # recorded ten minutes ago and replayed
    ],
)
def test_the_readme_example_refuses_a_wrong_secret_a_changed_body_and_an_old_timestamp(
    secret: str, body: bytes, age_seconds: int
) -> None:
    verify = readme_verify()
    header = signature_header(["new-secret"], int(time.time()) - age_seconds, BODY)
    assert not verify(secret, header, body)


def test_the_readme_example_refuses_a_header_without_a_timestamp_or_a_signature() -> None:
    verify = readme_verify()
    header = signature_header(["new-secret"], int(time.time()), BODY)
    v1_only = header.split(",", 1)[1]
    assert not verify("new-secret", v1_only, BODY)
    assert not verify("new-secret", header.split(",")[0], BODY)
