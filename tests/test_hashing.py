from mixtape.hashing import SHARD_SALT, canonical_json, digest128, rng_for, unit_interval


def test_rng_depends_only_on_seed_and_key():
    a = rng_for(1, "freesound:1/0/1").random(4)
    b = rng_for(1, "freesound:1/0/1").random(4)
    assert (a == b).all()
    assert not (a == rng_for(2, "freesound:1/0/1").random(4)).any()
    assert not (a == rng_for(1, "freesound:1/0/2").random(4)).any()
    assert not (a == rng_for(1, "freesound:1/0/1", "crop").random(4)).any()


def test_digest_is_128_bit_hex_and_salted():
    d = digest128("k", SHARD_SALT)
    assert len(d) == 32 and int(d, 16) >= 0
    assert d != digest128("k", b"other-salt")
    assert 0 <= unit_interval(d) < 1


def test_canonical_json_is_order_independent():
    assert canonical_json({"b": 1, "a": [1, 2]}) == canonical_json({"a": [1, 2], "b": 1})
