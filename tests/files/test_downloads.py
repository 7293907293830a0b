"""Stored files and their signed links (crm_graph/files): a link serves its owner's file until
it expires and while the owner can still act; anything else gets a clear refusal, never the file."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa

from crm_graph.auth.models import User
from crm_graph.core.clock import utcnow
from crm_graph.files import service
from crm_graph.files.models import StoredFile
from crm_graph.testing.auth import make_key

CONTENT = "name,city\n张伟,北京\n".encode("utf-8-sig")


async def _stored(db, owner: str | None, **kwargs) -> StoredFile:
    async with db.writer() as session, session.begin():
        return await service.store(session, purpose="export", name="客户 export.csv", content_type="text/csv",
                                   content=CONTENT, owner=owner, **kwargs)


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def test_a_link_serves_its_owners_file(http, db, settings) -> None:
    _, user_id = await make_key(db, settings, role="SALES", email="rep@example.com")
    stored = await _stored(db, f"user:{user_id}")
    url = service.download_url(settings, "http://testserver/", stored, f"user:{user_id}")
    answer = await http.get(_path(url), headers={"Authorization": ""})  # the link needs no credentials
    assert answer.status_code == 200
    assert answer.content == CONTENT
    assert answer.headers["content-type"].startswith("text/csv")
    assert "filename*=UTF-8''%E5%AE%A2%E6%88%B7%20export.csv" in answer.headers["content-disposition"]
    assert answer.headers["cache-control"] == "private, no-store"
    assert stored.size == len(CONTENT) and len(stored.sha256) == 64


async def test_tampered_expired_and_foreign_links_are_refused(http, db, settings) -> None:
    _, owner_id = await make_key(db, settings, role="SALES", email="rep@example.com")
    _, other_id = await make_key(db, settings, role="SALES", email="other@example.com")
    stored = await _stored(db, f"user:{owner_id}")
    good = _path(service.download_url(settings, "http://testserver/", stored, f"user:{owner_id}"))

    tampered = good.replace(f"principal=user%3A{owner_id}", f"principal=user%3A{other_id}")
    answer = await http.get(tampered)
    assert (answer.status_code, answer.json()["error"]["code"]) == (403, "BAD_SIGNATURE")

    expired = _path(service.download_url(settings, "http://testserver/", stored, f"user:{owner_id}", ttl=-1))
    answer = await http.get(expired)
    assert (answer.status_code, answer.json()["error"]["code"]) == (403, "LINK_EXPIRED")

    # Correctly signed, but for someone who does not own the file.
    foreign = _path(service.download_url(settings, "http://testserver/", stored, f"user:{other_id}"))
    answer = await http.get(foreign)
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "NOT_FOUND")
    assert CONTENT not in answer.content

    for path in ("/files/nonsense/x.csv?expires=1&principal=user:1&signature=x", "/files/x/y.csv"):
        answer = await http.get(path)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "NOT_FOUND"


async def test_a_link_stops_when_its_owner_cannot_act(http, db, settings) -> None:
    _, user_id = await make_key(db, settings, role="SALES", email="rep@example.com")
    stored = await _stored(db, f"user:{user_id}")
    url = _path(service.download_url(settings, "http://testserver/", stored, f"user:{user_id}"))
    async with db.writer() as session, session.begin():
        await session.execute(sa.update(User).where(User.id == user_id).values(active=False))
    answer = await http.get(url)
    assert (answer.status_code, answer.json()["error"]["code"]) == (403, "FORBIDDEN")


async def test_expired_files_are_pruned(db) -> None:
    now = utcnow()
    gone = await _stored(db, "user:1", expires_at=now - timedelta(minutes=1))
    kept = await _stored(db, "user:1", expires_at=now + timedelta(days=1))
    forever = await _stored(db, "user:1")
    async with db.writer() as session, session.begin():
        assert await service.prune(session, now) == 1
    async with db.reader() as session:
        left = set(await session.scalars(sa.select(StoredFile.id)))
    assert left == {kept.id, forever.id} and gone.id not in left


def test_links_carry_expiry_principal_and_signature(settings) -> None:
    stored = StoredFile(id=7, name="a b.csv")
    url = service.download_url(settings, "https://crm.example.com/", stored, "api_key:3", ttl=60)
    parts = urlsplit(url)
    assert parts.netloc == "crm.example.com" and parts.path.endswith("/a%20b.csv")
    query = parse_qs(parts.query)
    assert query["principal"] == ["api_key:3"] and query["signature"][0]
    assert service.check_link(settings, 7, int(query["expires"][0]), "api_key:3", query["signature"][0]) is None
    assert service.check_link(settings, 8, int(query["expires"][0]), "api_key:3", query["signature"][0]) == "BAD_SIGNATURE"
