"""The deploy kit in docs/deploy works as written: the Kubernetes manifests validate against the
API schemas (offline), the CronJobs and the Deployment run commands the tool accepts on one
store, every read-only container has a writable /tmp; the systemd units pass
``systemd-analyze verify``; the Pipelines example uses the variables it documents and removes
the token file even when the step fails; the Dockerfile installs from the constraints file, which
pins every dependency; the alert rules name metrics the tool writes."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import click
import pytest
from ruamel.yaml import YAML

from auditor.cli import main

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "docs" / "deploy"
MANIFESTS = ("cronjob.yaml", "serve-deployment.yaml")


def _load(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text())


def _documents(name: str) -> list[dict[str, Any]]:
    documents = YAML(typ="safe", pure=True).load_all((DEPLOY / name).read_text())
    return [document for document in documents if document]


def _pod_spec(resource: dict[str, Any]) -> dict[str, Any]:
    if resource["kind"] == "CronJob":
        return resource["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return resource["spec"]["template"]["spec"]


def _containers() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    found = {}
    for name in MANIFESTS:
        for resource in _documents(name):
            if resource["kind"] in ("CronJob", "Deployment"):
                spec = _pod_spec(resource)
                (container,) = spec["containers"]
                found[resource["metadata"]["name"]] = (container, spec)
    return found


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


# --- Kubernetes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MANIFESTS)
def test_kubernetes_manifests_validate_against_the_api_schemas(name):
    import kubernetes_validate

    version = kubernetes_validate.latest_version()
    documents = _documents(name)
    assert documents
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)


def test_collect_report_and_serve_share_one_postgresql_store():
    containers = _containers()
    assert set(containers) == {
        "bitbucket-auditor-collect",
        "bitbucket-auditor-report",
        "auditor-serve",
    }
    stores = {name: _env(container)["AUDITOR_STORE"] for name, (container, _) in containers.items()}
    assert all(
        store == {"secretKeyRef": {"name": "bitbucket-auditor", "key": "store-url"}}
        for store in stores.values()
    ), stores
    collect, _ = containers["bitbucket-auditor-collect"]
    report, _ = containers["bitbucket-auditor-report"]
    serve, _ = containers["auditor-serve"]
    assert collect["args"][0] == "collect"
    assert report["args"][0] == "run"
    assert "--from-store" in report["args"]
    assert serve["args"][0] == "serve"
    assert "postgresql+psycopg://" in (DEPLOY / "cronjob.yaml").read_text()


def test_every_container_args_are_options_the_command_knows():
    for name, (container, _) in _containers().items():
        command = main.commands[container["args"][0]]
        known = {opt for param in command.params for opt in param.opts + param.secondary_opts}
        given = [arg for arg in container["args"][1:] if arg.startswith("-")]
        assert set(given) <= known, (name, sorted(set(given) - known))
        flags = {
            opt
            for param in command.params
            if isinstance(param, click.Option) and param.is_flag
            for opt in param.opts
        }
        # --from-store takes an optional value: alone, it reads AUDITOR_STORE.
        assert "--from-store" not in flags


def test_read_only_root_filesystems_have_a_writable_tmp_and_files_come_from_mounts():
    for name, (container, spec) in _containers().items():
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        assert "/tmp" in mounts, f"{name}: no writable /tmp"
        assert "emptyDir" in volumes[mounts["/tmp"]], name
        for variable, value in _env(container).items():
            if variable.endswith("_FILE"):
                directory, _, key = str(value).rpartition("/")
                volume = volumes[mounts[directory]]
                assert key in {item["path"] for item in volume["secret"]["items"]}, variable
        for argument in container["args"]:
            if argument.startswith("/run/secrets/"):
                directory, _, key = argument.rpartition("/")
                volume = volumes[mounts[directory]]
                assert key in {item["path"] for item in volume["secret"]["items"]}, argument


# --- systemd --------------------------------------------------------------------------------------


def test_systemd_units_pass_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    units = sorted(DEPLOY.glob("auditor-*.service")) + sorted(DEPLOY.glob("auditor-*.timer"))
    assert len(units) == 4
    auditor = shutil.which("auditor") or str(Path(os.sys.executable).parent / "auditor")
    for unit in units:
        # verify checks that ExecStart's program exists: the one installed here stands in for
        # /opt/auditor/.venv/bin/auditor.
        text = unit.read_text().replace("/opt/auditor/.venv/bin/auditor", auditor)
        (tmp_path / unit.name).write_text(text)
    done = subprocess.run(
        [analyze, "verify", *(str(tmp_path / unit.name) for unit in units)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "auditor-" not in done.stderr, done.stderr


def test_systemd_collect_unit_runs_collect_and_the_report_unit_reads_the_store():
    def service(name: str) -> configparser.SectionProxy:
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string(re.sub(r"^(\w+)=", r"\1 =", (DEPLOY / name).read_text(), flags=re.M))
        return parser["Service"]

    collect = service("auditor-collect.service")
    report = service("auditor-report.service")
    assert " collect " in collect["ExecStart"]
    assert "--metrics-file" in collect["ExecStart"]
    assert "run --from-store" in report["ExecStart"]


# --- Bitbucket Pipelines ----------------------------------------------------------------------


def test_pipelines_example_uses_documented_variables_and_removes_the_token_when_it_fails(
    tmp_path,
):
    pipeline = _load(DEPLOY / "bitbucket-pipelines.yml")
    (step,) = pipeline["pipelines"]["custom"]["audit"]
    script, after = step["step"]["script"], step["step"]["after-script"]
    text = "\n".join(script + after)
    used = set(re.findall(r"\$\{?([A-Z_]+)", text)) - {"BITBUCKET_WORKSPACE"}
    documented = (DEPLOY / "README.md").read_text()
    for variable in used:
        assert f"`{variable}`" in documented, f"{variable} is not in docs/deploy/README.md"
    header = (DEPLOY / "bitbucket-pipelines.yml").read_text().split("image:")[0]
    assert {"AUDITOR_EMAIL", "AUDITOR_API_TOKEN", "AUDITOR_PACKAGE"} <= used
    assert all(variable in header for variable in used)

    # Run it as Pipelines does: the script's commands in one shell until one fails (here the
    # audit, exit 4), then the after-script; apt-get, pip and auditor are stand-ins.
    token_file = tmp_path / "auditor-api-token"
    seen = tmp_path / "seen"
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for program, body in {
        "apt-get": "exit 0",
        "pip": "exit 0",
        "auditor": f'stat -c %a "$BITBUCKET_API_TOKEN_FILE" > {seen}; '
        f'cat "$BITBUCKET_API_TOKEN_FILE" >> {seen}; exit 4',
    }.items():
        (stubs / program).write_text(f"#!/bin/sh\n{body}\n")
        (stubs / program).chmod(0o755)
    environment = {
        "PATH": f"{stubs}:/usr/bin:/bin",
        "AUDITOR_PACKAGE": "bitbucket-auditor",
        "AUDITOR_EMAIL": "audit-bot@example.com",
        "AUDITOR_API_TOKEN": "secured-token-value",
        "BITBUCKET_WORKSPACE": "acme",
    }

    def run(commands: list[str]) -> subprocess.CompletedProcess[str]:
        body = "set -e\n" + "\n".join(commands).replace("/tmp/auditor-api-token", str(token_file))
        return subprocess.run(
            ["bash", "-c", body], env=environment, capture_output=True, text=True, check=False
        )

    failed = run(script)
    assert failed.returncode == 4, failed.stdout + failed.stderr
    assert seen.read_text() == "600\nsecured-token-value"
    assert token_file.exists()  # the step failed before the script's end …
    cleaned = run(after)
    assert cleaned.returncode == 0, cleaned.stderr
    assert not token_file.exists()  # … and the after-script removed it


# --- Dockerfile -----------------------------------------------------------------------------------


def _requirements() -> list[str]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    lines = parser["options"]["install_requires"].splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_the_dockerfile_installs_from_the_constraints_file_which_pins_every_dependency():
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^COPY [^\n]*\bconstraints\.txt\b", dockerfile, flags=re.M), dockerfile
    assert re.search(r"pip install [^\n]*-c constraints\.txt", dockerfile), dockerfile
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not pinned: {line}"
            pins[canonicalize_name(name)] = version.split(";")[0].strip()
    for text in _requirements():
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (text, pins[name])
        for extra in requirement.extras:
            assert canonicalize_name(f"{requirement.name}-{extra}") in pins or extra == "crypto"


# The image build itself is tests/test_operations.py's
# test_the_container_image_builds_and_runs_the_demo (docker, podman or buildah; skipped with the
# reason where none can build).


# --- the alert rules of docs/deploy ----------------------------------------------------------


def test_the_alert_rules_name_metrics_the_tool_writes(tmp_path):
    from datetime import UTC, datetime

    from auditor.monitoring import CollectedWorkspace, write_metrics

    rules = _load(DEPLOY / "alerts.yaml")
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert expressions
    metrics = tmp_path / "auditor.prom"
    now = datetime.now(UTC)
    write_metrics(
        metrics,
        [CollectedWorkspace("acme", True, now, 10, 0, 1.0, 2, 1, 0)],
        {"acme": now},
        {"acme": now},
        now,
    )
    written = set(re.findall(r"^(auditor_\w+)", metrics.read_text(), flags=re.M))
    for expression in expressions:
        named = set(re.findall(r"\b(auditor_\w+)", expression))
        assert named, expression
        assert named <= written, (expression, named - written)
