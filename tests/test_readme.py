"""Every ``hmmtie ...`` command shown in the READMEs runs, so the documentation cannot drift.

Commands are taken from fenced code blocks marked ``bash``, ``sh``, ``shell``
or ``console`` in ``README.md`` and ``data/examples/README.md``: lines that
start with ``hmmtie `` (``bash``/``sh``/``shell``) or ``$ hmmtie `` (any of
them; in ``console`` blocks the other lines are output).  A trailing ``\\``
continues a line.
They run in order, as real subprocesses of the installed console script,
through ``bash`` in a temporary folder holding a copy of ``data/`` -- so
paths such as ``data/examples/dna_a.fa`` work and outputs land in the
temporary folder.  A command must exit 0, unless the line ends with a
comment ``# exits N``.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
READMES = [ROOT / "README.md", ROOT / "data" / "examples" / "README.md"]
FENCE = re.compile(r"^(\s*)```+\s*(\w*)")
SHELL_LANGS = {"bash", "sh", "shell", "console"}
EXPECT = re.compile(r"#\s*exits\s+(\d+)\s*$")


def extract_commands(text: str) -> list[tuple[int, str]]:
    """(line number, command) of every hmmtie command in shell code blocks."""
    out = []
    in_block = False
    lang = ""
    pending = None
    for lineno, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if m:
            in_block = not in_block
            lang = m.group(2).lower() if in_block else ""
            pending = None
            continue
        if not in_block or lang not in SHELL_LANGS:
            continue
        stripped = line.strip()
        if pending is not None:
            start, parts = pending
            parts.append(stripped.rstrip("\\").strip())
            if not stripped.endswith("\\"):
                out.append((start, " ".join(parts)))
                pending = None
            continue
        if stripped.startswith("$ "):
            stripped = stripped[2:].lstrip()
        elif lang == "console":
            continue  # console blocks: only "$ " lines are commands, the rest is output
        if not stripped.startswith("hmmtie ") and stripped != "hmmtie":
            continue
        if stripped.endswith("\\"):
            pending = (lineno, [stripped.rstrip("\\").strip()])
        else:
            out.append((lineno, stripped))
    return out


def test_extract_commands():
    text = (
        "intro\n```bash\nhmmtie align a.fa b.fa\n$ hmmtie info 3state\nls\n"
        "hmmtie compare a.fa \\\n  b.fa --json\n```\n"
        "```python\nhmmtie = 1\n```\n```console\n$ hmmtie --version\nhmmtie 0.1.0\n```\n"
    )
    assert [c for _, c in extract_commands(text)] == [
        "hmmtie align a.fa b.fa", "hmmtie info 3state", "hmmtie compare a.fa b.fa --json", "hmmtie --version",
    ]


def _all_commands():
    cases = []
    for readme in READMES:
        if not readme.is_file():
            continue
        for lineno, cmd in extract_commands(readme.read_text(encoding="utf-8")):
            cases.append(pytest.param(readme, cmd, id=f"{readme.relative_to(ROOT)}:{lineno}"))
    return cases


CASES = _all_commands()

# the commands run in order in one working directory (a later one reads what an
# earlier one wrote): under pytest-xdist they stay on one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("readme-commands")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    work = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "data", work / "data")
    return work


def _script_env():
    env = dict(os.environ)
    exe = shutil.which("hmmtie")
    bindir = os.path.dirname(exe) if exe else os.path.dirname(sys.executable)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


def test_readmes_show_commands():
    if not any(r.is_file() for r in READMES):
        pytest.skip("no README yet")
    assert CASES, "the READMEs show no 'hmmtie ...' command in a bash/console code block"


@pytest.mark.parametrize("readme, command", CASES)
def test_readme_command_runs(readme, command, workdir):
    m = EXPECT.search(command)
    expected = int(m.group(1)) if m else 0
    proc = subprocess.run(["bash", "-c", command], cwd=workdir, env=_script_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == expected, (
        f"{readme.name}: `{command}` exited {proc.returncode} (expected {expected})\n"
        f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}"
    )
    if expected == 2:
        assert proc.stderr.strip().count("\n") == 0, proc.stderr  # input errors are one line
