"""``auditor collect --notify``: one message per observation that changed something, sent with
apprise to real receivers on 127.0.0.1 (an HTTP server for ``json://``, aiosmtpd for
``mailto://``), nothing when nothing changed, and the URLs (secrets) never shown."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.errors import EXIT_INCOMPLETE, EXIT_NOTIFY_FAILED, EXIT_OK, EXIT_USAGE
from auditor.simulator import Simulator
from auditor.simulator.quarter import scripted_dataset, weekly_collection_times
from auditor.simulator.synthetic import synthetic_dataset

# A path that is a secret on its own (as a Slack or Teams webhook's is).
HOOK_TOKEN = "T0K3N-a1b2c3d4e5f6a7b8c9d0"
SMTP_PASSWORD = "smtp-p4ssw0rd-never-shown"


def _collect(simulator: Simulator, store: Path, moment: datetime, *extra: str, env=None):
    return CliRunner().invoke(
        main,
        [
            "collect",
            "-w",
            simulator.dataset.workspaces[0],
            "--store",
            str(store),
            "--observed-at",
            moment.isoformat(),
            *extra,
        ],
        env={**simulator.credential_env("api_token"), **(env or {})},
    )


def _synthetic(moment: datetime, public_from: datetime | None = None):
    dataset = synthetic_dataset(repos=3, prs_per_repo=1)
    if public_from is not None and moment >= public_from:
        dataset.workspace("synth").repositories["repo-00001"].is_private = False
    return dataset


def test_the_demo_quarter_names_the_public_repository_and_the_removed_restriction_once_each(
    tmp_path, json_receiver
):
    """Weekly collections of the scripted quarter (docs/DEMO.md), as cron would run them."""
    moments = weekly_collection_times()
    store = tmp_path / "evidence.db"
    sent_after: dict[str, int] = {}
    env = {"AUDITOR_NOTIFY": json_receiver.url(f"/auditor/{HOOK_TOKEN}")}
    with Simulator(scripted_dataset(moments[0]), scenario=scripted_dataset) as simulator:
        for moment in moments:
            simulator.set_as_of(moment)
            result = _collect(simulator, store, moment, "-q", env=env)
            # The demo has collection errors by design (secrets-vault is not administered).
            assert result.exit_code == EXIT_INCOMPLETE, result.output
            assert HOOK_TOKEN not in result.output
            sent_after[f"{moment:%m-%d}"] = len(json_receiver.received)
    messages = json_receiver.messages
    per_week = {
        week: count - previous
        for (week, count), previous in zip(
            sent_after.items(), [0, *sent_after.values()], strict=False
        )
    }
    # Nothing for the first observation, nor for the weeks in which nothing changed.
    for unchanged in ("07-01", "07-08", "07-15", "08-12", "08-19"):
        assert per_week[unchanged] == 0, (unchanged, messages)
    # One message for each week with a change (docs/DEMO.md's episodes).
    for changed in (
        "07-22",
        "07-29",
        "08-05",
        "08-26",
        "09-02",
        "09-09",
        "09-16",
        "09-23",
        "09-30",
    ):
        assert per_week[changed] == 1, (changed, per_week)
    made_public = [m for m in messages if "repository made public: acme/ml-models" in m]
    assert len(made_public) == 1, messages
    assert "AC-1" in made_public[0]
    assert "→ FAIL" in made_public[0]
    assert "https://bitbucket.org/acme/ml-models" in made_public[0]
    removed = [
        m
        for m in messages
        if "branch restriction removed: require_passing_builds_to_merge" in m
        and "acme/payments-api" in m
    ]
    assert len(removed) == 1, messages
    assert "CM-5" in removed[0]
    assert all(path == f"/auditor/{HOOK_TOKEN}" for path, _ in json_receiver.received)
    # A webhook is named by its host: its URL may carry the receiver's own token.
    added = [
        m for m in messages if "webhook added: to analytics.acme.example in acme/web-frontend" in m
    ]
    assert len(added) == 1, messages
    assert "http://analytics.acme.example/collect" not in "\n".join(messages)
    assert f"--store sqlite:///{store}" in messages[0]


def test_mailto_with_an_smtp_password_delivers_and_the_password_shows_nowhere(
    tmp_path, smtp_receiver
):
    public_from = datetime.fromisoformat("2026-08-10T00:00:00+00:00")
    store = tmp_path / "evidence.db"
    metrics = tmp_path / "auditor.prom"
    url = smtp_receiver.url("audit-bot", SMTP_PASSWORD)
    outputs = []
    with Simulator(
        _synthetic(public_from),
        scenario=lambda moment: _synthetic(moment, public_from),
    ) as simulator:
        for day in ("2026-08-05", "2026-08-12"):
            moment = datetime.fromisoformat(f"{day}T06:00:00+00:00")
            simulator.set_as_of(moment)
            result = _collect(
                simulator,
                store,
                moment,
                "--notify",
                url,
                "--metrics-file",
                str(metrics),
                "--log-format",
                "json",
            )
            assert result.exit_code == EXIT_OK, result.output
            outputs.append(result.output)
    assert smtp_receiver.logins == [("audit-bot", SMTP_PASSWORD)]
    (mail,) = smtp_receiver.mails
    assert mail["To"] == "security@example.com"
    assert "synth" in mail["Subject"]
    body = "".join(
        part.get_payload(decode=True).decode() for part in mail.walk() if not part.is_multipart()
    )
    assert "repository made public: synth/repo-00001" in body
    assert "notified notification target #1 (mailto, from --notify)" in outputs[1]
    for text in outputs:
        assert SMTP_PASSWORD not in text
        assert url not in text
    for path in (store, metrics, *tmp_path.rglob("*")):
        if path.is_file():
            assert SMTP_PASSWORD.encode() not in path.read_bytes(), path


def test_an_undelivered_notification_is_a_warning_and_exit_6_with_the_observation_stored(
    tmp_path, json_receiver
):
    json_receiver.status = 500
    public_from = datetime.fromisoformat("2026-08-10T00:00:00+00:00")
    store = tmp_path / "evidence.db"
    env = {"AUDITOR_NOTIFY": json_receiver.url(f"/auditor/{HOOK_TOKEN}")}
    with Simulator(
        _synthetic(public_from), scenario=lambda moment: _synthetic(moment, public_from)
    ) as simulator:
        results = []
        for day in ("2026-08-05", "2026-08-12"):
            moment = datetime.fromisoformat(f"{day}T06:00:00+00:00")
            simulator.set_as_of(moment)
            results.append(_collect(simulator, store, moment, "-q", env=env))
    assert results[0].exit_code == EXIT_OK, results[0].output
    failed = results[1]
    assert failed.exit_code == EXIT_NOTIFY_FAILED, failed.output
    assert len(json_receiver.received) == 1  # it was tried, and answered 500
    assert "could not deliver the notification of synth's changes to notification target #1" in (
        failed.stderr
    )
    assert "(json, from AUDITOR_NOTIFY)" in failed.stderr
    assert "the observation is stored" in failed.stderr
    assert HOOK_TOKEN not in failed.output
    observation_id = failed.stdout.strip()
    listing = CliRunner().invoke(main, ["store", "list", "--store", str(store), "--json"])
    assert observation_id in listing.stdout


def test_urls_come_from_a_file_with_comments_and_a_byte_order_mark(tmp_path, json_receiver):
    urls = tmp_path / "notify-urls"
    urls.write_bytes(
        b"\xef\xbb\xbf# where changes go\n" + json_receiver.url(f"/a/{HOOK_TOKEN}").encode() + b"\n"
    )
    public_from = datetime.fromisoformat("2026-08-10T00:00:00+00:00")
    store = tmp_path / "evidence.db"
    with Simulator(
        _synthetic(public_from), scenario=lambda moment: _synthetic(moment, public_from)
    ) as simulator:
        for day in ("2026-08-05", "2026-08-12"):
            moment = datetime.fromisoformat(f"{day}T06:00:00+00:00")
            simulator.set_as_of(moment)
            result = _collect(simulator, store, moment, env={"AUDITOR_NOTIFY_FILE": str(urls)})
            assert result.exit_code == EXIT_OK, result.output
    assert [path for path, _ in json_receiver.received] == [f"/a/{HOOK_TOKEN}"]


def test_urls_from_the_config_file_and_a_warning_when_others_may_read_it(tmp_path, json_receiver):
    config = tmp_path / "collect.yaml"
    config.write_text(
        f"workspaces: [synth]\nnotify:\n  - {json_receiver.url(f'/c/{HOOK_TOKEN}')}\n",
        encoding="utf-8",
    )
    os.chmod(config, 0o644)
    public_from = datetime.fromisoformat("2026-08-10T00:00:00+00:00")
    store = tmp_path / "evidence.db"
    with Simulator(
        _synthetic(public_from), scenario=lambda moment: _synthetic(moment, public_from)
    ) as simulator:
        for day in ("2026-08-05", "2026-08-12"):
            moment = datetime.fromisoformat(f"{day}T06:00:00+00:00")
            simulator.set_as_of(moment)
            result = CliRunner().invoke(
                main,
                [
                    *("collect", "--config", str(config), "--store", str(store), "-q"),
                    *("--observed-at", moment.isoformat()),
                ],
                env=simulator.credential_env("api_token"),
            )
            assert result.exit_code == EXIT_OK, result.output
            assert "names notification URLs, which are secrets, but other users may" in (
                result.stderr
            )
            assert HOOK_TOKEN not in result.output
    assert [path for path, _ in json_receiver.received] == [f"/c/{HOOK_TOKEN}"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"AUDITOR_NOTIFY": f"nosuchservice://host/{HOOK_TOKEN}"},
            "notification target #1 (nosuchservice, from AUDITOR_NOTIFY) is not a URL apprise",
        ),
        (
            {"AUDITOR_NOTIFY": "json://a/b", "AUDITOR_NOTIFY_FILE": "/nonexistent"},
            "set either AUDITOR_NOTIFY or AUDITOR_NOTIFY_FILE, not both",
        ),
        (
            {"AUDITOR_NOTIFY_FILE": "/nonexistent/urls"},
            "AUDITOR_NOTIFY_FILE=/nonexistent/urls: cannot read the file",
        ),
    ],
)
def test_bad_notification_settings_are_refused_before_any_request(tmp_path, env, expected):
    with Simulator(_synthetic(datetime.fromisoformat("2026-08-05T00:00:00+00:00"))) as simulator:
        result = _collect(
            simulator,
            tmp_path / "evidence.db",
            datetime.fromisoformat("2026-08-05T06:00:00Z"),
            env=env,
        )
        sent = simulator.stats()["total"]
    assert result.exit_code == EXIT_USAGE, result.output
    assert expected in result.output
    assert HOOK_TOKEN not in result.output
    assert sent == 0


def test_the_recorded_command_line_masks_a_notify_url():
    from auditor.provenance import masked_command_line

    line = masked_command_line(
        "auditor",
        ["collect", "--notify", f"json://h/{HOOK_TOKEN}", f"--notify=slack://{HOOK_TOKEN}"],
    )
    assert HOOK_TOKEN not in line
    assert line == "auditor collect --notify '***' '--notify=***'"
