"""No silent reinterpretation: what the first word of a command line means,
abbreviations, refused sops commands, version identity, the sops link and
shell completion."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sopsflow.commands import classic
from sopsflow.main import COMMANDS, build_parser

from .compat.classic_oracle import sops_named_sopsflow
from .conftest import REPO, base_env, run_sopsflow
from .vectors import AGE_KEY_FILE, AGE_RECIPIENT

# Appends a line to a new file's example document, so the edit is a change.
EDITOR = "import sys; p = sys.argv[-1]; open(p, 'a').write('added: 1\\n')"


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _parsers(sub)
    return found


def test_no_parser_accepts_an_abbreviation() -> None:
    parsers = _parsers(build_parser())
    assert len(parsers) > len(COMMANDS)
    assert [p.prog for p in parsers if p.allow_abbrev] == []


def test_abbreviated_flags_are_refused(tmp_path: Path) -> None:
    done = run_sopsflow(["decrypt", "--ignore-ma", str(tmp_path / "x.yaml")])
    assert done.returncode == 2 and b"unrecognized arguments: --ignore-ma" in done.stderr
    done = run_sopsflow(["--decrypt-order", "age", "x.yaml"])
    assert done.returncode == 1 and done.stdout.startswith(b"Incorrect Usage. flag provided but not defined")


def test_decrypt_is_not_decryption_order(tmp_path: Path) -> None:
    env = base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE))
    plain = tmp_path / "s.yaml"
    plain.write_text("password: x\n")
    assert run_sopsflow(["--encrypt", "--age", AGE_RECIPIENT, "--in-place", str(plain)], env=env).returncode == 0
    done = run_sopsflow(["--decrypt", str(plain)], env=env)
    assert done.returncode == 0 and done.stdout == b"password: x\n"


@pytest.mark.parametrize("name", sorted(set(classic.SOPS_COMMANDS) | set(COMMANDS)))
def test_a_command_name_is_never_a_file_to_edit(name: str, tmp_path: Path) -> None:
    env = base_env(EDITOR=f"{sys.executable} -c \"{EDITOR}\"", SOPS_AGE_RECIPIENTS=AGE_RECIPIENT)
    done = run_sopsflow([name], env=env, cwd=tmp_path)
    assert not (tmp_path / name).exists(), (done.returncode, done.stderr)
    assert b"Traceback" not in done.stderr
    if name in classic.REFUSED:
        assert done.returncode == 1 and done.stdout == b""
        lines = done.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and f"`{name}` is not supported" in lines[0] and "use" in lines[0]


@pytest.mark.parametrize("name", sorted(classic.REFUSED))
def test_a_refused_command_is_refused_with_arguments_and_flags(name: str, tmp_path: Path) -> None:
    done = run_sopsflow(["--verbose", name, "--help"], cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.count(b"\n") == 1


@pytest.mark.parametrize("name", ["keyservice", "publish", "decrypt", "check"])
def test_a_file_named_like_a_command_is_edited_as_dot_slash(name: str, tmp_path: Path) -> None:
    env = base_env(EDITOR=f"{sys.executable} -c \"{EDITOR}\"", SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE))
    done = run_sopsflow(["--input-type", "yaml", "--output-type", "yaml", "-a", AGE_RECIPIENT, f"./{name}"],
                        env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    decrypted = run_sopsflow(["-d", "--input-type", "yaml", "--output-type", "yaml", f"./{name}"], env=env, cwd=tmp_path)
    assert decrypted.returncode == 0 and b"added: 1" in decrypted.stdout


def test_help_command(tmp_path: Path) -> None:
    done = run_sopsflow(["help"], cwd=tmp_path)
    assert done.returncode == 0 and b"--decrypt" in done.stdout
    done = run_sopsflow(["h", "decrypt"], cwd=tmp_path)
    assert done.returncode == 0 and b"--extract" in done.stdout
    done = run_sopsflow(["help", "nosuch"], cwd=tmp_path)
    assert done.returncode == 3 and done.stderr == b"No help topic for 'nosuch'\n"


def test_check_does_not_import_the_classic_command_line() -> None:
    code = (
        "import sys\nfrom sopsflow.main import main\n"
        "try:\n    main(['check', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('sopsflow.commands.classic' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=base_env(PYTHONPATH=str(REPO)), capture_output=True,
                          check=True)
    assert done.stdout.strip().endswith(b"False")


# --- version identity and the sops link --------------------------------------------------


def test_version_under_the_name_sops(tmp_path: Path) -> None:
    import sopsflow

    launcher = sops_named_sopsflow(tmp_path / "bin")
    for flag in ("--version", "-v"):
        done = subprocess.run([str(launcher), flag], env=base_env(), capture_output=True, check=True)
        first = done.stdout.decode().splitlines()[0]
        # The pattern Ansible's community.sops parses.
        assert re.match(r"^sops (\d+)\.(\d+)\.(\d+)", first)
        assert first == f"sops 3.11.0 (sopsflow {sopsflow.__version__})"
        assert done.stderr == b""


def test_version_under_its_own_name() -> None:
    import sopsflow

    for argv in (["--version"], ["-v"], ["--version", "check"]):
        done = run_sopsflow(argv)
        first = done.stdout.decode().splitlines()[0]
        assert done.returncode == 0 and first.startswith(f"sopsflow {sopsflow.__version__} ")
        assert "sops 3.11.0" in first and not first.startswith("sops ")


def test_install_sops_link(tmp_path: Path) -> None:
    program = shutil.which("sopsflow", path=str(Path(sys.executable).parent))
    if program is None:
        pytest.skip("the sopsflow console script is not installed next to this Python")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    done = run_sopsflow(["install-sops-link", str(bindir)])
    assert done.returncode == 0, done.stderr
    link = bindir / "sops"
    assert link.is_symlink() and os.path.realpath(link) == os.path.realpath(program)
    again = run_sopsflow(["install-sops-link", str(bindir)])
    assert again.returncode == 0 and b"already" in again.stdout
    # Never shadows a real sops without being asked.
    link.unlink()
    link.write_text("#!/bin/sh\necho real sops\n")
    refused = run_sopsflow(["install-sops-link", str(bindir)])
    assert refused.returncode == 1 and b"--force" in refused.stderr and link.read_text().startswith("#!")
    forced = run_sopsflow(["install-sops-link", "--force", str(bindir)])
    assert forced.returncode == 0 and link.is_symlink()
    version = subprocess.run([str(link), "--version"], env=base_env(PYTHONPATH=str(REPO)), capture_output=True)
    assert version.stdout.startswith(b"sops 3.11.0 (sopsflow ")
    assert run_sopsflow(["install-sops-link", str(tmp_path / "nodir")]).returncode == 1


# --- shell completion ------------------------------------------------------------------------


def _complete(script: str, words: list[str], prog: str) -> list[str]:
    line = " ".join(words)
    shell = (
        f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; "
        f"_{prog}_complete; printf '%s\\n' \"${{COMPREPLY[@]}}\""
    )
    done = subprocess.run(["bash", "-c", shell], capture_output=True, check=True, cwd="/")
    return done.stdout.decode().split()


def test_bash_completion_covers_sops_and_sopsflow_commands() -> None:
    done = run_sopsflow(["completion", "bash"])
    assert done.returncode == 0
    script = done.stdout.decode()
    assert "complete -o default -F _sopsflow_complete sopsflow" in script
    assert {"decrypt", "deltas"} & set(_complete(script, ["sopsflow", "de"], "sopsflow")) == {"decrypt"}
    assert "check" in _complete(script, ["sopsflow", "ch"], "sopsflow")
    assert "--extract" in _complete(script, ["sopsflow", "decrypt", "--ex"], "sopsflow")
    assert "--decrypt" in _complete(script, ["sopsflow", "--dec"], "sopsflow")
    assert set(_complete(script, ["sopsflow", "completion", ""], "sopsflow")) >= {"bash", "zsh"}


def test_completion_under_the_name_sops_and_its_errors(tmp_path: Path) -> None:
    launcher = sops_named_sopsflow(tmp_path / "bin")
    done = subprocess.run([str(launcher), "completion", "bash"], env=base_env(), capture_output=True)
    assert done.returncode == 0 and b"-F _sops_complete sops\n" in done.stdout
    zsh = subprocess.run([str(launcher), "completion", "zsh"], env=base_env(), capture_output=True)
    assert zsh.returncode == 0 and zsh.stdout.startswith(b"#compdef sops\n")
    if shutil.which("zsh"):
        assert subprocess.run(["zsh", "-n"], input=zsh.stdout, capture_output=True).returncode == 0
    fish = subprocess.run([str(launcher), "completion", "fish"], env=base_env(), capture_output=True)
    assert fish.returncode == 3 and fish.stderr == b"No help topic for 'fish'\n"
    bare = subprocess.run([str(launcher), "completion"], env=base_env(), capture_output=True)
    assert bare.returncode == 0 and b"bash" in bare.stdout


# --- every command's --help --------------------------------------------------------------------


def _leaf_parsers() -> list[argparse.ArgumentParser]:
    return [p for p in _parsers(build_parser())[1:]
            if not any(isinstance(a, argparse._SubParsersAction) for a in p._actions)]


@pytest.mark.parametrize("parser", _leaf_parsers(), ids=lambda p: p.prog)
def test_every_flag_has_a_help_line(parser: argparse.ArgumentParser) -> None:
    missing = [a.option_strings for a in parser._actions
               if a.option_strings and a.help is None and a.help != argparse.SUPPRESS]
    assert missing == []


def _example_argvs() -> list[tuple[str, list[str]]]:
    import shlex

    from sopsflow.commands.examples import EXAMPLES

    found = []
    for command, lines in EXAMPLES.items():
        for line in lines:
            words = shlex.split(line, comments=True)
            start = words.index("sopsflow") if "sopsflow" in words else -1
            if start < 0 or (start > 0 and "=" not in words[start - 1] and words[start - 1] != "|"):
                continue  # a git command that installs sopsflow, not a sopsflow command line
            argv = []
            for word in words[start + 1:]:
                if word in ("|", ">", ">>", "<"):
                    break
                argv.append(word)
            found.append((command, argv))
    return found


@pytest.mark.parametrize(("command", "argv"), _example_argvs(), ids=lambda v: str(v)[:60])
def test_every_example_parses(command: str, argv: list[str]) -> None:
    """An example in --help is a valid command line for that command."""
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    args = parser.parse_args(argv if argv[0] in COMMANDS else ["edit", *argv])
    assert args.func is not None and " ".join(argv).startswith(command.split()[0] if argv[0] in COMMANDS else "")


@pytest.mark.parametrize("parser", _leaf_parsers() + [p for p in _parsers(build_parser())[1:]],
                         ids=lambda p: p.prog)
def test_every_command_help_shows_examples(parser: argparse.ArgumentParser) -> None:
    import contextlib
    import io

    from sopsflow.main import main

    argv = parser.prog.split()[1:] + ["--help"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(argv)
    text = out.getvalue()
    assert "examples:" in text
    examples = text.split("examples:", 1)[1].strip().splitlines()
    assert 2 <= len(examples) <= 3 and all(line.strip().startswith(("sopsflow", "git", "EDITOR", "cat", "printf",
                                                                        "echo")) for line in examples), examples


@pytest.mark.parametrize("argv", [
    ["--keyservice", "tcp://127.0.0.1:1", "-d", "x.yaml"],
    ["decrypt", "--keyservice", "tcp://127.0.0.1:1", "x.yaml"],
    ["edit", "--keyservice=unix:///tmp/ks.sock", "x.yaml"],
])
def test_a_remote_key_service_is_refused(argv: list[str], tmp_path: Path) -> None:
    """sops would fall back on its local key service; sopsflow says it has no other."""
    done = run_sopsflow(argv, cwd=tmp_path)
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and "remote key services are not supported" in lines[0]
    env = base_env(SOPS_KEYSERVICE="tcp://127.0.0.1:1")
    assert run_sopsflow(["decrypt", "x.yaml"], env=env, cwd=tmp_path).returncode == 1


def test_the_local_key_service_flag_is_accepted(tmp_path: Path) -> None:
    env = base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE))
    plain = tmp_path / "s.yaml"
    plain.write_text("a: 1\n")
    assert run_sopsflow(["encrypt", "--enable-local-keyservice", "-a", AGE_RECIPIENT, "-i", str(plain)],
                        env=env).returncode == 0
    done = run_sopsflow(["decrypt", "--enable-local-keyservice", str(plain)], env=env)
    assert done.returncode == 0 and done.stdout == b"a: 1\n"
