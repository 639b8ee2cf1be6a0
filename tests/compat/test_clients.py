"""Real callers of ``sops``, each run against the real binary and against
sopsflow installed as ``sops``: helm-secrets' sops backend call set and the
documented SOPS workflow, verbatim."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import base_env, sops_binary
from ..vectors import AGE_KEY_FILE, AGE_RECIPIENT
from .classic_oracle import compare_encrypted, sops_named_sopsflow

VALUES = "replicaCount: 2\nimage:\n    tag: v1\npassword: hunter2\ntoken: abc\n"
MANIFEST = (
    "apiVersion: v1\nkind: Secret\nmetadata:\n    name: db\ntype: Opaque\n"
    "stringData:\n    password: hunter2\n"
)
EDITOR = "import sys; p = sys.argv[-1]; t = open(p).read(); open(p, 'w').write(t.replace('hunter2', 'rotated'))"


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A bin directory per tool, each holding a ``sops``."""
    real = tmp_path_factory.mktemp("real-bin")
    (real / "sops").symlink_to(sops_binary())
    return {"sops": real / "sops", "sopsflow": sops_named_sopsflow(tmp_path_factory.mktemp("sopsflow-bin"))}


@pytest.fixture()
def env(second_key: tuple[str, Path], tmp_path: Path) -> dict[str, str]:
    keys = tmp_path / "age-keys.txt"
    keys.write_text(AGE_KEY_FILE.read_text() + "\n" + second_key[1].read_text())
    return base_env(SOPS_AGE_KEY_FILE=str(keys), EDITOR=f"{sys.executable} -c \"{EDITOR}\"")


def _repo(root: Path, rules_extra: str = "") -> Path:
    root.mkdir(parents=True)
    (root / ".sops.yaml").write_text(
        f"creation_rules:\n    - path_regex: \\.yaml$\n      age: {AGE_RECIPIENT}{rules_extra}\n"
        f"    - age: {AGE_RECIPIENT}\n"
    )
    (root / "values.yaml").write_text(VALUES)
    (root / "secrets.yaml").write_text(VALUES)
    (root / "config.yaml").write_text(VALUES)
    (root / "s.yaml").write_text(MANIFEST)
    (root / "file.txt").write_text("a binary secret\n")
    return root


def _helm_sops(tool: Path, args: list[str], cwd: Path, env: dict[str, str],
               stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """How helm-secrets' sops backend calls sops: stderr merged into stdout."""
    return subprocess.run(["sh", "-c", '"$0" "$@" 2>&1', str(tool), *args], cwd=cwd, env=env,
                          input=stdin or b"", capture_output=True, timeout=120, check=False)


def _on_a_terminal(argv: list[str], cwd: Path, env: dict[str, str],
                   answer: bytes) -> subprocess.CompletedProcess[bytes]:
    """Run with stdin on a pseudo-terminal (as a person at a prompt) and type ``answer``."""
    import os
    import pty

    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=terminal, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        os.write(controller, answer)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        os.close(terminal)
        os.close(controller)
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def _grep(pattern: list[str], data: bytes) -> bool:
    return subprocess.run(["grep", *pattern], input=data, capture_output=True, check=False).returncode == 0


# helm-secrets tells encrypted files apart with these (its sops backend).
IS_ENCRYPTED = ["-q", "mac.*,type:str]", "-"]
IS_YAML = ["-xq", "sops:\\s*", "-"]
IS_BINARY = ["-q", '"data": "ENC', "-"]


def test_helm_secrets_call_set(tools: dict[str, Path], env: dict[str, str], tmp_path: Path) -> None:
    results: dict[str, dict[str, bytes]] = {}
    for name, tool in tools.items():
        repo = _repo(tmp_path / name)
        out: dict[str, bytes] = {}

        def call(key: str, args: list[str], stdin: bytes | None = None, *, tool: Path = tool,
                 repo: Path = repo, out: dict[str, bytes] = out) -> None:
            done = _helm_sops(tool, args, repo, env, stdin)
            assert done.returncode == 0, (tool, key, done.stdout)
            out[key] = done.stdout

        yaml_flags = ["--input-type", "yaml", "--output-type", "yaml"]
        # encrypt: in place, to stdout, to --output
        call("enc-stdout", ["--encrypt", *yaml_flags, "values.yaml"])
        call("enc-output", ["--encrypt", *yaml_flags, "--output", "enc.yaml", "values.yaml"])
        out["enc-output-file"] = (repo / "enc.yaml").read_bytes()
        call("enc-in-place", ["--encrypt", *yaml_flags, "--in-place", "secrets.yaml"])
        out["enc-in-place-file"] = (repo / "secrets.yaml").read_bytes()
        call("enc-binary", ["--encrypt", "--input-type", "binary", "--output-type", "binary", "--output",
                            "file.enc", "file.txt"])
        out["enc-binary-file"] = (repo / "file.enc").read_bytes()
        # decrypt: to stdout, to --output, in place (of a file the real sops encrypted)
        (repo / "real.yaml").write_bytes(subprocess.run(
            [sops_binary(), "--encrypt", "values.yaml"], cwd=repo, env=env, capture_output=True, check=True).stdout)
        call("dec-stdout", ["--decrypt", *yaml_flags, "real.yaml"])
        call("dec-output", ["--decrypt", *yaml_flags, "--output", "plain.yaml", "real.yaml"])
        out["dec-output-file"] = (repo / "plain.yaml").read_bytes()
        # a literal, through /dev/stdin
        literal = subprocess.run([sops_binary(), "--encrypt", "--input-type", "json", "--output-type", "json",
                                  "/dev/stdin"], input=b'{"password": "hunter2"}', cwd=repo, env=env,
                                 capture_output=True, check=True).stdout
        assert _grep(IS_ENCRYPTED, literal)
        call("dec-literal", ["--decrypt", "--input-type", "json", "--output-type", "json", "/dev/stdin"], literal)
        call("dec-in-place", ["--decrypt", *yaml_flags, "--in-place", "real.yaml"])
        out["dec-in-place-file"] = (repo / "real.yaml").read_bytes()
        # the bare-flags edit
        call("edit", [*yaml_flags, "secrets.yaml"])
        out["edit-file"] = (repo / "secrets.yaml").read_bytes()
        results[name] = out

    ours, theirs = results["sopsflow"], results["sops"]
    for key in ("dec-stdout", "dec-output", "dec-output-file", "dec-literal", "dec-in-place",
                "dec-in-place-file", "enc-output", "enc-in-place", "edit", "enc-binary"):
        assert ours[key] == theirs[key], key  # the plaintext bytes, and nothing else on stdout/stderr
    assert b'"password": "hunter2"' in ours["dec-literal"]
    scratch = tmp_path / "cross"
    for key in ("enc-stdout", "enc-output-file", "enc-in-place-file", "edit-file"):
        compare_encrypted(ours[key], theirs[key], "yaml", str(tools["sopsflow"]), env, scratch / key)
        assert _grep(IS_ENCRYPTED, ours[key]) and _grep(IS_YAML, ours[key]), key
    compare_encrypted(ours["enc-binary-file"], theirs["enc-binary-file"], "json", str(tools["sopsflow"]), env,
                      scratch / "binary")
    assert _grep(IS_BINARY, ours["enc-binary-file"]) and _grep(IS_ENCRYPTED, ours["enc-binary-file"])
    assert b"rotated" in subprocess.run([sops_binary(), "-d", str(tmp_path / "sopsflow" / "secrets.yaml")],
                                        env=env, capture_output=True, check=True).stdout


def test_documented_workflow_verbatim(tools: dict[str, Path], env: dict[str, str], tmp_path: Path,
                                      second_key: tuple[str, Path]) -> None:
    results: dict[str, dict[str, bytes]] = {}
    for name, tool in tools.items():
        repo = _repo(tmp_path / name)
        out: dict[str, bytes] = {}

        def sh(key: str, command: str, stdin: bytes | None = None, *, tool: Path = tool, repo: Path = repo,
               out: dict[str, bytes] = out, tty: bool = False) -> None:
            run_env = dict(env, PATH=f"{tool.parent}:{env['PATH']}")
            if tty:
                done = _on_a_terminal(["sh", "-c", command], repo, run_env, stdin or b"")
            else:
                done = subprocess.run(["sh", "-c", command], cwd=repo, env=run_env, input=stdin or b"",
                                      capture_output=True, timeout=120, check=False)
            assert done.returncode == 0, (tool, command, done.stderr)
            assert tool.parent.joinpath("sops").samefile(tool)
            out[key] = done.stdout

        sh("enc", "sops --encrypt --in-place secrets.yaml")
        out["enc-file"] = (repo / "secrets.yaml").read_bytes()
        sh("dec", "sops --decrypt secrets.yaml")
        sh("edit", "sops secrets.yaml")
        out["edit-file"] = (repo / "secrets.yaml").read_bytes()
        (repo / ".sops.yaml").write_text((repo / ".sops.yaml").read_text().replace(
            f"age: {AGE_RECIPIENT}", f"age: {AGE_RECIPIENT},{second_key[0]}"))
        sh("updatekeys", "sops updatekeys secrets.yaml", b"y\n", tty=True)  # a person answers the prompt
        out["updatekeys-file"] = (repo / "secrets.yaml").read_bytes()
        sh("regex", "sops --encrypt --encrypted-regex '^(password|token)$' config.yaml")
        sh("manifest", f"sops --age={AGE_RECIPIENT} --encrypt --encrypted-regex '^(data|stringData)$' --in-place s.yaml")
        out["manifest-file"] = (repo / "s.yaml").read_bytes()
        sh("stdin", f"SOPS_AGE_RECIPIENTS={AGE_RECIPIENT} sops -e /dev/stdin", b"password: hunter2\n")
        results[name] = out

    ours, theirs = results["sopsflow"], results["sops"]
    assert ours["dec"] == theirs["dec"] == VALUES.encode()
    assert ours["enc"] == theirs["enc"] == b""
    scratch = tmp_path / "cross"
    for key in ("enc-file", "edit-file", "updatekeys-file", "regex", "manifest-file"):
        compare_encrypted(ours[key], theirs[key], "yaml", str(tools["sopsflow"]), env, scratch / key)
    compare_encrypted(ours["stdin"], theirs["stdin"], "json", str(tools["sopsflow"]), env, scratch / "stdin")


def test_updatekeys_rotation_on_removal_divergence(tools: dict[str, Path], env: dict[str, str], tmp_path: Path,
                                                    second_key: tuple[str, Path]) -> None:
    """Deliberate difference, under the name sops too: when a recipient is
    removed, sopsflow's updatekeys also rotates the data key (every value is
    re-encrypted); sops only re-wraps the old one."""
    written: dict[str, bytes] = {}
    for name, tool in tools.items():
        repo = _repo(tmp_path / name)
        both = subprocess.run([sops_binary(), "-e", "-a", f"{AGE_RECIPIENT},{second_key[0]}", "values.yaml"],
                              cwd=repo, env=env, capture_output=True, check=True).stdout
        (repo / "secrets.yaml").write_bytes(both)
        done = subprocess.run([str(tool), "updatekeys", "-y", "secrets.yaml"], cwd=repo, env=env,
                              capture_output=True, check=False)
        assert done.returncode == 0, done.stderr
        written[name] = (repo / "secrets.yaml").read_bytes()
        old_values = {line for line in both.splitlines() if line.startswith(b"password:")}
        new_values = {line for line in written[name].splitlines() if line.startswith(b"password:")}
        assert (old_values == new_values) == (name == "sops"), name
        assert second_key[0].encode() not in written[name]
    compare_encrypted(written["sopsflow"], written["sops"], "yaml", str(tools["sopsflow"]), env, tmp_path / "x")
