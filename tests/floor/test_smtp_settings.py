"""--smtp-url [OEE_SMTP_URL]: checked at start (a typo fails the start, not the first alert), and its password is
in no error, no repr of the settings and no repr of the notifier."""
from __future__ import annotations

import pytest

from alerting.notify import Notifier, smtp_display
from processes.settings import SettingsError, from_args


@pytest.mark.parametrize("url", ["http://user:Hidden-Pw@mail.example", "smtp://user:Hidden-Pw@", "mail.example:25",
                                 "smtp://user:Hidden-Pw@mail.example:notaport"])
def test_a_bad_smtp_url_fails_the_start_without_its_password(url):
    with pytest.raises(SettingsError) as exc:
        from_args(["--smtp-url", url])
    assert "--smtp-url" in str(exc.value) and "Hidden-Pw" not in str(exc.value)


def test_a_good_smtp_url_is_kept_and_never_shown():
    s = from_args(["--smtp-url", "smtp://alerts:Hidden-Pw@mail.example:587", "--smtp-from", "oee@plant.example"])
    assert s.smtp_url.endswith("@mail.example:587") and s.smtp_from == "oee@plant.example"
    assert "Hidden-Pw" not in repr(s)
    assert "Hidden-Pw" not in repr(Notifier(None, smtp_url=s.smtp_url))
    assert smtp_display(s.smtp_url) == "smtp://mail.example:587"
    assert smtp_display("smtps://u:p@mail.example") == "smtps://mail.example:465"
