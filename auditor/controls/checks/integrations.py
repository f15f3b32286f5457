"""Secure-development and integration checks: automated builds and webhooks."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from auditor.controls.branches import known
from auditor.controls.checks.registry import (
    CheckContext,
    Parameters,
    Rows,
    by_repository,
    check,
    plural,
)
from auditor.controls.results import Status
from auditor.evidence import table_rows

_PIPELINES_TEXT = {
    True: "Pipelines is on",
    False: "Pipelines is off",
    None: "the Pipelines setting is unknown",
}


def _first_by_repository(frame: Any) -> dict[str, Any]:
    return {row.repository: row for row in table_rows(frame)}


@check(
    "automated_builds",
    level="repository",
    datasets=("repositories",),
    optional_datasets=("pipelines", "branch_head_statuses"),
    requires_main_branch=True,
)
def automated_builds(ctx: CheckContext, params: Parameters) -> Any:
    """Pipelines is enabled, or the default branch head carries at least one build status.

    Either fact suffices, so a failure to read one is harmless when the other shows a build;
    the row is ERROR only when neither can be established.
    """
    pipelines = _first_by_repository(ctx.table("pipelines"))
    statuses = by_repository(ctx.table("branch_head_statuses"))
    rows = Rows("repository")
    for repo in table_rows(ctx.repositories):
        name, main = repo.repository, repo.main_branch
        status_failure = ctx.failure("branch_head_statuses", repo.workspace, name)
        pipeline_failure = ctx.failure("pipelines", repo.workspace, name)
        heads = None  # None: unknown; empty: known to carry no build status
        if status_failure is None:
            heads = [
                row for row in statuses.get(name, []) if not known(row.branch) or row.branch == main
            ]
        enabled = None
        if pipeline_failure is None and name in pipelines and known(pipelines[name].enabled):
            enabled = bool(pipelines[name].enabled)
        pipeline_text = _PIPELINES_TEXT[enabled]
        if heads:
            # The status name ("Pipeline #12", "jenkins-ml") reads better than its key, which
            # for Pipelines is a UUID.
            builds = "; ".join(
                sorted(
                    f"{row.state} from {row.name if known(row.name) else row.key}" for row in heads
                )
            )
            commits = sorted(str(row.commit) for row in heads if known(row.commit))
            commit = commits[0][:12] if commits else "?"
            reason = (
                f"{name}'s {main} head (commit {commit}) carries "
                f"{plural(len(heads), 'build status', 'build statuses')} ({builds}); "
                f"{pipeline_text}."
            )
            rows.repository(
                repo,
                Status.PASS,
                reason,
                f"{len(heads)} build statuses",
                f"branch_head_statuses:{name}#{commit}",
            )
        elif enabled:
            reason = f"{name} has Bitbucket Pipelines enabled."
            rows.repository(repo, Status.PASS, reason, "Pipelines on", f"pipelines:{name}")
        elif enabled is False and heads is not None:
            reason = (
                f"{name} has Pipelines off and no build status on the head of {main}; "
                "automated builds must run on every change."
            )
            evidence = [f"pipelines:{name}", f"branch_head_statuses:{name}"]
            rows.repository(repo, Status.FAIL, reason, "no builds", evidence)
        else:
            causes = [f.sentence() for f in (pipeline_failure, status_failure) if f is not None]
            if enabled is None and pipeline_failure is None:
                causes.insert(0, "Bitbucket did not report the Pipelines setting")
            reason = (
                f"Neither the Pipelines setting nor a build on {main} could be established for "
                f"{name} ({'; '.join(causes)}); the control could not be assessed."
            )
            evidence = [f.pointer for f in (pipeline_failure, status_failure) if f is not None]
            rows.repository(repo, Status.ERROR, reason, "unknown", evidence or f"pipelines:{name}")
    return rows.frame()


def _hook_rows(ctx: CheckContext) -> Any:
    hooks = ctx.table("webhooks")
    return table_rows(hooks.sort_values(["repository", "uuid"], kind="stable"))


def _url_host(url: Any) -> str:
    if not known(url):
        return ""
    try:
        return urlsplit(str(url)).hostname or ""
    except ValueError:
        return ""


def _hook_name(hook: Any) -> str:
    """The webhook as a person knows it: its description and the host it delivers to (the
    full URL may carry a token in its path or query). Only a webhook with neither is named by
    its UUID."""
    description = str(hook.description).strip() if known(hook.description) else ""
    host = _url_host(hook.url)
    name = f"{hook.repository} webhook"
    if description:
        name += f" '{description}'"
    if host:
        name += f" to {host}"
    if not description and not host:
        name += f" {hook.uuid}"
    return name


def _add_hook(rows: Rows, hook: Any, status: Status, reason: str, observed: object) -> None:
    rows.add(
        resource=f"{hook.repository}:hook:{hook.uuid}",
        workspace=hook.workspace,
        repository=hook.repository,
        status=status,
        reason=reason,
        observed=observed,
        evidence=f"webhooks:{hook.repository}#{hook.uuid}",
    )


@check(
    "webhook_transport",
    level="webhook",
    datasets=("repositories", "webhooks"),
    none_reason="{repository} has no webhooks.",
)
def webhook_transport(ctx: CheckContext, params: Parameters) -> Any:
    """Webhooks deliver over https:// with TLS certificate verification."""
    rows = Rows("webhook")
    rule = "webhooks must deliver over https:// with certificate verification"
    for hook in _hook_rows(ctx):
        name = _hook_name(hook)
        if not known(hook.url):
            _add_hook(
                rows, hook, Status.ERROR, f"Bitbucket did not report the URL of {name}.", None
            )
            continue
        faults = []
        if not str(hook.url).lower().startswith("https://"):
            faults.append("delivers over plain HTTP")
        if known(hook.skip_cert_verification) and hook.skip_cert_verification:
            faults.append("skips TLS certificate verification")
        if faults:
            reason = f"{name} {' and '.join(faults)}; {rule}."
            _add_hook(rows, hook, Status.FAIL, reason, "; ".join(faults))
        elif not known(hook.skip_cert_verification):
            reason = (
                f"Bitbucket did not report whether {name} verifies TLS certificates; "
                "the control could not be assessed."
            )
            _add_hook(rows, hook, Status.ERROR, reason, "https, verification unknown")
        else:
            reason = f"{name} delivers over HTTPS with certificate verification."
            _add_hook(rows, hook, Status.PASS, reason, "https, verified")
    return rows.frame()


@check(
    "webhook_secret",
    level="webhook",
    datasets=("repositories", "webhooks"),
    none_reason="{repository} has no webhooks.",
)
def webhook_secret(ctx: CheckContext, params: Parameters) -> Any:
    """Active webhooks sign their deliveries with a secret."""
    rows = Rows("webhook")
    for hook in _hook_rows(ctx):
        name = _hook_name(hook)
        if not known(hook.active):
            reason = f"Bitbucket did not report whether {name} is active."
            _add_hook(rows, hook, Status.ERROR, reason, None)
        elif not hook.active:
            reason = f"{name} is inactive and delivers nothing."
            _add_hook(rows, hook, Status.NOT_APPLICABLE, reason, "inactive")
        elif not known(hook.secret_set):
            reason = (
                f"Bitbucket did not report whether {name} has a secret; "
                "the control could not be assessed."
            )
            _add_hook(rows, hook, Status.ERROR, reason, "unknown")
        elif hook.secret_set:
            reason = f"{name} signs its deliveries with a secret."
            _add_hook(rows, hook, Status.PASS, reason, "secret set")
        else:
            reason = (
                f"{name} is active without a secret, so its receiver cannot verify that "
                "deliveries come from Bitbucket; active webhooks must have one."
            )
            _add_hook(rows, hook, Status.FAIL, reason, "no secret")
    return rows.frame()
