import os
import stat

import pytest

from keys.master import ENV, SecretKeyError, derive_key, load_master_secret


def test_a_secret_is_created_once_with_owner_only_permissions(tmp_path):
    first = load_master_secret(tmp_path, environ={})
    assert len(first) >= 32
    assert stat.S_IMODE(os.stat(tmp_path / "secret.key").st_mode) == 0o600
    assert load_master_secret(tmp_path, environ={}) == first


def test_the_environment_wins_and_a_short_secret_is_refused_by_name(tmp_path):
    assert load_master_secret(tmp_path, environ={ENV: "x" * 40}) == b"x" * 40
    assert not (tmp_path / "secret.key").exists()
    with pytest.raises(SecretKeyError, match=ENV):
        load_master_secret(tmp_path, environ={ENV: "short"})


def test_keys_differ_by_purpose():
    master = b"m" * 40
    assert derive_key(master, "session") != derive_key(master, "plc-credentials")
    assert derive_key(master, "session") == derive_key(master, "session")
