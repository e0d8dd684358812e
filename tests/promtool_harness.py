"""promtool for alert rules: `check rules` on the rendered groups, `test rules` with a unit-test file beside them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: `make tools` (Debian's prometheus package) installs it"
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, check=False)


def check_and_test(groups: list[dict], tests: Path | None, directory: Path) -> None:
    """The groups pass `promtool check rules`, and `tests` (rule_files: [rules.yaml]) passes `test rules`."""
    (directory / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    commands = [["check", "rules", "rules.yaml"]]
    if tests is not None:
        shutil.copy(tests, directory / tests.name)
        commands.append(["test", "rules", tests.name])
    for command in commands:
        result = promtool(*command, cwd=directory)
        assert result.returncode == 0, result.stdout + result.stderr
