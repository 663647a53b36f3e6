"""Users, tokens and the login rate limit on each database backend (SQLite, PostgreSQL, TimescaleDB)."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from auth import ratelimit, tokens, users
from db.models import ApiToken
from db.store import open_store


@pytest.fixture
def engine(any_url):
    store = open_store(any_url)
    yield store.engine
    store.close()


def test_users_tokens_and_failures_on_each_backend(engine):
    assert users.ensure_first_admin(engine)  # no users: the first admin, with a one-time password
    assert users.ensure_first_admin(engine) is None
    ana = users.create(engine, "ana", "ana's password", "engineer")
    with pytest.raises(users.UserError) as err:
        users.create(engine, "ana", "another password", "viewer")
    assert err.value.field == "username" and err.value.status == 409
    assert users.authenticate(engine, "ana", "ana's password").last_login_at is not None
    assert users.authenticate(engine, "ana", "wrong password") is None
    assert users.authenticate(engine, "nobody", "ana's password") is None

    row, secret = tokens.create(engine, ana, "script", 7)
    user, token = tokens.lookup(engine, secret)
    assert user.username == "ana" and token.id == row["id"] and token.last_used_at is not None
    assert tokens.lookup(engine, secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    with engine.begin() as conn:
        conn.execute(update(ApiToken).where(ApiToken.id == row["id"])
                     .values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
    assert tokens.lookup(engine, secret) is None
    _row2, secret2 = tokens.create(engine, ana, "other")
    tokens.revoke(engine, _row2["id"], user_id=ana.id)
    assert tokens.lookup(engine, secret2) is None

    now = datetime.now(timezone.utc)
    for i in range(ratelimit.LIMITS["pair"]):
        assert ratelimit.retry_after(engine, "ana", "10.0.0.1", now) == 0
        ratelimit.failed(engine, "ana", "10.0.0.1", now - timedelta(seconds=100 - i))
    wait = ratelimit.retry_after(engine, "ana", "10.0.0.1", now)
    assert 195 <= wait <= 201  # until the oldest failure is five minutes old
    assert ratelimit.retry_after(engine, "ana", "10.0.0.1", now + timedelta(seconds=wait)) == 0
    assert ratelimit.retry_after(engine, "ana", "10.0.0.2", now) == 0  # another address is not held back
    for i in range(ratelimit.USER_SLOW_AFTER - ratelimit.LIMITS["pair"]):  # the name slows down, from anywhere
        assert ratelimit.delay_s(engine, "ana", now) == 0
        ratelimit.failed(engine, "ana", f"10.0.1.{i}", now - timedelta(seconds=50))
    assert ratelimit.delay_s(engine, "ANA ", now) == 1.0
    ratelimit.succeeded(engine, "ana", "10.0.0.1")
    assert ratelimit.retry_after(engine, "ana", "10.0.0.1", now) == 0


def test_two_workers_starting_together_make_one_first_admin(engine):
    results = []
    barrier = threading.Barrier(4)

    def start():
        barrier.wait()
        results.append(users.ensure_first_admin(engine))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert users.count(engine) == 1
    assert sum(r is not None for r in results) == 1  # printed by one worker only
