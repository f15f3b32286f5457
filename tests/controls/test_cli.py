"""``auditor controls validate`` and ``auditor controls list`` through the real entry point."""

from __future__ import annotations

import json

from click.testing import CliRunner
from controls_fixtures import write

from auditor.cli import main
from auditor.controls import demo
from auditor.resources import default_catalog_path


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_validate_the_shipped_catalog():
    result = invoke("controls", "validate")
    assert result.exit_code == 0, result.output
    assert (
        result.output == "controls.yaml: 29 controls valid (27 automated, 2 manual, 0 disabled)\n"
    )


def test_validate_a_catalog_and_an_exceptions_file():
    path = str(default_catalog_path())
    result = invoke("controls", "validate", path, "--exceptions", str(demo.exceptions_path()))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"{path}: 29 controls valid (27 automated, 2 manual, 0 disabled)",
        f"{demo.exceptions_path()}: 3 exceptions valid",
    ]


def test_validate_reports_every_error_with_exit_code_2(tmp_path):
    text = default_catalog_path().read_text(encoding="utf-8")
    text = text.replace("min_approvals: 1\n      recommended", "min_aprovals: 1\n      recommended")
    text = text.replace(
        "family: inventory\n    severity: low", "family: inventry\n    severity: low"
    )
    path = write(tmp_path, "controls.yaml", text)
    result = invoke("controls", "validate", str(path))
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2, result.output
    assert lines[0].startswith(f"error: {path}:")
    assert lines[0].endswith(
        ": control INV-2: unknown family 'inventry' (did you mean 'inventory'?)"
    )
    assert lines[1].startswith(f"{path}:")
    assert lines[1].endswith(
        ": control CM-4: unknown parameter 'min_aprovals' (did you mean 'min_approvals'?)"
    )


def test_validate_refuses_a_bad_exceptions_file_with_exit_code_2(tmp_path):
    path = write(
        tmp_path,
        "exceptions.yaml",
        "- control: XX-1\n  resource: a\n  reason: r\n  approved_by: b\n  ticket: t\n"
        "  expires: 2027-01-01\n",
    )
    result = invoke("controls", "validate", "--exceptions", str(path))
    assert result.exit_code == 2, result.output
    assert result.output.splitlines()[-1] == (
        f"error: {path}:1:12: exception #1 (XX-1): unknown control 'XX-1'"
    )


def test_validate_a_missing_file_is_a_usage_error(tmp_path):
    result = invoke("controls", "validate", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2, result.output
    assert "does not exist" in result.output


def test_list_as_json():
    result = invoke("controls", "list", "--format", "json")
    assert result.exit_code == 0, result.output
    controls = json.loads(result.output)
    assert len(controls) == 29
    cm4 = next(c for c in controls if c["id"] == "CM-4")
    assert cm4 == {
        "id": "CM-4",
        "title": "Merges require independent approval",
        "family": "Change management",
        "severity": "high",
        "frameworks": ["SOC 2 CC8.1", "ISO 27001 8.32", "ISO 27001 8.25"],
        "automated": True,
        "check": "required_approvals",
        "parameters": {
            "min_approvals": 1,
            "recommended_approvals": 2,
            "kinds": ["require_approvals_to_merge"],
        },
        "enabled": True,
        "scope": "all repositories",
    }
    assert [c["automated"] for c in controls if c["id"] in ("AC-9", "AC-10")] == [False, False]


def test_list_as_table_shows_id_title_frameworks_type_and_enabled(tmp_path):
    text = (
        default_catalog_path()
        .read_text(encoding="utf-8")
        .replace(
            "    check: workspace_owners\n", "    check: workspace_owners\n    enabled: false\n"
        )
    )
    result = invoke("controls", "list", str(write(tmp_path, "controls.yaml", text)))
    assert result.exit_code == 0, result.output
    ac5 = next(line for line in result.output.splitlines() if "│ AC-5 " in line)
    cells = [cell.strip() for cell in ac5.strip("│ ").split("│")]
    assert cells == [
        "AC-5",
        "Workspace owners are few",
        "SOC 2 CC6.3, ISO 27001 8.2",
        "automated",
        "no",
    ]
    ac9 = next(line for line in result.output.splitlines() if "│ AC-9 " in line)
    assert "manual" in ac9


def test_commands_have_help():
    for command in ("validate", "list"):
        result = invoke("controls", command, "--help")
        assert result.exit_code == 0, result.output
        assert "default: the shipped controls.yaml" in result.output
    assert "Also validate this exceptions file" in invoke("controls", "validate", "--help").output
    assert "Print a table for people or JSON" in invoke("controls", "list", "--help").output
