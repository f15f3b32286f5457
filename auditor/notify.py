"""Notifications on change: after ``auditor collect`` stores an observation, tell someone what
changed since the workspace's previous one, through apprise (Slack, Microsoft Teams, e-mail,
JSON webhooks, ntfy …: one URL syntax, one well-kept library).

One message per observation, only when something changed: controls newly failing or fixed per
resource, access gained or lost and the other configuration changes of
``auditor.controls.changes`` (a repository made public, a branch restriction removed, a new
deploy key or webhook), and collection errors that appeared. Nothing when nothing changed, and
nothing for a workspace's first observation (there is nothing to compare it with). Resources are
named by name, with a link into Bitbucket Cloud built only from validated slugs
(``auditor.reporting.resource_links``); Bitbucket's text is shown with invisible characters made
visible (``auditor.visible``). A message never carries a secret: it is built from the evidence,
which holds none, and is masked anyway.

Notification URLs are secrets (a Slack or Teams webhook URL is its own credential; a
``mailto://`` URL can carry an SMTP password). They come from ``--notify``, ``AUDITOR_NOTIFY``
or the file ``AUDITOR_NOTIFY_FILE`` names (one per line), or the collect configuration file;
each is registered with ``auditor.redaction`` the moment it is read, and a target is only ever
named by its number and scheme (``notification target #2 (mailto)``). Apprise's own log lines,
which can quote a URL, are kept out of the tool's output; the one that says why a delivery
failed is passed on, masked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd

from auditor.controls.changes import (
    CONTROL_STATUS,
    REPOSITORY_ADDED,
    REPOSITORY_REMOVED,
    WEBHOOK_ADDED,
    WEBHOOK_REMOVED,
    Change,
    evidence_changes,
    finding_status_changes,
)
from auditor.controls.results import EvaluationResult
from auditor.errors import ConfigError
from auditor.evidence import Observation
from auditor.redaction import redact, register_secret
from auditor.visible import for_display

log = logging.getLogger(__name__)

NOTIFY_VARIABLE = "AUDITOR_NOTIFY"
NOTIFY_FILE_VARIABLE = "AUDITOR_NOTIFY_FILE"
_MAX_URL_FILE_BYTES = 64 * 1024
_TOKEN_LENGTH = 16
# Lines of one section of a message; the rest are counted, and `auditor diff` shows them all.
MAX_LINES_PER_SECTION = 25
_FAILING = frozenset({"FAIL"})
_FIXED = frozenset({"PASS", "EXCEPTED", "NOT_APPLICABLE"})

# Apprise logs what it sends and why it failed, sometimes with the URL: never to our output
# as it stands (``_captured`` passes the reasons on, masked).
_apprise_log = logging.getLogger("apprise")
_apprise_log.propagate = False
_apprise_log.addHandler(logging.NullHandler())


@dataclass(frozen=True)
class Target:
    """One notification URL and where it came from (``--notify``, ``AUDITOR_NOTIFY_FILE`` …)."""

    url: str = field(repr=False)
    number: int
    source: str

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0].lower() if "://" in self.url else "?"

    def describe(self) -> str:
        """How messages name the target: never its URL."""
        return f"notification target #{self.number} ({self.scheme}, from {self.source})"


def _register(url: str) -> None:
    """Mask the URL and the parts of it that are secrets on their own (password, token path,
    query values), wherever they appear."""
    register_secret(url)
    _, _, rest = url.partition("://")
    netloc, _, tail = rest.partition("/")
    userinfo, at, _host = netloc.rpartition("@")
    if at:
        user, _, password = userinfo.partition(":")
        register_secret(password, username=user or None)
        register_secret(password)
        register_secret(userinfo)
    path, _, query = tail.partition("?")
    # Tokens in the path (Slack's last segment is 24 characters, Teams' are GUIDs); shorter
    # segments are words ("hooks", "payments"), which masked everywhere would make other
    # messages unreadable.
    if len(path) >= _TOKEN_LENGTH:
        register_secret("/" + path)
    for segment in path.split("/"):
        if len(segment) >= _TOKEN_LENGTH:
            register_secret(segment)
    for pair in query.split("&"):
        value = pair.partition("=")[2]
        if len(value) >= _TOKEN_LENGTH:
            register_secret(value)


def _read_url_file(path_text: str) -> list[str]:
    path = Path(path_text)
    try:
        with path.open("rb") as stream:
            raw = stream.read(_MAX_URL_FILE_BYTES + 1)
    except OSError as error:
        raise ConfigError(
            f"{NOTIFY_FILE_VARIABLE}={path_text}: cannot read the file ({error.strerror})"
        ) from None
    if len(raw) > _MAX_URL_FILE_BYTES:
        raise ConfigError(
            f"{NOTIFY_FILE_VARIABLE}={path_text}: larger than a list of notification URLs can "
            f"be ({_MAX_URL_FILE_BYTES} bytes); is it the right file?"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(
            f"{NOTIFY_FILE_VARIABLE}={path_text}: not UTF-8 text (one URL per line)"
        ) from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def notification_targets(
    command_line: Sequence[str],
    environ: Mapping[str, str],
    configured: Sequence[str] = (),
) -> list[Target]:
    """The notification targets of a collection: the ``--notify`` URLs if any were given, else
    ``AUDITOR_NOTIFY`` (URLs separated by white space) or the file ``AUDITOR_NOTIFY_FILE`` names
    (one URL per line, ``#`` comments), else the configuration file's ``notify``. Every URL is
    registered as a secret at once and checked by apprise (``ConfigError`` naming the target by
    number and scheme only)."""
    if environ.get(NOTIFY_VARIABLE) and environ.get(NOTIFY_FILE_VARIABLE):
        raise ConfigError(f"set either {NOTIFY_VARIABLE} or {NOTIFY_FILE_VARIABLE}, not both")
    found: list[tuple[str, str]] = []
    if command_line:
        found = [(url, "--notify") for url in command_line]
    elif environ.get(NOTIFY_VARIABLE):
        found = [(url, NOTIFY_VARIABLE) for url in environ[NOTIFY_VARIABLE].split()]
    elif environ.get(NOTIFY_FILE_VARIABLE):
        urls = _read_url_file(environ[NOTIFY_FILE_VARIABLE])
        found = [(url, NOTIFY_FILE_VARIABLE) for url in urls]
    else:
        found = [(url, "the configuration file") for url in configured]
    for url, _ in found:
        _register(url)
    targets = [Target(url.strip(), number, source) for number, (url, source) in enumerate(found, 1)]
    for target in targets:
        _check(target)
    return targets


def _check(target: Target) -> None:
    import apprise

    with _captured():
        accepted = apprise.Apprise().add(target.url)
    if not accepted:
        raise ConfigError(
            f"{target.describe()} is not a URL apprise can send to: check its scheme and form "
            "(https://github.com/caronc/apprise/wiki lists them; json://host/path, "
            "mailto://user:password@host, slack://…, msteams://…, ntfy://…)"
        )


@contextmanager
def _captured() -> Iterator[list[str]]:
    """Apprise's log lines while inside, masked (to say why a delivery failed)."""
    lines: list[str] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(redact(record.getMessage()))

    handler = _Keep(level=logging.WARNING)
    previous = _apprise_log.level
    _apprise_log.setLevel(logging.WARNING)
    _apprise_log.addHandler(handler)
    try:
        yield lines
    finally:
        _apprise_log.removeHandler(handler)
        _apprise_log.setLevel(previous)


# --- what changed -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One line of a message: what, on which resource (by name), and a link when safe."""

    text: str
    url: str = ""

    def render(self) -> str:
        return f"- {self.text}" + (f" <{self.url}>" if self.url else "")


@dataclass
class ChangeNotice:
    """What changed between two observations of one workspace: the message, or nothing."""

    workspace: str
    observation_id: str
    observed_at: datetime
    previous_id: str
    previous_at: datetime
    newly_failing: list[Line] = field(default_factory=list)
    fixed: list[Line] = field(default_factory=list)
    configuration: list[Line] = field(default_factory=list)
    new_errors: list[Line] = field(default_factory=list)
    store: str = "<store>"  # the store's URL without its password, for the diff command

    @property
    def changed(self) -> bool:
        return bool(self.newly_failing or self.fixed or self.configuration or self.new_errors)

    @property
    def title(self) -> str:
        parts = []
        for count, what in (
            (len(self.newly_failing), "newly failing"),
            (len(self.fixed), "fixed"),
            (len(self.configuration), "configuration changes"),
            (len(self.new_errors), "new collection errors"),
        ):
            if count:
                parts.append(f"{count} {what}")
        return f"Bitbucket governance changed in {self.workspace}: {', '.join(parts)}"

    @property
    def body(self) -> str:
        lines = [
            f"Workspace {self.workspace}, observed {self.observed_at:%Y-%m-%d %H:%M} UTC "
            f"(observation {self.observation_id}), compared with "
            f"{self.previous_at:%Y-%m-%d %H:%M} UTC ({self.previous_id}).",
        ]
        for heading, entries in (
            ("Controls newly failing", self.newly_failing),
            ("Controls fixed", self.fixed),
            ("Access and configuration changes", self.configuration),
            (
                "Collection errors that appeared (what they cover is ERROR, not assessed)",
                self.new_errors,
            ),
        ):
            if not entries:
                continue
            lines += ["", f"{heading}:"]
            lines += [entry.render() for entry in entries[:MAX_LINES_PER_SECTION]]
            if len(entries) > MAX_LINES_PER_SECTION:
                lines.append(f"- … and {len(entries) - MAX_LINES_PER_SECTION} more")
        lines += [
            "",
            f"All of it: auditor diff {self.previous_id} {self.observation_id} "
            f"--store {self.store}",
        ]
        return redact("\n".join(lines))


def change_notice(
    before: Observation,
    after: Observation,
    before_result: EvaluationResult,
    after_result: EvaluationResult,
) -> ChangeNotice:
    """What changed from ``before`` to ``after`` (two observations of one workspace, each with
    its evaluation), as the lines of one message."""
    from auditor.reporting.resource_links import ResourceNamer, repository_url

    cloud = after.evidence.info.backend == "cloud"
    namer = ResourceNamer(after.evidence)
    old_namer = ResourceNamer(before.evidence)
    notice = ChangeNotice(
        workspace=after.evidence.info.workspaces[0] if after.evidence.info.workspaces else "",
        observation_id=after.observation_id,
        observed_at=after.observed_at,
        previous_id=before.observation_id,
        previous_at=before.observed_at,
    )
    findings = after_result.findings
    old_findings = before_result.findings
    titles = _titles(findings, old_findings)
    types = _resource_types(findings, old_findings)
    evidence_of = _evidence_of(findings, old_findings)
    for change in finding_status_changes(old_findings, findings):
        assert change.kind == CONTROL_STATUS
        control, resource = change.subject, change.resource
        kind = types.get((control, resource), "")
        label = (namer if change.after else old_namer).label(
            kind, resource, evidence_of.get((control, resource), "")
        )
        text = (
            f"{control} {for_display(titles.get(control, ''))} — {for_display(label.name)}: "
            f"{change.before or 'not judged'} → {change.after or 'not judged'}"
        )
        line = Line(text, label.url if cloud else "")
        if change.after in _FAILING and change.before not in _FAILING:
            notice.newly_failing.append(line)
        elif change.before in _FAILING and change.after in _FIXED:
            notice.fixed.append(line)
    for change in evidence_changes(before.evidence, after.evidence):
        notice.configuration.append(_configuration_line(change, cloud, repository_url))
    notice.new_errors = _new_errors(before, after)
    return notice


def _configuration_line(change: Change, cloud: bool, repository_url) -> Line:
    values = ""
    if change.before or change.after:
        values = f": {for_display(change.before) or '—'} → {for_display(change.after) or '—'}"
    if change.kind in (REPOSITORY_ADDED, REPOSITORY_REMOVED) or change.subject == change.resource:
        text = f"{change.kind}: {for_display(change.resource)}{values}"
    else:
        subject, resource = for_display(change.subject), for_display(change.resource)
        if change.kind in (WEBHOOK_ADDED, WEBHOOK_REMOVED):
            # A webhook's URL may carry the receiver's own token: its host names it.
            subject = f"to {urlsplit(change.subject).hostname or 'an unparsable URL'}"
        text = f"{change.kind}: {subject} in {resource}{values}"
    url = repository_url(change.resource) if cloud and "/" in change.resource else ""
    return Line(text, url)


def _new_errors(before: Observation, after: Observation) -> list[Line]:
    def keyed(observation: Observation) -> dict[tuple[str, str, str], Line]:
        errors = observation.evidence.errors
        found: dict[tuple[str, str, str], Line] = {}
        for row in errors.itertuples(index=False):
            repository = row.repository if isinstance(row.repository, str) else ""
            where = repository or str(row.workspace)
            code = str(row.error_code) if isinstance(row.error_code, str) else "ERROR"
            status = "" if pd.isna(row.http_status) else f"HTTP {int(row.http_status)} "
            hint = f" ({for_display(str(row.hint))})" if isinstance(row.hint, str) else ""
            key = (where, str(row.dataset), code)
            found[key] = Line(f"{for_display(where)} {row.dataset}: {status}{code}{hint}")
        return found

    old = keyed(before)
    return [line for key, line in sorted(keyed(after).items()) if key not in old]


def _titles(*frames: pd.DataFrame) -> dict[str, str]:
    found: dict[str, str] = {}
    for frame in frames:
        if "title" in frame.columns:
            for control, title in zip(frame["control_id"], frame["title"], strict=True):
                found.setdefault(str(control), str(title))
    return found


def _resource_types(*frames: pd.DataFrame) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for frame in frames:
        if "resource_type" in frame.columns:
            for control, resource, kind in zip(
                frame["control_id"], frame["resource"], frame["resource_type"], strict=True
            ):
                found.setdefault((str(control), str(resource)), str(kind))
    return found


def _evidence_of(*frames: pd.DataFrame) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for frame in frames:
        if "evidence" in frame.columns:
            for control, resource, pointer in zip(
                frame["control_id"], frame["resource"], frame["evidence"], strict=True
            ):
                if isinstance(pointer, str):
                    found.setdefault((str(control), str(resource)), pointer)
    return found


# --- sending ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    target: Target
    delivered: bool
    reason: str = ""


def send(targets: Sequence[Target], notice: ChangeNotice) -> list[Delivery]:
    """Send ``notice`` to each target (one apprise instance each, so a failure names its
    target); a failed delivery is a WARNING naming the target and apprise's reason, masked."""
    import apprise

    deliveries = []
    title, body = notice.title, notice.body
    for target in targets:
        sender = apprise.Apprise()
        with _captured() as reasons:
            sender.add(target.url)
            try:
                delivered = bool(
                    sender.notify(title=title, body=body, body_format=apprise.NotifyFormat.TEXT)
                )
            except Exception as error:  # a plugin's own failure is a failed delivery, no more
                delivered = False
                reasons.append(f"{type(error).__name__}: {redact(error)}")
        reason = reasons[-1] if reasons else "apprise reported a failure"
        deliveries.append(Delivery(target, delivered, "" if delivered else reason))
        if delivered:
            log.info(
                "notified %s of the changes in %s",
                target.describe(),
                notice.workspace,
                extra={"event": "notified", "workspace": notice.workspace},
            )
        else:
            log.warning(
                "could not deliver the notification of %s's changes to %s: %s; the observation "
                "is stored",
                notice.workspace,
                target.describe(),
                redact(reason),
                extra={"event": "notification_failed", "workspace": notice.workspace},
            )
    return deliveries
