"""Auth, permission and metrics settings: both key spellings, DAGU_AUTH_* variables, errors."""

from __future__ import annotations

import pytest
import yaml

from dagu.config import ConfigError, load_settings


def _settings(tmp_path, config, env=None):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return load_settings(dagu_home=str(tmp_path), environ=env or {})


def test_defaults_are_mode_none_and_everything_allowed(tmp_path):
    s = _settings(tmp_path, {})
    assert s.auth.mode == "none"
    assert s.auth.token_ttl_s == 24 * 3600
    assert s.auth.admin_username == "admin"
    assert s.permissions_write_dags and s.permissions_run_dags
    assert not s.metrics_public


def test_camel_case_keys_as_dagu_1_30_writes_them(tmp_path):
    s = _settings(tmp_path, {
        "metrics": "public",
        "permissions": {"writeDAGs": False, "runDAGs": False},
        "auth": {
            "mode": "builtin",
            "basic": {"username": "u", "password": "p"},
            "token": {"value": "static"},
            "builtin": {"admin": {"username": "root", "password": "rootpass1"}, "token": {"secret": "sec", "ttl": "2h"}},
            "oidc": {
                "clientId": "cid", "clientSecret": "csec", "clientUrl": "http://x/", "issuer": "http://idp/",
                "scopes": ["openid", "email"], "whitelist": ["a@b.c"],
                "roleMapping": {"groupsClaim": "roles", "groupMappings": {"admins": "admin"}, "defaultRole": "operator"},
            },
        },
    })
    a = s.auth
    assert (a.mode, a.basic_username, a.basic_password, a.token) == ("builtin", "u", "p", "static")
    assert (a.admin_username, a.admin_password, a.token_secret, a.token_ttl_s) == ("root", "rootpass1", "sec", 7200)
    o = a.oidc
    assert (o.client_id, o.client_secret, o.client_url, o.issuer) == ("cid", "csec", "http://x", "http://idp")
    assert o.scopes == ("openid", "email") and o.whitelist == ("a@b.c",)
    assert (o.groups_claim, dict(o.role_mapping), o.default_role) == ("roles", {"admins": "admin"}, "operator")
    assert s.metrics_public and not s.permissions_write_dags and not s.permissions_run_dags


def test_snake_case_keys_and_a_flat_role_mapping(tmp_path):
    s = _settings(tmp_path, {
        "permissions": {"write_dags": False},
        "auth": {
            "builtin": {"initial_admin": {"username": "boss"}, "token": {"secret": "x", "ttl": 90}},
            "oidc": {"client_id": "c", "client_secret": "s", "issuer": "http://i", "scopes": "profile email",
                     "role_mapping": {"ops": "operator"}, "default_role": "none"},
        },
    })
    assert s.auth.mode == "oidc"  # inferred: client id, secret and issuer are all set
    assert s.auth.admin_username == "boss" and s.auth.token_ttl_s == 90
    assert s.auth.oidc.scopes == ("openid", "profile", "email")
    assert dict(s.auth.oidc.role_mapping) == {"ops": "operator"} and s.auth.oidc.default_role == "none"
    assert not s.permissions_write_dags and s.permissions_run_dags


def test_environment_variables_override_the_file(tmp_path):
    env = {
        "DAGU_AUTH_MODE": "builtin",
        "DAGU_AUTH_BASIC_USERNAME": "eu", "DAGU_AUTH_BASIC_PASSWORD": "ep",
        "DAGU_AUTH_TOKEN": "etok",
        "DAGU_AUTH_ADMIN_USERNAME": "eadmin", "DAGU_AUTH_ADMIN_PASSWORD": "eadminpass",
        "DAGU_AUTH_TOKEN_SECRET": "esec", "DAGU_AUTH_TOKEN_TTL": "30m",
        "DAGU_AUTH_OIDC_CLIENT_ID": "ecid", "DAGU_AUTH_OIDC_ISSUER": "http://eidp",
        "DAGU_AUTH_OIDC_WHITELIST": "a@x,b@x", "DAGU_SERVER_METRICS": "public",
    }
    s = _settings(tmp_path, {"auth": {"mode": "none", "token": {"value": "file"}}}, env)
    a = s.auth
    assert (a.mode, a.basic_username, a.basic_password, a.token) == ("builtin", "eu", "ep", "etok")
    assert (a.admin_username, a.admin_password, a.token_secret, a.token_ttl_s) == ("eadmin", "eadminpass", "esec", 1800)
    assert (a.oidc.client_id, a.oidc.issuer, a.oidc.whitelist) == ("ecid", "http://eidp", ("a@x", "b@x"))
    assert s.metrics_public


def test_legacy_variable_names_still_work(tmp_path):
    s = _settings(tmp_path, {}, {"DAGU_BASICAUTH_USERNAME": "lu", "DAGU_BASICAUTH_PASSWORD": "lp", "DAGU_AUTHTOKEN": "lt"})
    assert (s.auth.basic_username, s.auth.basic_password, s.auth.token) == ("lu", "lp", "lt")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"auth": {"mode": "ldap"}}, "auth.mode: expected one of none, basic, builtin, oidc"),
        ({"metrics": "open"}, "metrics: expected public or private"),
        ({"permissions": {"writeDAGs": "maybe"}}, "permissions.writeDAGs"),
        ({"auth": {"builtin": {"token": {"ttl": "soon"}}}}, "auth.builtin.token.ttl"),
    ],
)
def test_bad_values_name_the_key(tmp_path, config, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        _settings(tmp_path, config)
