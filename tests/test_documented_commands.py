"""Every snakemake command the README and docs/ show parses and plans: each is dry-run.

A command is taken from a fenced code block (continuation lines joined, the comment
after it dropped) or from inline code in the prose. Placeholders are filled with a
real preset, and a file a block writes with a here-document is written first. What
cannot be checked here is skipped with the reason: an executor plugin that is not
installed, conda where it is absent; a report needs a finished run (its configuration
is dry-run instead), and so does an export (an unfinished study must be refused with
the designed message).
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SHARED_CIFAR = ROOT.parent / "shared" / "data" / "cifar10-subset" / "cifar-10-batches-py"

PLACEHOLDERS = {
    "<preset>": "configs/smoke.yaml",
    "configs/X.yaml configs/overlays/Y.yaml": "configs/smoke.yaml configs/overlays/generalization-stability.yaml",
    "<N x jobs_per_gpu>": "8",
    "measure_<family>": "measure_pruning",
}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
HEREDOC = re.compile(r"^cat > (\S+) <<'?(\w+)'?\n(.*?)^\2$", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`(snakemake [^`]+)`")


def documented_commands() -> list[tuple[str, str, dict[str, str]]]:
    """(where, command, files its block writes) for every snakemake command shown."""
    found = []
    for path in DOCS:
        text = path.read_text()
        where = str(path.relative_to(ROOT))
        blocks = [m.group(2) for m in FENCE.finditer(text)]
        # an indented block (four spaces) is code too
        blocks += ["\n".join(line[4:] for line in m.group(0).splitlines())
                   for m in re.finditer(r"(?:^    \s*\S.*\n?)+", FENCE.sub("", text), re.MULTILINE)]
        for block in blocks:
            files = {m.group(1): m.group(3) for m in HEREDOC.finditer(block)}
            joined = re.sub(r"\\\n\s*", " ", HEREDOC.sub("", block))
            for line in joined.splitlines():
                line = re.sub(r"\s+", " ", line.split(" #")[0]).strip()
                if line.startswith("snakemake "):
                    found.append((where, line, files))
        prose = FENCE.sub("", text)
        found += [(where, re.sub(r"\s+", " ", m.group(1)), {}) for m in INLINE.finditer(prose)]
    unique = {}
    for where, command, files in found:
        unique.setdefault(command, (where, command, files))
    return list(unique.values())


def test_the_docs_show_commands():
    commands = [c for _, c, _ in documented_commands()]
    assert any("--configfile configs/smoke.yaml" in c for c in commands)
    assert any(c.startswith("snakemake stability_analysis") for c in commands)
    assert len(commands) >= 15


def test_a_heredoc_and_a_continuation_are_read(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text("x\n\n```bash\ncat > a.yaml <<'END'\nk: 1\nEND\n"
                    "snakemake --cores 1 \\\n    --configfile a.yaml  # why\n```\n\nrun `snakemake train_all --cores 1`.\n")
    monkeypatch.setattr(sys.modules[__name__], "DOCS", [page])
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert documented_commands() == [("page.md", "snakemake --cores 1 --configfile a.yaml", {"a.yaml": "k: 1\n"}),
                                     ("page.md", "snakemake train_all --cores 1", {})]


@pytest.mark.parametrize("where,command,files", documented_commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_the_command_dry_runs(where, command, files, tmp_path):
    if "--unlock" in command:
        pytest.skip("--unlock acts on the checkout's lock, not a plan")
    if "--executor slurm" in command and importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip("snakemake-executor-plugin-slurm is not installed (it stays out of the test environment)")
    if "--sdm conda" in command and shutil.which("conda") is None:
        pytest.skip("conda is not installed")
    for placeholder, value in PLACEHOLDERS.items():
        command = command.replace(placeholder, value)
    if "/path/to/cifar-10-batches-py" in command:
        if not SHARED_CIFAR.is_dir():
            pytest.skip("needs a local CIFAR-10 folder (../shared's subset is not beside this checkout)")
        command = command.replace("/path/to/cifar-10-batches-py", str(SHARED_CIFAR))
    args = shlex.split(command)[1:]
    for name, content in files.items():
        (tmp_path / name).write_text(content)
        args = [str(tmp_path / a) if a == name else a for a in args]
    if "--report" in args:  # a report needs a finished run: plan its configuration instead
        at = args.index("--report")
        del args[at:at + 2]
    if not {"-n", "--dry-run", "--dryrun"} & set(args):
        args.append("--dry-run")
    run = subprocess.run([sys.executable, "-m", "snakemake", *args, "--quiet", "rules"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    if args[0] == "export" and "it is not finished" in run.stdout + run.stderr:
        # an unfinished study is refused by design, naming what to run first
        assert "Run the study first" in run.stdout + run.stderr
        return
    assert run.returncode == 0, f"{where}: {command}\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
