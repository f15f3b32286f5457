"""The control catalog: the shipped file, what a user may change, and every validation error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from controls_fixtures import finding, rows_of, run, write
from demo_fixture import demo_evidence

from auditor.controls.catalog import load_catalog
from auditor.controls.checks import REGISTRY
from auditor.errors import ConfigError
from auditor.resources import default_catalog_path

GUIDE = Path("/work/shared/guides/CONTROLS.md")
GUIDE_IDS = [
    *("INV-1", "INV-2"),
    *(f"AC-{n}" for n in range(1, 11)),
    *(f"CM-{n}" for n in range(1, 13)),
    *("SD-1", "SD-2", "SD-3", "CR-1", "CR-2"),
]


def test_shipped_catalog_has_every_control_of_the_guide_in_order():
    catalog = load_catalog()
    assert [control.id for control in catalog.controls] == GUIDE_IDS
    assert catalog.path == default_catalog_path()


@pytest.mark.skipif(not GUIDE.exists(), reason="the catalog guide is not on this machine")
def test_shipped_catalog_keeps_the_ids_and_titles_of_the_guide():
    rows = re.findall(r"^\| ((?:INV|AC|CM|SD|CR)-\d+) \| ([^|]+) \|", GUIDE.read_text(), re.M)
    catalog = load_catalog()
    assert {cid: title.strip() for cid, title in rows} == {c.id: c.title for c in catalog.controls}


def test_every_registered_check_is_used_by_the_shipped_catalog():
    catalog = load_catalog()
    assert catalog.unused_checks() == []
    used = {control.check for control in catalog.controls if control.check}
    # Data Center's rotation checks are used only by its variants of AC-7 and AC-8.
    used |= {
        variant.check
        for control in catalog.controls
        for variant in control.variants.values()
        if variant.check
    }
    assert used == set(REGISTRY)


def test_shipped_catalog_defaults_match_the_guide():
    catalog = load_catalog()
    values = {control.id: control.parameter_values() for control in catalog.controls}
    assert values["INV-2"]["max_inactive_days"] == 365
    assert values["AC-1"]["allowed_public"] == []
    assert values["AC-3"]["max_admins"] == 3
    assert values["AC-5"]["max_owners"] == 3
    assert values["AC-7"]["max_age_days"] == 365
    assert values["AC-8"]["max_unused_days"] == 90
    assert (values["CM-3"]["max_exempt_users"], values["CM-3"]["max_exempt_groups"]) == (0, 1)
    assert values["CM-4"]["min_approvals"] == 1
    assert values["CM-5"]["min_passing_builds"] == 1
    assert values["CM-10"]["min_approvals"] == 1
    assert values["CR-2"]["max_validity_days"] == 365


def test_shipped_catalog_maps_controls_to_the_guides_criteria():
    catalog = load_catalog()
    labels = {
        control.id: {catalog.framework_label(ref) for ref in control.frameworks}
        for control in catalog.controls
    }
    assert labels["CM-1"] == {"SOC 2 CC8.1", "ISO 27001 8.4", "ISO 27001 8.32"}
    assert labels["AC-4"] == {"SOC 2 CC6.2", "SOC 2 CC6.3", "ISO 27001 5.15", "ISO 27001 5.18"}
    assert labels["SD-2"] == {"SOC 2 CC6.7", "ISO 27001 8.20", "ISO 27001 8.24"}
    assert catalog.frameworks["iso27001"].criteria["8.20"].title == "Networks security"
    assert catalog.frameworks["iso27001"].criteria["8.2"].title == "Privileged access rights"


def test_manual_controls_say_what_to_attach():
    catalog = load_catalog()
    manual = [control for control in catalog.controls if not control.automated]
    assert [control.id for control in manual] == ["AC-9", "AC-10"]
    assert all(control.manual_evidence for control in manual)
    assert catalog.control("AC-9").datasets == (
        "repository_permissions",
        "repository_grants",
        "members",
    )


def test_catalog_sha256_is_of_the_file_bytes(tmp_path):
    import hashlib

    path = default_catalog_path()
    assert load_catalog(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


# --- A user changes the catalog without touching code -----------------------------------------


def _edited(tmp_path: Path, old: str, new: str, *, count: int = 1) -> Path:
    text = default_catalog_path().read_text(encoding="utf-8")
    assert text.count(old) >= count, old
    return write(tmp_path, "controls.yaml", text.replace(old, new, count))


def test_user_changes_a_parameter(tmp_path):
    catalog = load_catalog(_edited(tmp_path, "max_admins: 3", "max_admins: 5"))
    status, reason = _verdict(catalog, "AC-3", "acme/infra-terraform")
    assert status == "PASS"
    assert reason.endswith("; at most 5 are allowed.")


def _verdict(catalog, control_id, resource):
    row = finding(run(demo_evidence(), catalog), control_id, resource)
    return row["status"], row["reason"]


def test_user_remaps_a_control_to_other_criteria(tmp_path):
    old = "check: branch_restrictions_apply\n    parameters:\n      kinds: [force]"
    text = default_catalog_path().read_text(encoding="utf-8")
    start = text.index("  - id: CM-1\n")
    block = text[start : text.index(old, start)]
    edited = block.replace("soc2: [CC8.1]", "soc2: [CC7.2]")
    path = write(tmp_path, "controls.yaml", text.replace(block, edited, 1))
    row = finding(run(demo_evidence(), load_catalog(path)), "CM-1", "acme/payments-api")
    assert row["frameworks"] == "SOC 2 CC7.2; ISO 27001 8.4; ISO 27001 8.32"


def test_user_disables_a_control(tmp_path):
    catalog = load_catalog(
        _edited(
            tmp_path,
            "    check: workspace_owners\n",
            "    check: workspace_owners\n    enabled: false\n",
        )
    )
    result = run(demo_evidence(), catalog)
    assert rows_of(result, "AC-5").empty
    outcome = next(o for o in result.controls if o.id == "AC-5")
    assert (outcome.enabled, outcome.population) == (False, 0)


def test_user_scopes_a_control_to_one_project(tmp_path):
    catalog = load_catalog(
        _edited(
            tmp_path,
            "    check: branch_restrictions_apply\n    parameters:\n      kinds: [force]\n",
            "    check: branch_restrictions_apply\n    scope:\n      include: {projects: [CORE]}\n"
            "    parameters:\n      kinds: [force]\n",
        )
    )
    result = run(demo_evidence(), catalog)
    assert sorted(rows_of(result, "CM-1")["resource"]) == [
        "acme/internal-tools",
        "acme/ml-models",
        "acme/mobile-app",
        "acme/payments-api",
    ]
    assert next(o for o in result.controls if o.id == "CM-1").scope == "projects CORE"


def test_user_excludes_repositories_from_the_whole_catalog(tmp_path):
    catalog = load_catalog(
        _edited(
            tmp_path, "families:\n", "scope:\n  exclude: {repositories: [legacy-*]}\n\nfamilies:\n"
        )
    )
    result = run(demo_evidence(), catalog)
    assert "acme/legacy-billing" not in set(result.findings["repository"].dropna())
    assert result.coverage.repositories_excluded == 1
    row = finding(result, "INV-1", "acme")
    assert row["status"] == "PASS"
    assert "11 in scope, 1 excluded by scope filters" in row["reason"]


def test_user_adds_a_control_that_reuses_a_check_with_new_parameters(tmp_path):
    new_control = """
  - id: CM-13
    title: Merges into the default branch require two approvals
    family: change
    severity: medium
    objective: Two people review every change.
    frameworks:
      soc2: [CC8.1]
      iso27001: ["8.32"]
    check: required_approvals
    parameters:
      min_approvals: 2
      recommended_approvals: null
    procedure: As CM-4, with two approvals.
    remediation: Require two approvals.
"""
    text = default_catalog_path().read_text(encoding="utf-8") + new_control
    catalog = load_catalog(write(tmp_path, "controls.yaml", text))
    result = run(demo_evidence(), catalog)
    assert finding(result, "CM-13", "acme/web-frontend")["reason"] == (
        "acme/web-frontend requires 1 approval to merge into main; "
        "at least 2 approvals are required."
    )
    assert finding(result, "CM-13", "acme/web-frontend")["status"] == "FAIL"
    assert finding(result, "CM-13", "acme/payments-api")["status"] == "PASS"


# --- Invalid catalogs: one clear line each, naming file, line, column and control ---------------

MINIMAL = """\
version: 1
frameworks:
  soc2:
    name: SOC 2 Trust Services Criteria
    short_name: SOC 2
    version: "2017"
    criteria:
      CC8.1: Change management
  iso27001:
    name: ISO/IEC 27001:2022 Annex A
    short_name: ISO 27001
    version: "2022"
    criteria:
      "8.32": Change management
families:
  change: Change management
controls:
  - id: CM-4
    title: Merges require independent approval
    family: change
    severity: high
    objective: Every change is reviewed.
    frameworks:
      soc2: [CC8.1]
      iso27001: ["8.32"]
    check: required_approvals
    parameters:
      min_approvals: 2
    procedure: Read the merge checks.
    remediation: Add the merge check.
"""


def position(text: str, needle: str, start: int = 0) -> tuple[int, int]:
    """1-based line and column where ``needle`` first occurs in ``text`` after ``start``."""
    offset = text.index(needle, start)
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_catalog(path)
    return str(raised.value).splitlines()


def test_minimal_catalog_is_valid(tmp_path):
    catalog = load_catalog(write(tmp_path, "catalog.yaml", MINIMAL))
    assert [control.id for control in catalog.controls] == ["CM-4"]


INVALID_CATALOGS = [
    pytest.param(
        "min_approvals: 2",
        "min_aprovals: 2",
        "min_aprovals",
        "control CM-4: unknown parameter 'min_aprovals' (did you mean 'min_approvals'?)",
        id="unknown-parameter",
    ),
    pytest.param(
        "min_approvals: 2",
        "min_approvals: two",
        "two",
        "control CM-4: parameter 'min_approvals': input should be a valid integer (got 'two')",
        id="parameter-type",
    ),
    pytest.param(
        "min_approvals: 2",
        "min_approvals: 0",
        "0",
        "control CM-4: parameter 'min_approvals': input should be greater than or equal to 1 "
        "(got 0)",
        id="parameter-bound",
    ),
    pytest.param(
        "check: required_approvals",
        "check: required_aprovals",
        "required_aprovals",
        "control CM-4: unknown check 'required_aprovals' (did you mean 'required_approvals'?)",
        id="unknown-check",
    ),
    pytest.param(
        "    remediation: Add the merge check.\n",
        "    remediation: Add the merge check.\n    remediaton: typo\n",
        "remediaton",
        "control CM-4: unknown key 'remediaton' (did you mean 'remediation'?)",
        id="unknown-key",
    ),
    pytest.param(
        "    check: required_approvals\n",
        "    check: required_approvals\n    enabled: 'no'\n",
        "'no'",
        "control CM-4: enabled: input should be a valid boolean (got 'no')",
        id="wrong-type",
    ),
    pytest.param(
        "severity: high",
        "severity: urgent",
        "urgent",
        "control CM-4: severity: input should be 'critical', 'high', 'medium' or 'low' "
        "(got 'urgent')",
        id="bad-severity",
    ),
    pytest.param(
        "soc2: [CC8.1]\n      iso27001",
        "soc2: [CC8.2]\n      iso27001",
        "CC8.2",
        "control CM-4: unknown SOC 2 criterion 'CC8.2' (did you mean 'CC8.1'?)",
        id="unknown-criterion",
    ),
    pytest.param(
        'iso27001: ["8.32"]\n    check',
        'iso27002: ["8.32"]\n    check',
        "iso27002",
        "control CM-4: unknown framework 'iso27002' (did you mean 'iso27001'?)",
        id="unknown-framework",
    ),
    pytest.param(
        'iso27001: ["8.32"]\n    check',
        "iso27001: [8.32]\n    check",
        "8.32]",
        "control CM-4: frameworks.iso27001.0: input should be a valid string: write it in "
        "quotes, YAML reads 8.32 as a number",
        id="unquoted-criterion",
    ),
    pytest.param(
        "family: change",
        "family: chnage",
        "chnage",
        "control CM-4: unknown family 'chnage' (did you mean 'change'?)",
        id="unknown-family",
    ),
    pytest.param(
        "    check: required_approvals\n",
        "    check: required_approvals\n    scope:\n      include: {}\n",
        "{}",
        "control CM-4: scope.include is empty: it would match no repository; remove it to "
        "include every repository",
        id="empty-scope-include",
    ),
    pytest.param(
        "    check: required_approvals\n",
        "    check: required_approvals\n    scope:\n      exclude:\n"
        "        repositories: ['acme/[pay']\n",
        "'acme/[pay'",
        "control CM-4: scope: pattern 'acme/[pay' has an unclosed '['",
        id="bad-scope-glob",
    ),
    pytest.param(
        "    procedure: Read the merge checks.\n",
        "",
        "id: CM-4",
        "control CM-4: missing required key 'procedure'",
        id="missing-key",
    ),
    pytest.param(
        "    check: required_approvals\n    parameters:\n      min_approvals: 2\n",
        "    manual_evidenc: A screenshot.\n",
        "manual_evidenc",
        "control CM-4: unknown key 'manual_evidenc' (did you mean 'manual_evidence'?)",
        id="manual-typo",
    ),
    pytest.param(
        "    check: required_approvals\n",
        "    check: required_approvals\n    max_observation_gap: 0\n",
        "0\n",
        "control CM-4: max_observation_gap: input should be greater than or equal to 1 (got 0)",
        id="observation-gap-bound",
    ),
    pytest.param(
        "    check: required_approvals\n",
        "    check: required_approvals\n    max_observation_gap: 7d\n",
        "7d",
        "control CM-4: max_observation_gap: input should be a valid integer (got '7d')",
        id="observation-gap-type",
    ),
]


@pytest.mark.parametrize(("old", "new", "at", "message"), INVALID_CATALOGS)
def test_invalid_catalog_gives_one_line_naming_file_line_column_and_control(
    tmp_path, old, new, at, message
):
    text = MINIMAL.replace(old, new, 1)
    assert text != MINIMAL
    path = write(tmp_path, "catalog.yaml", text)
    line, column = position(text, at, text.index(new) if new else 0)
    assert errors_of(path) == [f"{path}:{line}:{column}: {message}"]


def test_duplicate_control_id_names_the_first_definition(tmp_path):
    control = MINIMAL[MINIMAL.index("  - id: CM-4") :]
    text = MINIMAL + control
    path = write(tmp_path, "catalog.yaml", text)
    second = text.index("  - id: CM-4", text.index("  - id: CM-4") + 1)
    line = text.count("\n", 0, second) + 1
    assert errors_of(path) == [
        f"{path}:{line}:9: control CM-4: duplicate control ID CM-4 (first defined on line 18)"
    ]


def test_manual_control_without_evidence_to_attach_is_refused(tmp_path):
    text = MINIMAL.replace(
        "    check: required_approvals\n    parameters:\n      min_approvals: 2\n", ""
    )
    path = write(tmp_path, "catalog.yaml", text)
    assert errors_of(path) == [
        f"{path}:18:5: control CM-4: a control without a check is manual and needs "
        "'manual_evidence' (what a person must attach)"
    ]


def test_scope_on_a_workspace_level_check_is_refused(tmp_path):
    text = MINIMAL.replace(
        "    check: required_approvals\n    parameters:\n      min_approvals: 2\n",
        "    check: workspace_owners\n    scope:\n      include: {projects: [CORE]}\n",
    )
    path = write(tmp_path, "catalog.yaml", text)
    line, column = position(text, "scope:")
    assert errors_of(path) == [
        f"{path}:{line}:{column}: control CM-4: a scope filters repositories, but check "
        "'workspace_owners' judges workspaces"
    ]


def test_yaml_syntax_error_names_the_position(tmp_path):
    text = MINIMAL.replace('iso27001: ["8.32"]\n    check', 'iso27001: ["8.32"\n    check')
    path = write(tmp_path, "catalog.yaml", text)
    [message] = errors_of(path)
    assert re.fullmatch(rf"{re.escape(str(path))}:\d+:\d+: invalid YAML: .+", message), message


def test_every_error_is_reported_not_only_the_first(tmp_path):
    text = MINIMAL.replace("min_approvals: 2", "min_aprovals: 2").replace(
        "family: change", "family: chnage"
    )
    path = write(tmp_path, "catalog.yaml", text)
    family_line, _ = position(text, "family: chnage")
    parameter_line, _ = position(text, "min_aprovals")
    assert errors_of(path) == [
        f"{path}:{family_line}:13: control CM-4: unknown family 'chnage' (did you mean 'change'?)",
        f"{path}:{parameter_line}:7: control CM-4: unknown parameter 'min_aprovals' "
        "(did you mean 'min_approvals'?)",
    ]


def test_a_user_catalog_may_omit_controls_even_if_checks_go_unused(tmp_path):
    catalog = load_catalog(write(tmp_path, "catalog.yaml", MINIMAL))
    assert "workspace_owners" in catalog.unused_checks()


@pytest.mark.parametrize(
    ("old", "new", "at", "message"),
    [
        (
            "families:\n",
            "famlies:\n",
            "famlies",
            "unknown key 'famlies' (did you mean 'families'?)",
        ),
        (
            "    short_name: SOC 2\n",
            "",
            "name: SOC 2",
            "framework soc2: missing required key 'short_name'",
        ),
        (
            '      "8.32": Change management',
            "      8.32: Change management",
            "8.32:",
            "framework iso27001: key 8.32 must be text: write it in quotes, YAML reads 8.32 as a "
            "number",
        ),
        (
            "    title: Merges require independent approval\n",
            "    titel: Merges require independent approval\n",
            "titel",
            "control CM-4: unknown key 'titel' (did you mean 'title'?)",
        ),
        ("version: 1\n", "version: 2\n", "2\n", "version: input should be 1 (got 2)"),
    ],
    ids=["families-typo", "framework-field", "unquoted-criterion-key", "title-typo", "version"],
)
def test_a_broken_definition_gives_one_line_not_one_per_reference(tmp_path, old, new, at, message):
    text = MINIMAL.replace(old, new, 1)
    assert text != MINIMAL
    path = write(tmp_path, "catalog.yaml", text)
    line, column = position(text, at, text.index(new) if new else 0)
    assert errors_of(path) == [f"{path}:{line}:{column}: {message}"]


def test_max_observation_gap_defaults_to_7_days_and_is_settable_per_control(tmp_path):
    assert load_catalog(write(tmp_path, "default.yaml", MINIMAL)).max_observation_gap == 7
    text = MINIMAL.replace("version: 1\n", "version: 1\nmax_observation_gap: 10\n", 1).replace(
        "    check: required_approvals\n",
        "    check: required_approvals\n    max_observation_gap: 3\n",
        1,
    )
    catalog = load_catalog(write(tmp_path, "gaps.yaml", text))
    assert catalog.max_observation_gap == 10
    assert catalog.observation_gap(catalog.control("CM-4")) == 3


def test_catalog_wide_max_observation_gap_is_validated_with_its_line(tmp_path):
    text = MINIMAL.replace("version: 1\n", "version: 1\nmax_observation_gap: -1\n", 1)
    path = write(tmp_path, "catalog.yaml", text)
    line, column = position(text, "-1", 0)
    assert errors_of(path) == [
        f"{path}:{line}:{column}: max_observation_gap: input should be greater than or equal to "
        "1 (got -1)"
    ]
