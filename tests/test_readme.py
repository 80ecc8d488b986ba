"""The README's set-up commands are the ones CI runs."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_starts_with_exactly_two_setup_commands():
    lines = readme_setup_commands()
    assert len(lines) == 2
    assert all(line.startswith("python3 -m venv .venv") for line in lines)
    assert "torch==2.13.0" in lines[0] and "torch==2.13.0" in lines[1]


def test_ci_runs_the_readme_test_command():
    assert readme_setup_commands()[1] in (ROOT / ".ci" / "run").read_text()
