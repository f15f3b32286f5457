"""Large generated workspaces for benchmarks and scale tests, deterministic for a seed.

``synthetic_dataset(repos=5000, prs_per_repo=10, seed=7)`` builds one workspace (``synth``) whose
repositories are spread over a few projects with a realistic mix: most well protected, some
partly or not at all, some through the branching model; a share with Pipelines (pull-request
source commits have pipelines), others with external CI statuses, a few with no builds; a few
repositories the audit credential does not administer (403 on admin endpoints); deploy keys and
webhooks of varied ages and kinds; ``prs_per_repo`` pull requests merged in the period per
repository with participants, plus older merged ones, open and declined ones.

Only the cheap part of each repository is built up front; its content (restrictions, keys,
hooks, pull requests, builds) is generated from ``(seed, index)`` when first asked for and kept in
a bounded cache, so 5,000 × 10 builds in well under a second and stays small in memory.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from auditor.simulator.demo import (
    ACCESS_TOKEN_DENIAL,
    FINE_GRAINED_SCOPES,
    FULL_PROTECTION,
    LEGACY_SCOPES,
    ed25519_public_key,
)
from auditor.simulator.model import (
    BranchHead,
    BranchingModel,
    BranchRestriction,
    Comment,
    CommitStatus,
    Credential,
    Dataset,
    DeployKey,
    Group,
    Participant,
    Pipeline,
    Project,
    PullRequest,
    Repository,
    RepositoryContent,
    User,
    Webhook,
    Workspace,
    stable_hash,
    stable_uuid,
)

__all__ = ["synthetic_dataset"]

WORKSPACE = "synth"
_PROJECTS = (
    ("PLAT", "Platform"),
    ("DATA", "Data"),
    ("WEB", "Web"),
    ("MOB", "Mobile"),
    ("SEC", "Security"),
)
_FIRST = (
    "Ada",
    "Ben",
    "Chen",
    "Dina",
    "Eli",
    "Fay",
    "Gus",
    "Hana",
    "Ira",
    "Jon",
    "Kim",
    "Lea",
    "Max",
    "Noa",
    "Oli",
    "Pia",
    "Raj",
    "Sam",
    "Tia",
    "Uma",
)
_LAST = ("Archer", "Brook", "Cole", "Dunn", "Ellis")
_LANGUAGES = ("python", "go", "typescript", "java", "kotlin", "rust", "hcl", "")
_USERS = 40  # synthetic people besides the bots
_OWNERS = 3
_NOT_ADMIN_SHARE = 0.04  # repositories the audit credential only reads
# Repository contents kept built. A collection visits every repository once per stored query,
# in no particular order: a cache smaller than the workspace is thrashed and rebuilds contents
# for nearly every request (measured at 1,000 repositories: most of the simulator's CPU).
# Bounded all the same, so a huge workspace cannot exhaust memory: about 60 KiB a repository.
_CONTENT_CACHE = 10_000


def _period_bounds(period: Any) -> tuple[datetime, datetime]:
    if isinstance(period, tuple):
        since, until = period
        return since, until
    if isinstance(period, str):
        from auditor.period import parse_period  # a sibling utility, standard library only

        parsed = parse_period(period)
        return parsed.since, parsed.until
    return period.since, period.until  # an auditor.period.Period


def _user_key(index: int) -> str:
    return f"u{index:02d}"


def _people(as_of: datetime) -> dict[str, User]:
    users: dict[str, User] = {}
    for index in range(_USERS):
        key = _user_key(index)
        name = f"{_FIRST[index % len(_FIRST)]} {_LAST[index // len(_FIRST) % len(_LAST)]}"
        users[key] = User(
            key=key,
            display_name=name,
            nickname=f"{name.split()[0].lower()}{index}",
            uuid=stable_uuid(WORKSPACE, "user", key),
            account_id="712020:" + stable_uuid(WORKSPACE, "account", key)[1:-1],
            email=f"{key}@synth.example",
            created_on=as_of - timedelta(days=400 + 17 * index),
            # Every seventh member hides the flag, every ninth has it off.
            has_2fa_enabled=None if index % 7 == 6 else index % 9 != 8,
        )
    users["audit-bot"] = User(
        key="audit-bot",
        display_name="Audit Bot",
        nickname="audit-bot",
        uuid=stable_uuid(WORKSPACE, "user", "audit-bot"),
        account_id="712020:" + stable_uuid(WORKSPACE, "account", "audit-bot")[1:-1],
        email="audit-bot@synth.example",
        created_on=as_of - timedelta(days=200),
        has_2fa_enabled=True,
    )
    users["synth-access-token"] = User(
        key="synth-access-token",
        display_name="Synthetic audit access token",
        nickname="synth-access-token",
        uuid=stable_uuid(WORKSPACE, "user", "synth-access-token"),
        account_id="712020:" + stable_uuid(WORKSPACE, "account", "synth-access-token")[1:-1],
        email="",
        created_on=as_of - timedelta(days=100),
        kind="app_user",
        app_kind="workspace_access_token",
    )
    return users


def _credentials() -> dict[str, Credential]:
    return {
        "api_token": Credential(
            "api_token",
            "api_token",
            "basic",
            "audit-bot",
            "demo-api-token",
            username="audit-bot@synth.example",
            scopes=FINE_GRAINED_SCOPES,
        ),
        "access_token": Credential(
            "access_token",
            "access_token",
            "bearer",
            "synth-access-token",
            "demo-access-token",
            scopes=(
                "account",
                "project",
                "repository",
                "repository:admin",
                "pullrequest",
                "webhook",
                "pipeline",
            ),
            scope_vocabulary="legacy",
            report_scopes=True,
            rate_limit_headers=True,
            workspaces=(WORKSPACE,),
            implicit_permission="admin",
            denied={"permissions": ACCESS_TOKEN_DENIAL},
        ),
        "oauth": Credential(
            "oauth",
            "oauth_client_credentials",
            "oauth_client",
            "audit-bot",
            "demo-client-secret",
            username="demo-client-id",
            scopes=LEGACY_SCOPES,
            scope_vocabulary="legacy",
            report_scopes=True,
        ),
        "member_token": Credential(
            "member_token",
            "api_token",
            "basic",
            _user_key(_OWNERS + 2),
            "demo-member-token",
            username=f"{_user_key(_OWNERS + 2)}@synth.example",
            scopes=FINE_GRAINED_SCOPES,
        ),
    }


class _Generator:
    """Builds repository ``index`` (cheap part eagerly, content on demand) from the seed."""

    def __init__(
        self, seed: int, prs_per_repo: int, since: datetime, until: datetime, as_of: datetime
    ) -> None:
        self.seed = seed
        self.prs_per_repo = prs_per_repo
        self.since = since
        self.until = until
        self.as_of = as_of
        self.developers = [_user_key(i) for i in range(_OWNERS, 30)]
        self._repositories: dict[int, Repository] = {}
        self.content: Callable[[int], RepositoryContent] = lru_cache(maxsize=_CONTENT_CACHE)(
            self._content
        )

    def _rng(self, index: int, part: str) -> random.Random:
        return random.Random(f"{self.seed}:{part}:{index}")

    def _moment(self, rng: random.Random, start: datetime, end: datetime) -> datetime:
        seconds = int((end - start).total_seconds())
        return start + timedelta(seconds=rng.randrange(max(1, seconds)))

    def repository(self, index: int) -> Repository:
        rng = self._rng(index, "repo")
        slug = f"repo-{index:05d}"
        project = _PROJECTS[index % len(_PROJECTS)][0]
        empty = rng.random() < 0.01
        is_private = rng.random() < 0.92
        fork_policy = rng.choices(
            ("no_forks", "no_public_forks", "allow_forks"), weights=(5, 4, 1)
        )[0]
        created = self.as_of - timedelta(days=rng.randrange(200, 2500))
        updated = (
            created if empty else self._moment(rng, self.until - timedelta(days=60), self.until)
        )
        admin = rng.random() >= _NOT_ADMIN_SHARE
        grants = {"admins": "admin", "developers": "write", "readers": "read"}
        grants["auditors"] = "admin" if admin else "read"
        reviewers = tuple(rng.sample(self.developers, rng.choice((0, 1, 1, 2))))
        repository = Repository(
            slug=slug,
            name=slug,
            uuid=stable_uuid(WORKSPACE, self.seed, "repository", index),
            project=project,
            created_on=created,
            updated_on=updated,
            description=f"Synthetic service {index}",
            is_private=is_private,
            fork_policy=fork_policy if is_private else "allow_forks",
            mainbranch=None if empty else rng.choice(("main", "main", "main", "master")),
            language=rng.choice(_LANGUAGES),
            size=0 if empty else rng.randrange(10_000, 500_000_000),
            group_grants=grants,
            default_reviewers=reviewers,
            pipelines_enabled=not empty and rng.random() < 0.45,
        )
        repository.loader = lambda: self.content(index)
        self._repositories[index] = repository
        return repository

    def _content(self, index: int) -> RepositoryContent:
        repository = self._repositories[index]
        rng = self._rng(index, "content")
        content = RepositoryContent()
        main = repository.mainbranch
        if main is None:
            content.branching_model = BranchingModel(
                development_name="develop", development_use_mainbranch=False
            )
            return content

        def commit(*parts: object) -> str:
            return stable_hash(WORKSPACE, self.seed, index, *parts)

        head = commit("branch", main)
        author = rng.choice(self.developers)
        content.branches[main] = BranchHead(main, head, repository.updated_on, "Merge", author)
        self._protection(rng, content, main)
        self._keys_and_hooks(rng, index, content)
        ci = (
            None
            if repository.pipelines_enabled
            else rng.choices(("jenkins", "buildkite", None), weights=(5, 2, 3))[0]
        )
        builds: list[tuple[str, str, str, datetime]] = []
        if repository.pipelines_enabled or ci:
            builds.append((head, main, "SUCCESSFUL", repository.updated_on))
        self._pull_requests(rng, index, content, main, commit, builds)
        builds.sort(key=lambda b: b[3])
        for number, (sha, ref, result, when) in enumerate(builds, start=1):
            if repository.pipelines_enabled:
                content.pipelines.append(
                    Pipeline(
                        uuid=stable_uuid(WORKSPACE, self.seed, index, "pipeline", number),
                        build_number=number,
                        ref_name=ref,
                        commit=sha,
                        result=result,
                        created_on=when,
                        completed_on=when + timedelta(minutes=4 + number % 7),
                    )
                )
            elif ci:
                content.statuses.setdefault(sha, []).append(
                    CommitStatus(
                        key=f"{ci}-build",
                        name=f"{ci} #{number}",
                        state=result,
                        url=f"https://{ci}.synth.example/{repository.slug}/{number}",
                        created_on=when,
                        updated_on=when + timedelta(minutes=5),
                        refname=ref,
                    )
                )
        return content

    def _protection(self, rng: random.Random, content: RepositoryContent, main: str) -> None:
        profile = rng.choices(("full", "partial", "none", "model"), weights=(62, 20, 10, 8))[0]
        next_id = iter(range(1, 100))
        if profile == "none":
            return
        if profile == "partial":
            kinds = rng.sample(FULL_PROTECTION, rng.randrange(2, 6))
        else:
            kinds = list(FULL_PROTECTION)
        model = profile == "model"
        if model:
            content.branching_model = BranchingModel(development_use_mainbranch=True)
        for kind in kinds:
            value = {
                "require_approvals_to_merge": rng.choice((1, 2, 2, 2)),
                "require_passing_builds_to_merge": 1,
            }.get(kind)
            content.branch_restrictions.append(
                BranchRestriction(
                    id=next(next_id),
                    kind=kind,
                    pattern="" if model else main,
                    branch_match_kind="branching_model" if model else "glob",
                    branch_type="development" if model else None,
                    value=value,
                    users=(rng.choice(self.developers),)
                    if kind == "push" and rng.random() < 0.1
                    else (),
                    groups=("release-managers",) if kind == "push" else (),
                )
            )

    def _keys_and_hooks(self, rng: random.Random, index: int, content: RepositoryContent) -> None:
        for number in range(rng.choice((0, 0, 1, 1, 2, 3))):
            added = self.as_of - timedelta(days=rng.randrange(5, 700))
            used = rng.choice((None, 1, 30, 200))
            last_used = (
                None
                if used is None
                else max(added, self.as_of - timedelta(days=rng.randrange(used)))
            )
            label = f"deploy-{index}-{number}"
            content.deploy_keys.append(
                DeployKey(
                    id=index * 10 + number + 1,
                    label=label,
                    key=ed25519_public_key(f"{self.seed}/{label}", label),
                    comment=label,
                    added_on=added,
                    last_used=last_used,
                )
            )
        for number in range(rng.choice((0, 1, 1, 2))):
            https = rng.random() < 0.85
            content.webhooks.append(
                Webhook(
                    uuid=stable_uuid(WORKSPACE, self.seed, index, "hook", number),
                    url=f"{'https' if https else 'http'}://hooks.synth.example/{index}/{number}",
                    description=f"hook {number}",
                    created_at=self.as_of - timedelta(days=rng.randrange(1, 900)),
                    events=("repo:push",),
                    secret_set=rng.random() < 0.7,
                    skip_cert_verification=https and rng.random() < 0.05,
                    active=rng.random() < 0.95,
                )
            )

    def _pull_requests(
        self,
        rng: random.Random,
        index: int,
        content: RepositoryContent,
        main: str,
        commit: Callable[..., str],
        builds: list[tuple[str, str, str, datetime]],
    ) -> None:
        span = self.until - self.since
        plans: list[tuple[str, datetime]] = []
        for _ in range(self.prs_per_repo):
            plans.append(("MERGED", self._moment(rng, self.since + timedelta(hours=2), self.until)))
        for _ in range(2):  # merged before the period: outside the population
            plans.append(("MERGED", self._moment(rng, self.since - span, self.since)))
        plans.append(("OPEN", self._moment(rng, self.until - timedelta(days=20), self.until)))
        if rng.random() < 0.3:
            plans.append(("DECLINED", self._moment(rng, self.since, self.until)))
        plans.sort(key=lambda plan: plan[1])
        has_builds = bool(builds)
        for number, (state, closed) in enumerate(plans, start=1):
            author = rng.choice(self.developers)
            created = closed - timedelta(hours=rng.randrange(2, 96))
            others = [d for d in self.developers if d != author]
            approvers = rng.sample(others, rng.choices((0, 1, 2), weights=(8, 30, 62))[0])
            approvals = (
                {user: self._moment(rng, created, closed) for user in approvers}
                if state == "MERGED"
                else {}
            )
            reviewers = list(approvers) or rng.sample(others, 1)
            participants = tuple(
                Participant(
                    user=user,
                    role="REVIEWER",
                    approved=user in approvals,
                    state="approved" if user in approvals else None,
                    participated_on=approvals.get(user),
                )
                for user in reviewers
            )
            comments = ()
            if rng.random() < 0.4:
                commenter = rng.choice(others)
                comments = (
                    Comment(
                        number * 100 + 1, commenter, self._moment(rng, created, closed), "LGTM?"
                    ),
                )
            closed_by = None
            if state == "MERGED":
                closed_by = (
                    author if rng.random() < 0.15 or not approvers else rng.choice(approvers)
                )
            elif state == "DECLINED":
                closed_by = rng.choice(others)
            source = commit("pr", number, "source")
            is_closed = state != "OPEN"
            pull_request = PullRequest(
                id=number,
                title=f"Change {number} in repository {index}",
                author=author,
                state=state,
                source_branch=f"feature/{number}",
                source_commit=source,
                destination_branch=main,
                destination_commit=commit("pr", number, "destination"),
                created_on=created,
                updated_on=max(
                    [closed if is_closed else created, *(c.created_on for c in comments)]
                ),
                closed_on=closed if is_closed else None,
                merge_commit=commit("pr", number, "merge") if state == "MERGED" else None,
                closed_by=closed_by,
                participants=participants,
                comments=comments,
            )
            content.pull_requests[number] = pull_request
            if has_builds and rng.random() < 0.95:
                result = "SUCCESSFUL" if rng.random() < 0.9 else "FAILED"
                builds.append(
                    (source, pull_request.source_branch, result, created + timedelta(minutes=20))
                )


def synthetic_dataset(
    repos: int = 1000,
    prs_per_repo: int = 20,
    seed: int = 7,
    period: Any = "2026-Q3",
) -> Dataset:
    """A generated workspace ``synth`` of ``repos`` repositories; same seed, same answers.

    ``period`` is a label (``2026-Q3``), an ``auditor.period.Period`` or a ``(since, until)``
    pair of aware datetimes; merged pull requests fall inside it. The evaluation date is its end.
    """
    if repos < 0 or prs_per_repo < 0:
        raise ValueError("repos and prs_per_repo must not be negative")
    since, until = _period_bounds(period)
    as_of = until.astimezone(UTC)
    generator = _Generator(seed, prs_per_repo, since, until, as_of)
    repositories = {}
    for index in range(repos):
        repository = generator.repository(index)
        repositories[repository.slug] = repository
    users = _people(as_of)
    members = {_user_key(i): "owner" if i < _OWNERS else "member" for i in range(_USERS)}
    members["audit-bot"] = "member"
    workspace = Workspace(
        slug=WORKSPACE,
        name="Synthetic Corp",
        uuid=stable_uuid(WORKSPACE, seed, "workspace"),
        created_on=as_of - timedelta(days=3000),
        updated_on=as_of - timedelta(days=10),
        members=members,
        groups={
            "admins": Group("admins", "Admins", (_user_key(0), _user_key(1))),
            "developers": Group("developers", "Developers", tuple(generator.developers)),
            "readers": Group("readers", "Readers", tuple(_user_key(i) for i in range(30, _USERS))),
            "release-managers": Group(
                "release-managers", "Release managers", (_user_key(3), _user_key(4))
            ),
            "auditors": Group("auditors", "Auditors", ("audit-bot",)),
        },
        projects={
            key: Project(
                key,
                name,
                stable_uuid(WORKSPACE, seed, "project", key),
                as_of - timedelta(days=2900),
                as_of - timedelta(days=30),
                default_reviewers=(_user_key(5),) if key == "WEB" else (),
            )
            for key, name in _PROJECTS
        },
        repositories=repositories,
    )
    return Dataset(
        name=f"synthetic-{repos}x{prs_per_repo}-seed{seed}",
        users=users,
        workspace_index={WORKSPACE: workspace},
        credentials=_credentials(),
        period_since=since,
        period_until=until,
        as_of=as_of,
    )
