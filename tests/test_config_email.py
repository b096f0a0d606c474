"""The [email] section of digest.toml: defaults, and one clear line for each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.config import config_from_dict
from digest.errors import ConfigError


def email(**settings: object) -> dict[str, object]:
    return {"email": {"to": ["a@example.org"], "from": "d@example.com", **settings}}


def test_defaults_follow_the_security_mode(tmp_path: Path) -> None:
    config = config_from_dict(email(), source="digest.toml", base=tmp_path)
    assert config.email is not None
    assert (config.email.security, config.email.smtp_port, config.email.password_env,
            config.email.empty) == ("starttls", 587, "DIGEST_SMTP_PASSWORD", "skip")
    ssl = config_from_dict(email(security="ssl", ca_file="ca.pem", archive_url="https://x/"),
                           source="digest.toml", base=tmp_path).email
    assert ssl is not None
    assert (ssl.smtp_port, ssl.ca_file, ssl.archive_url) == (465, tmp_path / "ca.pem",
                                                             "https://x")
    assert config_from_dict({}, source="digest.toml", base=tmp_path).email is None


@pytest.mark.parametrize(("settings", "message"), [
    ({"to": []}, "to must be a list of one or more mail addresses"),
    ({"to": ["a@example.org\r\nBcc: b@example.org"]}, "to must be a list"),
    ({"from": "nobody"}, "from must be a mail address"),
    ({"security": "tls"}, "security must be one of 'starttls', 'ssl', 'none'"),
    ({"empty": "always"}, "empty must be one of 'skip', 'notice'"),
    ({"smtp_port": "25"}, "smtp_port must be a whole number"),
    ({"timeout": -1}, "timeout must be a number of seconds"),
    ({"retries": -1}, "retries must not be negative"),
    ({"password": "hunter2"}, "a password does not belong in the file"),
    ({"smtp_host": "mail\nexample"}, "smtp_host must be a one-line string"),
    ({"colour": "blue"}, "unknown setting(s): colour"),
    ({"unsubscribe": "http://example.org/u"}, "unsubscribe must be an https:// URL"),
    ({"security": "none", "smtp_host": "smtp.example.org", "username": "me"},
     "would send the password in the clear"),
])
def test_a_bad_email_setting_is_one_clear_line(tmp_path: Path, settings: dict[str, object],
                                               message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(email(**settings), source="digest.toml", base=tmp_path)
    assert str(caught.value).startswith("digest.toml: [email]")
    assert message in str(caught.value) and "hunter2" not in str(caught.value)
