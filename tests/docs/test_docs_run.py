"""Every fenced code block of README.md and docs/*.md runs, or says why it does not (issue 27).

- ```python blocks run in document order in one namespace per file, in a fresh `repast init` repo that
  has been applied (the current directory while they run).
- shell blocks (```bash, ```sh, ```console or no language): each command runs in that repo with
  bash, in document order. In a transcript (lines starting with `$ `) only those lines are commands,
  and a command whose shown output has an `Error:` line must exit 1; otherwise it must exit 0. Only
  `repast` and `cd` commands run here: a block with others (make, curl, kubectl, ...) is marked.
- ```yaml and ```json blocks must parse; ```text blocks are output or diagrams, not code.
- A block that cannot run here (it needs a server, a cluster, the cloud, or shows an edited repo)
  carries `<!-- not-run: reason -->` on the line before its fence.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\s*$")
NOT_RUN = re.compile(r"^<!--\s*not-run:\s*(.*?)\s*-->\s*$")
SHELL = {"", "bash", "sh", "shell", "console"}
RUNNABLE_COMMANDS = {"repast", "cd"}


@dataclass
class Block:
    path: Path
    line: int  # of the opening fence, from 1
    lang: str
    text: str
    not_run: str | None  # the reason, when marked

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    lines = path.read_text().splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        marker = NOT_RUN.match(lines[i - 1]) if i else None
        found.append(Block(path, i + 1, match.group(1), "\n".join(lines[i + 1:end]) + "\n",
                           marker.group(1) if marker else None))
        i = end + 1
    return found


def shell_commands(text: str) -> list[tuple[str, bool]]:
    """(command, expected to fail) for each command of a shell block."""
    lines = text.replace("\\\n", " ").splitlines()
    transcript = any(line.startswith("$ ") for line in lines)
    commands: list[tuple[str, bool]] = []
    for line in lines:
        if transcript and line.startswith("$ "):
            commands.append((line[2:], False))
        elif transcript and commands and line.startswith("Error:"):
            commands[-1] = (commands[-1][0], True)
        elif not transcript and line.strip() and not line.lstrip().startswith("#"):
            commands.append((line, False))
    return [(re.sub(r"\s+#.*$", "", command).strip(), fails) for command, fails in commands]


def run_shell(block: Block, cwd: Path, state: dict[str, Any]) -> None:
    for command, fails in shell_commands(block.text):
        word = command.split()[0]
        assert word in RUNNABLE_COMMANDS, (
            f"{block.where()}: runs `{word}`; only {sorted(RUNNABLE_COMMANDS)} run here: "
            "mark the block with <!-- not-run: reason --> on the line before its fence")
        if word == "cd":
            state["cwd"] = (state.get("cwd", cwd) / command.split(maxsplit=1)[1]).resolve()
            continue
        result = _run_bash(f'repast() {{ "{sys.executable}" -m repast "$@"; }}; {command}', state.get("cwd", cwd),
                           f"{block.where()}: `{command}`")
        expected = 1 if fails else 0
        assert result.returncode == expected, (
            f"{block.where()}: `{command}` exited {result.returncode}, expected {expected}\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


def _run_bash(script: str, cwd: Path, what: str) -> subprocess.CompletedProcess[str]:
    """`script` in its own process group, all of it killed if it has not ended in 180 s (a command
    that serves until stopped, in a block not marked not-run, must not outlive the test)."""
    proc = subprocess.Popen(["bash", "-c", script], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "COLUMNS": "200"}, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError(f"{what} did not end within 180 s: does it serve until stopped? mark its block "
                             "with <!-- not-run: reason -->") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run_python(block: Block, namespace: dict[str, Any]) -> None:
    try:
        exec(compile(block.text, block.where(), "exec"), namespace)
    except Exception as e:
        raise AssertionError(f"{block.where()}: the python block raised {type(e).__name__}: {e}") from e


def check_data(block: Block) -> None:
    try:
        if block.lang == "yaml":
            list(yaml.safe_load_all(block.text))
        elif block.lang == "json":
            json.loads(block.text)
    except (yaml.YAMLError, ValueError) as e:
        raise AssertionError(f"{block.where()}: the {block.lang} block does not parse ({e}); fix it or "
                             "mark it with <!-- not-run: reason -->") from e


@pytest.fixture
def applied_repo(tmp_path: Path) -> Path:
    for args in (["init", "repo"], ["--repo", "repo", "apply"]):
        subprocess.run([sys.executable, "-m", "repast", *args], cwd=tmp_path, check=True, capture_output=True)
    return tmp_path / "repo"


def test_not_run_markers_give_a_reason() -> None:
    empty = [b.where() for path in DOCS for b in blocks(path) if b.not_run == ""]
    assert not empty


def test_every_block_has_a_known_language() -> None:
    unknown = [f"{b.where()} ({b.lang})" for path in DOCS for b in blocks(path)
               if b.lang not in SHELL | {"python", "yaml", "json", "text"}]
    assert not unknown


@pytest.mark.slow
@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_code_block_runs_or_says_why_not(path: Path, applied_repo: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(applied_repo)
    monkeypatch.syspath_prepend(str(applied_repo))
    namespace: dict[str, Any] = {"__name__": "__doc_block__"}
    state: dict[str, Any] = {}
    failures: list[str] = []
    for block in blocks(path):
        if block.not_run is not None or block.lang == "text":
            continue
        try:
            if block.lang == "python":
                monkeypatch.chdir(state.get("cwd", applied_repo))
                run_python(block, namespace)
            elif block.lang in SHELL:
                run_shell(block, applied_repo, state)
            else:
                check_data(block)
        except AssertionError as e:
            failures.append(str(e).split("\nassert ")[0])
    assert not failures, "\n\n".join(failures)
