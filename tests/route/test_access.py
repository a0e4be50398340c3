"""The access check's path rules and decisions (pure functions)."""

from __future__ import annotations

import pytest

from functions.route.access import BadPath, Decision, Target, decide, parse_path

ENV = "0123456789ab"


@pytest.mark.parametrize("path,rest", [
    (f"/user/alice/{ENV}", "/"),
    (f"/user/alice/{ENV}/", "/"),
    (f"/user/alice/{ENV}/_stcore/health", "/_stcore/health"),
    (f"/user/alice/{ENV}/media/a.b.png", "/media/a.b.png"),
    (f"/user/alice/{ENV}/files/...hidden", "/files/...hidden"),
])
def test_good_paths_parse(path, rest):
    assert parse_path(path) == Target("alice", ENV, rest)


@pytest.mark.parametrize("path", [
    "/", "/user/", "/user/alice", "/hub/", "/userx/alice/" + ENV,
    f"/user/alice/{ENV}/../../bob/{ENV}/",
    f"/user/alice/{ENV}/..",
    f"/user/alice/{ENV}/.",
    f"/user/alice/{ENV}/./x",
    f"/user/alice/{ENV}/%2e%2e/%2e%2e/bob/{ENV}/",
    f"/user/alice/{ENV}/%2E%2E/bob/",
    f"/user/alice/{ENV}/%2E./bob/",
    f"/user/alice/{ENV}/.%2e/bob/",
    f"/user/alice/{ENV}/..%2f..%2fbob/{ENV}/",
    f"/user/alice/{ENV}/..%2F..%2Fbob/{ENV}/",
    f"/user/alice/{ENV}/..%5c..%5cbob/",
    f"/user/alice/{ENV}/%252e%252e/bob/",
    f"/user/alice/{ENV}\\..\\..\\bob",
    f"/user//alice/{ENV}/",
    f"/user/alice//{ENV}/",
    f"/user/alice/{ENV}//x",
    f"/user/alice/{ENV}/x%00y",
    f"/user/alice/{ENV}/x\ny",
    f"/user/al ice/{ENV}/",
    "/user/alice/NOTANENVID01/",
    "/user/../admin/" + ENV,
    f"/user/%61lice/{ENV}/",
])
def test_tricky_paths_are_refused(path):
    with pytest.raises(BadPath):
        parse_path(path)


def test_decisions():
    target = Target("alice", ENV, "/")
    assert decide(None, target) == Decision.SIGN_IN
    assert decide("alice", target) == Decision.ALLOW
    assert decide("bob", target) == Decision.DENY
    assert decide("Alice", target) == Decision.DENY  # ids are exact
