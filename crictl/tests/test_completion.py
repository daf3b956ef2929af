"""``crictl completion``: the scripts are sourced in real bash, zsh and fish, and asked to complete.

bash is required; zsh and fish are tested when installed (Debian packages ``zsh`` and ``fish``).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from crictl.cli import COMMANDS
from crictl.tests.conftest import CLEAN_ENV, crictl_bin_dir, run_crictl

NAMES = [name for entry in COMMANDS for name in entry.names]
# Each line the user has typed before pressing TAB, and what must be offered.
CASES = [
    ("crictl i", {name for name in NAMES if name.startswith("i")}),
    ("crictl ", set(NAMES)),
    ("crictl --r", {"--runtime-endpoint"}),
    ("crictl -D ps --a", {"--all"}),
    ("crictl img --d", {"--digests"}),
    ("crictl help p", {"pods", "port-forward", "ps", "pull"}),
    ("crictl completion ", {"bash", "zsh", "fish"}),
]


@pytest.fixture(scope="module")
def shell_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment a shell needs to find this crictl first on its PATH."""
    bin_dir = crictl_bin_dir(tmp_path_factory.mktemp("bin"))
    return {**CLEAN_ENV, "PATH": f"{bin_dir}{os.pathsep}{CLEAN_ENV.get('PATH', '')}"}


def run_shell(argv: list[str], env: dict[str, str]) -> list[str]:
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def bash_completions(line: str, env: dict[str, str]) -> set[str]:
    script = """
        source <(crictl completion bash)
        read -ra COMP_WORDS <<< "$LINE"
        [[ "$LINE" == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
        _crictl_completion crictl
        printf '%s\\n' "${COMPREPLY[@]}"
    """
    return set(run_shell(["bash", "--norc", "-c", script], {**env, "LINE": line})) - {""}


def zsh_completions(line: str, env: dict[str, str]) -> set[str]:
    # _describe and compadd only work inside a completion widget; stand-ins print what they are given.
    script = """
        autoload -U compinit && compinit -u
        source <(crictl completion zsh)
        [[ ${_comps[crictl]} == _crictl_completion ]] || { print "not registered"; exit 1 }
        _describe() { print -rl -- "${(@P)3}" }
        compadd() { print -rl -- "${(@P)${@[-1]}}" }
        words=(${=LINE})
        [[ "$LINE" == *" " ]] && words+=("")
        CURRENT=${#words}
        _crictl_completion
    """
    lines = run_shell(["zsh", "-f", "-c", script], {**env, "LINE": line})
    return {entry.split(":")[0] for entry in lines} - {""}


def fish_completions(line: str, env: dict[str, str]) -> set[str]:
    script = 'crictl completion fish | source; complete -C "$LINE"'
    return {entry.split("\t")[0] for entry in run_shell(["fish", "--no-config", "-c", script], {**env, "LINE": line})}


@pytest.mark.parametrize(("line", "expected"), CASES, ids=[line for line, _ in CASES])
def test_bash(line: str, expected: set[str], shell_env: dict[str, str]) -> None:
    assert bash_completions(line, shell_env) == expected


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (apt-get install zsh)")
@pytest.mark.parametrize(("line", "expected"), CASES, ids=[line for line, _ in CASES])
def test_zsh(line: str, expected: set[str], shell_env: dict[str, str]) -> None:
    assert zsh_completions(line, shell_env) == expected


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed (apt-get install fish)")
@pytest.mark.parametrize(("line", "expected"), CASES, ids=[line for line, _ in CASES])
def test_fish(line: str, expected: set[str], shell_env: dict[str, str]) -> None:
    assert fish_completions(line, shell_env) == expected


def test_bash_is_the_default() -> None:
    assert run_crictl("completion").stdout == run_crictl("completion", "bash").stdout
    assert "complete -o nosort -F _crictl_completion crictl" in run_crictl("completion").stdout


def test_unsupported_shell() -> None:
    result = run_crictl("completion", "tcsh")
    assert result.returncode == 1
    assert result.stderr == "crictl: only bash, zsh or fish are supported\n"
