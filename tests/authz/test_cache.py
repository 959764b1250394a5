"""The identity cache around the providers: hits, expiry, failures, single flight, outages, rotation."""

from __future__ import annotations

import asyncio
import time

from authz_service.server import start
from fakes import FakeClock, FakeProviders
from mcp_pa.core.settings import Settings
from tests.authz.conftest import AUTH0_AUDIENCE, GOOGLE_CLIENT, AuthzClient, issuer, make_settings, serve


async def serve_on(settings: Settings, clock: FakeClock) -> AuthzClient:
    """The service with every clock of its pipeline replaced by `clock`."""
    return AuthzClient(await start(settings, "127.0.0.1:0", clock=clock))


async def test_repeated_token_makes_no_second_provider_call(fake: FakeProviders, authz: AuthzClient) -> None:
    fake.add_google_token("ya29.repeat", sub="c-1", aud=GOOGLE_CLIENT)
    before = fake.count("/google/tokeninfo")
    for _ in range(5):
        assert (await authz.bearer("ya29.repeat")).allowed
    assert fake.count("/google/tokeninfo") - before == 1


async def test_token_expiry_bounds_the_cache_lifetime(fake: FakeProviders) -> None:
    clock = FakeClock()
    client = await serve_on(make_settings(fake), clock)
    try:
        fake.add_google_token("ya29.short-lived", sub="c-2", aud=GOOGLE_CLIENT, expires_in=60)
        before = fake.count("/google/tokeninfo")
        assert (await client.bearer("ya29.short-lived")).allowed
        clock.advance(59)  # inside the token's lifetime: still the cached identity
        assert (await client.bearer("ya29.short-lived")).allowed
        assert fake.count("/google/tokeninfo") - before == 1
        clock.advance(2)  # past exp, well inside the 300 s cache TTL
        fake.google_tokens.pop("ya29.short-lived")  # Google forgets expired tokens
        assert (await client.bearer("ya29.short-lived")).status == 401
        assert fake.count("/google/tokeninfo") - before == 2
    finally:
        await client.close()


async def test_cache_ttl_setting_bounds_the_cache_lifetime(fake: FakeProviders) -> None:
    client = await serve(make_settings(fake, token_cache_ttl=0))
    try:
        fake.add_google_token("ya29.no-cache", sub="c-3", aud=GOOGLE_CLIENT)
        before = fake.count("/google/tokeninfo")
        for _ in range(3):
            assert (await client.bearer("ya29.no-cache")).allowed
        assert fake.count("/google/tokeninfo") - before == 3
    finally:
        await client.close()


async def test_refusals_are_cached_briefly(fake: FakeProviders, authz: AuthzClient) -> None:
    before = fake.count("/google/tokeninfo")
    for _ in range(3):
        assert (await authz.bearer("ya29.never-valid")).status == 401
    assert fake.count("/google/tokeninfo") - before == 1


async def test_concurrent_checks_of_one_new_token_make_one_provider_call(fake: FakeProviders, authz: AuthzClient) -> None:
    fake.add_google_token("ya29.thundering-herd", sub="c-4", aud=GOOGLE_CLIENT)
    before = fake.count("/google/tokeninfo")
    results = await asyncio.gather(*(authz.bearer("ya29.thundering-herd") for _ in range(25)))
    assert all(r.allowed for r in results)
    assert fake.count("/google/tokeninfo") - before == 1


async def test_a_caller_giving_up_does_not_cancel_the_shared_provider_call(fake: FakeProviders, authz: AuthzClient) -> None:
    import grpc

    from tests.support.authz import check_request

    fake.add_google_token("ya29.slow-but-fine", sub="c-8", aud=GOOGLE_CLIENT)
    fake.slow_down("/google/tokeninfo", 0.5)
    before = fake.count("/google/tokeninfo")
    try:
        impatient = asyncio.ensure_future(authz.stub.Check(check_request({"authorization": "Bearer ya29.slow-but-fine"}), timeout=0.2))
        await asyncio.sleep(0.05)  # the impatient caller starts the provider call
        waited = await authz.bearer("ya29.slow-but-fine")
        gave_up = (await asyncio.gather(impatient, return_exceptions=True))[0]
    finally:
        fake.recover()
    assert isinstance(gave_up, grpc.aio.AioRpcError) and gave_up.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert waited.allowed
    assert (await authz.bearer("ya29.slow-but-fine")).allowed
    assert fake.count("/google/tokeninfo") - before == 1


async def test_outage_keeps_cached_identities_working_and_sends_new_opaque_tokens_to_503(fake: FakeProviders, authz: AuthzClient) -> None:
    fake.add_google_token("ya29.cached-before-outage", sub="c-5", aud=GOOGLE_CLIENT)
    fake.add_google_token("ya29.new-during-outage", sub="c-6", aud=GOOGLE_CLIENT)
    assert (await authz.bearer("ya29.cached-before-outage")).allowed
    assert (await authz.bearer(issuer(fake, "google").mint(GOOGLE_CLIENT, sub="c-jwks-loaded"))).allowed
    fake.fail("/google/", 503)
    try:
        assert (await authz.bearer("ya29.cached-before-outage")).allowed
        assert (await authz.bearer("ya29.new-during-outage")).status == 503
        # JWTs signed with a key we already hold keep verifying while the JWKS endpoint is down.
        assert (await authz.bearer(issuer(fake, "google").mint(GOOGLE_CLIENT, sub="c-7"))).allowed
    finally:
        fake.recover()


async def test_key_rotation_is_accepted_after_one_jwks_refetch(fake: FakeProviders) -> None:
    rotating = fake.issuer("/rotating")
    clock = FakeClock()
    client = await serve_on(make_settings(fake, auth0_issuer=rotating.issuer + "/", auth0_jwks_url=rotating.jwks_url, jwks_refetch_cooldown=30.0), clock)
    rotating.issuer += "/"
    try:
        old_token = rotating.mint(AUTH0_AUDIENCE, sub="auth0|rot")
        assert (await client.bearer(old_token)).allowed
        assert fake.count("/rotating/jwks") == 1
        new_key = rotating.rotate()
        new_token = rotating.mint(AUTH0_AUDIENCE, sub="auth0|rot2", key=new_key)
        clock.advance(29)  # inside the unknown-kid cooldown since the first fetch: no refetch yet
        assert (await client.bearer(new_token)).status == 401
        assert fake.count("/rotating/jwks") == 1
        clock.advance(2)  # past it (a different token: the refusal above is cached)
        d = await client.bearer(rotating.mint(AUTH0_AUDIENCE, sub="auth0|rot3", key=new_key))
        assert d.allowed, d.body
        assert fake.count("/rotating/jwks") == 2
        assert (await client.bearer(old_token)).allowed  # still cached until it expires
    finally:
        await client.close()


async def test_jwks_outage_with_no_key_set_yet_is_503(fake: FakeProviders) -> None:
    cold = fake.issuer("/cold")
    cold.issuer += "/"
    client = await serve(make_settings(fake, auth0_issuer=cold.issuer, auth0_jwks_url=cold.jwks_url))
    fake.fail("/cold/jwks", 500)
    try:
        assert (await client.bearer(cold.mint(AUTH0_AUDIENCE))).status == 503
    finally:
        fake.recover()
        await client.close()


async def test_cache_is_bounded(fake: FakeProviders) -> None:
    client = await serve(make_settings(fake, token_cache_max_entries=100))
    try:
        auth0 = issuer(fake, "auth0")
        for i in range(130):
            assert (await client.bearer(auth0.mint(AUTH0_AUDIENCE, sub=f"auth0|bound-{i}-{time.time()}"))).allowed
        assert len(client.running.pipeline.cache) <= 100
    finally:
        await client.close()


def test_jwks_lifetime_follows_cache_control_within_bounds() -> None:
    from authz_service.providers.jwks import DEFAULT_MAX_AGE, MAX_MAX_AGE, MIN_MAX_AGE, _max_age

    assert _max_age("public, max-age=1200, must-revalidate") == 1200
    assert _max_age("max-age=5") == MIN_MAX_AGE  # a tiny max-age must not turn into a refetch storm
    assert _max_age("max-age=99999999") == MAX_MAX_AGE
    assert _max_age("no-store") == MIN_MAX_AGE
    assert _max_age(None) == DEFAULT_MAX_AGE


def test_jwks_keeps_only_asymmetric_signing_keys_with_their_algorithms() -> None:
    from authz_service.providers.jwks import parse_jwks
    from fakes import SigningKey

    rsa, ec = SigningKey("RS256"), SigningKey("ES256")
    keys = parse_jwks({"keys": [
        rsa.public_jwk(),
        {k: v for k, v in ec.public_jwk().items() if k != "alg"},  # no alg: the curve decides
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {**SigningKey("RS256", kid="enc").public_jwk(), "use": "enc"},
    ]})
    assert set(keys) == {rsa.kid, ec.kid}
    assert keys[rsa.kid].algorithms == {"RS256"}  # the JWK's own alg narrows the RSA family
    assert keys[ec.kid].algorithms == {"ES256"}
