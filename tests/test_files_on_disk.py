"""What every rewriting command promises about the file on disk: mode, owner
and group kept; a symbolic link followed and kept; hard links refused unless
--break-hardlinks; a file changed by someone else since it was read left
alone (exit 1); temp files named by host and pid, plaintext ones apart,
removed only once their process is gone, and refused by the hook and verify.

Real processes throughout: the concurrent writer is a second sopsflow run
from SOPS_AGE_KEY_CMD, which every decrypting command runs after it has read
the file and before it writes it - so the interleaving is fixed, not timed.
"""

from __future__ import annotations

import os
import shlex
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from sopsflow import fileio

from .conftest import base_env, run_sops, run_sopsflow
from .gitfixtures import commit, git, git_env, init_repo, run_check, sops_encrypt, stage, write
from .vectors import AGE_KEY_FILE, AGE_RECIPIENT

PLAIN = "password: hunter2\nuser: admin\n"
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner and group needs root")


def decrypted(path: Path) -> dict[str, object]:
    done = run_sops(["decrypt", "--input-type", "yaml", "--output-type", "yaml", str(path)],
                    env=base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE)))
    assert done.returncode == 0, done.stderr
    loaded = yaml.safe_load(done.stdout)
    assert isinstance(loaded, dict)
    return loaded


def recipients(path: Path) -> list[str]:
    meta = yaml.safe_load(path.read_text())["sops"]
    return sorted(entry["recipient"] for entry in meta.get("age", []))


@pytest.fixture
def work(tmp_path: Path, second_key: tuple[str, Path]) -> Path:
    """A directory (no git) whose .sops.yaml names the vectors' recipient and
    a second one, and an editor that appends a value."""
    (tmp_path / ".sops.yaml").write_text(
        f"creation_rules:\n  - path_regex: \\.yaml$\n    age: {AGE_RECIPIENT},{second_key[0]}\n")
    editor = tmp_path / "editor.py"
    editor.write_text("import sys\nwith open(sys.argv[1], 'a') as f:\n    f.write('extra: added\\n')\n")
    return tmp_path


def env_for(work: Path, **extra: str) -> dict[str, str]:
    return base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE),
                    SOPS_EDITOR=f"{shlex.quote(sys.executable)} {shlex.quote(str(work / 'editor.py'))}", **extra)


# --- the rewriting commands ---------------------------------------------------------------

#: name -> (file starts encrypted?, argv after the file is substituted for {f}, check of the result)
Check = Callable[[Path, str], None]


def _encrypted_for_both(path: Path, second: str) -> None:
    assert decrypted(path)["password"] == "hunter2"
    assert recipients(path) == sorted([AGE_RECIPIENT, second])


def _plaintext(path: Path, second: str) -> None:
    assert yaml.safe_load(path.read_text()) == {"password": "hunter2", "user": "admin"}


def _rotated(path: Path, second: str) -> None:
    assert decrypted(path)["password"] == "hunter2"


def _value_set(path: Path, second: str) -> None:
    assert decrypted(path)["password"] == "changed"


def _value_unset(path: Path, second: str) -> None:
    assert "user" not in decrypted(path)


def _edited(path: Path, second: str) -> None:
    assert decrypted(path)["extra"] == "added"


def _group_added(path: Path, second: str) -> None:
    groups = yaml.safe_load(path.read_text())["sops"]["key_groups"]
    assert len(groups) == 2 and groups[1]["age"][0]["recipient"] == second


COMMANDS: dict[str, tuple[bool, list[str], Check]] = {
    "encrypt -i": (False, ["encrypt", "-i", "{f}"], _encrypted_for_both),
    "decrypt -i": (True, ["decrypt", "-i", "{f}"], _plaintext),
    "rotate -i": (True, ["rotate", "-i", "{f}"], _rotated),
    "set": (True, ["set", "{f}", '["password"]', '"changed"'], _value_set),
    "unset": (True, ["unset", "{f}", '["user"]'], _value_unset),
    "edit": (True, ["edit", "{f}"], _edited),
    "groups add": (True, ["groups", "add", "-i", "-f", "{f}", "--age", "{second}"], _group_added),
    "updatekeys": (True, ["updatekeys", "-y", "{f}"], _encrypted_for_both),
}
#: The commands the link promises are written for.
LINK_COMMANDS = ["encrypt -i", "decrypt -i", "rotate -i", "edit", "set", "updatekeys"]


def prepare(path: Path, command: str) -> bytes:
    content = sops_encrypt("a.yaml", PLAIN) if COMMANDS[command][0] else PLAIN.encode()
    path.write_bytes(content)
    return content


def run_command(command: str, given: Path, work: Path, second: str, *extra: str,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    argv = [a.replace("{f}", str(given)).replace("{second}", second) for a in COMMANDS[command][1]]
    return run_sopsflow([*argv, *extra], env=env or env_for(work), cwd=work)


def ownership(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


@as_root
@pytest.mark.parametrize("command", list(COMMANDS))
def test_mode_owner_and_group_are_kept(command: str, work: Path, second_key: tuple[str, Path]) -> None:
    """nobody:daemon 0640 stays nobody:daemon 0640 (not root:root, not world-readable)."""
    target = work / "a.yaml"
    before = prepare(target, command)
    os.chown(target, 65534, 1)
    target.chmod(0o640)
    done = run_command(command, target, work, second_key[0])
    assert done.returncode == 0, done.stderr
    assert target.read_bytes() != before
    COMMANDS[command][2](target, second_key[0])
    assert ownership(target) == (0o640, 65534, 1)


@as_root
def test_recipients_keeps_mode_owner_and_group_of_sops_yaml(work: Path, second_key: tuple[str, Path]) -> None:
    config = work / ".sops.yaml"
    config.write_text(f"creation_rules:\n  - path_regex: \\.yaml$\n    age: {AGE_RECIPIENT}\n")
    os.chown(config, 65534, 1)
    config.chmod(0o664)
    done = run_sopsflow(["recipients", "add", second_key[0]], env=env_for(work), cwd=work)
    assert done.returncode == 0, done.stderr
    assert second_key[0] in config.read_text()
    assert ownership(config) == (0o664, 65534, 1)


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o444])
def test_single_file_write_keeps_the_mode(tmp_path: Path, mode: int) -> None:
    """Also where nothing can be chown'ed: the permission bits stay exactly."""
    target = tmp_path / "a.yaml"
    target.write_bytes(b"old")
    target.chmod(mode)
    fileio.atomic_write(target, b"new")
    assert target.read_bytes() == b"new" and stat.S_IMODE(target.stat().st_mode) == mode


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory any user may write in (tmp_path's parents are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="sopsflow-shared-", dir="/tmp"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        subprocess.run(["rm", "-rf", str(path)], check=False)


def _write_as(uid: int, gid: int, groups: list[int], target: Path) -> None:
    """atomic_write(target) from a child process running as uid:gid."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            fileio.atomic_write(target, b"new")
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@as_root
def test_group_kept_by_a_member_who_cannot_keep_the_owner(shared_dir: Path) -> None:
    target = shared_dir / "a.yaml"
    target.write_bytes(b"old")
    target.chmod(0o660)  # root:root, writable by nobody only through the directory
    os.chown(target, 0, 1)
    _write_as(65534, 65534, [1], target)  # nobody, a member of daemon
    assert target.read_bytes() == b"new"
    assert ownership(target) == (0o660, 65534, 1)


@as_root
def test_a_group_that_cannot_be_kept_loses_its_access(shared_dir: Path) -> None:
    """Never wider: the writer's own group must not inherit daemon's read access."""
    target = shared_dir / "a.yaml"
    target.write_bytes(b"old")
    target.chmod(0o640)
    os.chown(target, 0, 1)
    _write_as(65534, 65534, [], target)
    assert target.read_bytes() == b"new"
    assert ownership(target) == (0o600, 65534, 65534)


# --- links ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", LINK_COMMANDS)
def test_a_symlink_is_followed_and_kept(command: str, work: Path, second_key: tuple[str, Path]) -> None:
    store = work / "store"
    store.mkdir()
    real = store / "a.yaml"
    before = prepare(real, command)
    link = work / "a.yaml"
    link.symlink_to("store/a.yaml")
    done = run_command(command, link, work, second_key[0])
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and os.readlink(link) == "store/a.yaml"
    assert real.read_bytes() != before
    COMMANDS[command][2](real, second_key[0])
    assert sorted(os.listdir(store)) == ["a.yaml"]  # no temp file left beside the target


@pytest.mark.parametrize("command", LINK_COMMANDS)
def test_hard_links_are_refused_unless_broken_on_request(command: str, work: Path,
                                                         second_key: tuple[str, Path]) -> None:
    target = work / "a.yaml"
    before = prepare(target, command)
    other = work / "b.yaml"
    os.link(target, other)
    done = run_command(command, target, work, second_key[0])
    assert done.returncode == 3, done.stdout + done.stderr
    assert b"has 2 hard links; refusing to break them" in done.stdout + done.stderr
    assert target.read_bytes() == before and other.read_bytes() == before
    assert os.stat(target).st_ino == os.stat(other).st_ino
    assert not [n for n in os.listdir(work) if fileio.is_temp_file(n)]

    done = run_command(command, target, work, second_key[0], "--break-hardlinks")
    assert done.returncode == 0, done.stdout + done.stderr
    COMMANDS[command][2](target, second_key[0])
    assert other.read_bytes() == before
    assert os.stat(target).st_nlink == 1 and os.stat(other).st_nlink == 1


# --- concurrent writers ---------------------------------------------------------------------


def key_command_with_concurrent_set(work: Path, target: Path) -> str:
    """A SOPS_AGE_KEY_CMD that, the first time it runs, sets password to
    "concurrent" with a second sopsflow process, then prints the age key."""
    script = work / "keycmd.py"
    script.write_text(
        "import os, subprocess, sys\n"
        f"mark = {str(work / 'keycmd.ran')!r}\n"
        "if not os.path.exists(mark):\n"
        "    open(mark, 'w').close()\n"
        "    env = dict(os.environ)\n"
        "    del env['SOPS_AGE_KEY_CMD']\n"
        f"    env['SOPS_AGE_KEY_FILE'] = {str(AGE_KEY_FILE)!r}\n"
        "    done = subprocess.run([sys.executable, '-m', 'sopsflow', 'set', "
        f"{str(target)!r}, '[\"password\"]', '\"concurrent\"'], env=env, stdout=sys.stderr)\n"
        "    if done.returncode:\n"
        "        sys.exit(done.returncode)\n"
        f"sys.stdout.write(open({str(AGE_KEY_FILE)!r}).read())\n"
    )
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"


@pytest.mark.parametrize("command", ["updatekeys", "set", "unset", "rotate -i", "decrypt -i", "groups add", "edit"])
def test_a_write_landing_between_read_and_rename_is_never_lost(command: str, work: Path,
                                                               second_key: tuple[str, Path]) -> None:
    """Before this was checked, `updatekeys -y` wrote back what it had read and
    the concurrent `set`, which had reported success, was lost."""
    target = work / "a.yaml"
    prepare(target, command)
    env = env_for(work)
    del env["SOPS_AGE_KEY_FILE"]
    env["SOPS_AGE_KEY_CMD"] = key_command_with_concurrent_set(work, target)
    done = run_command(command, target, work, second_key[0], env=env)
    assert (work / "keycmd.ran").exists()
    assert done.returncode == 1, done.stdout + done.stderr
    assert b"changed on disk" in done.stdout + done.stderr
    assert decrypted(target)["password"] == "concurrent"
    assert recipients(target) == [AGE_RECIPIENT]  # nothing of the first command's change either
    assert not [n for n in os.listdir(work) if fileio.is_temp_file(n)]


def test_updatekeys_lists_the_changed_file_and_writes_the_others(work: Path, second_key: tuple[str, Path]) -> None:
    changed, other = work / "a.yaml", work / "b.yaml"
    changed.write_bytes(sops_encrypt("a.yaml", PLAIN))
    other.write_bytes(sops_encrypt("b.yaml", PLAIN))
    env = env_for(work)
    del env["SOPS_AGE_KEY_FILE"]
    env["SOPS_AGE_KEY_CMD"] = key_command_with_concurrent_set(work, changed)
    done = run_sopsflow(["updatekeys", "-y", "a.yaml", "b.yaml"], env=env, cwd=work)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Updated 1 file(s) (0 with a new data key); 1 failed:\n  a.yaml: " in done.stdout.decode()
    assert recipients(other) == sorted([AGE_RECIPIENT, second_key[0]])
    assert decrypted(changed)["password"] == "concurrent" and recipients(changed) == [AGE_RECIPIENT]


def test_an_in_place_change_with_the_same_size_and_mtime_is_caught(tmp_path: Path) -> None:
    """Content is compared too: an in-place writer that keeps size and mtime."""
    target = tmp_path / "a.yaml"
    target.write_bytes(b"old content")
    fileio.read_bytes(target, for_rewrite=True)
    st = os.stat(target)
    with open(target, "r+b") as handle:
        handle.write(b"new")
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(fileio.FileChangedError):
        fileio.atomic_write(target, b"mine")
    assert target.read_bytes() == b"new content"


def test_check_and_rename_happen_under_the_repository_lock(tmp_path: Path) -> None:
    """While another writer holds .git/sopsflow.lock, `set` cannot rename; the
    change that writer makes under the lock is then detected, not overwritten."""
    import fcntl

    repo = init_repo(tmp_path / "repo", {"secrets/a.yaml": sops_encrypt("a.yaml", PLAIN)})
    target = repo / "secrets" / "a.yaml"
    lock_fd = os.open(repo / ".git" / fileio.LOCK_NAME, os.O_RDONLY | os.O_CREAT, 0o644)
    fcntl.flock(lock_fd, fcntl.LOCK_EX)
    try:
        env = git_env()
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
        writer = subprocess.Popen([sys.executable, "-m", "sopsflow", "set", str(target), '["user"]', '"writer"'],
                                  cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # Its temp file exists before it asks for the lock; wait for it (no clock involved in the verdict).
        for _ in range(6000):
            if [n for n in os.listdir(target.parent) if fileio.is_temp_file(n)] or writer.poll() is not None:
                break
            time.sleep(0.05)
        assert writer.poll() is None, writer.communicate()
        assert decrypted(target)["user"] == "admin"  # nothing renamed while the lock is held
        # The holder changes the file under the lock (as another sopsflow writer would).
        target.write_bytes(sops_encrypt("a.yaml", "password: hunter2\nuser: lock holder\n"))
    finally:
        os.close(lock_fd)
    out, err = writer.communicate(timeout=120)
    assert writer.returncode == 1, out + err
    assert b"changed on disk" in err
    assert decrypted(target)["user"] == "lock holder"


# --- temp files ---------------------------------------------------------------------------------


def _temp_name(owner: str, host: str, pid: int, token: str, plaintext: bool = False) -> str:
    return f".{owner}.{host}.p{pid}.{token}" + (fileio.PLAINTEXT_MARK if plaintext else "") + fileio.TEMP_SUFFIX


def test_updatekeys_removes_only_temp_files_whose_process_is_gone(work: Path, second_key: tuple[str, Path]) -> None:
    """Two concurrent runs used to delete each other's temp files."""
    target = work / "a.yaml"
    target.write_bytes(sops_encrypt("a.yaml", PLAIN))
    host = fileio._host_part(os.uname().nodename)
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    alive = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        live = work / _temp_name("a.yaml", host, alive.pid, "0123abcd")
        gone = work / _temp_name("a.yaml", host, int(ended.stdout), "0123abce", plaintext=True)
        remote = work / _temp_name("a.yaml", "elsewhere", 1, "0123abcf")
        for path in (live, gone, remote):
            path.write_text("partial")
        done = run_sopsflow(["updatekeys", "-y", "a.yaml"], env=env_for(work), cwd=work)
        assert done.returncode == 0, done.stdout + done.stderr
        assert live.exists() and remote.exists() and not gone.exists()
    finally:
        alive.communicate(b"")


def test_temp_names_say_what_they_hold_and_who_made_them(tmp_path: Path) -> None:
    target = tmp_path / "a.b.yaml"
    for plaintext in (False, True):
        fd, tmp = fileio._create_temp(target, plaintext)
        os.close(fd)
        name = os.path.basename(tmp)
        assert name.endswith(".plaintext.sopsflow-tmp") == plaintext and name.endswith(".sopsflow-tmp")
        parsed = fileio.parse_temp_name(name)
        assert parsed is not None and parsed.owner == "a.b.yaml" and parsed.pid == os.getpid()
        assert parsed.plaintext == plaintext and not fileio.temp_process_gone(parsed)


def killed_decrypt_in_place(work: Path, target: Path) -> Path:
    """Run `decrypt -i` and kill it (SIGKILL) at the rename; the temp file it leaves."""
    code = ("import os, signal, sys\n"
            "os.replace = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)\n"
            "from sopsflow.main import main\n"
            f"sys.exit(main(['decrypt', '-i', {str(target)!r}]))\n")
    env = env_for(work)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=work, capture_output=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    (left,) = [target.parent / n for n in os.listdir(target.parent) if fileio.is_temp_file(n)]
    return left


def test_a_killed_decrypt_in_place_leaves_a_temp_file_named_as_plaintext(work: Path) -> None:
    target = work / "a.yaml"
    before = target.write_bytes(sops_encrypt("a.yaml", PLAIN)) and target.read_bytes()
    left = killed_decrypt_in_place(work, target)
    assert left.name.endswith(".plaintext.sopsflow-tmp")
    assert b"hunter2" in left.read_bytes()  # what the name warns about
    # Never more open than the file it was to become.
    assert stat.S_IMODE(left.stat().st_mode) == stat.S_IMODE(target.stat().st_mode)
    assert target.read_bytes() == before
    done = run_sopsflow(["updatekeys", "-y", "a.yaml"], env=env_for(work), cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not left.exists()  # its process is gone


def test_the_next_write_of_the_file_removes_what_a_killed_one_left(work: Path) -> None:
    target = work / "a.yaml"
    target.write_bytes(sops_encrypt("a.yaml", PLAIN))
    left = killed_decrypt_in_place(work, target)
    host = fileio._host_part(os.uname().nodename)
    alive = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        busy = work / _temp_name("a.yaml", host, alive.pid, "0123abcd", plaintext=True)
        busy.write_text("another writer's work in progress")
        done = run_sopsflow(["rotate", "-i", "a.yaml"], env=env_for(work), cwd=work)
        assert done.returncode == 0, done.stderr
        assert not left.exists() and busy.exists()
    finally:
        alive.communicate(b"")


@pytest.mark.parametrize("plaintext", [True, False])
def test_the_hook_and_verify_refuse_committed_temp_files(tmp_path: Path, plaintext: bool) -> None:
    repo = init_repo(tmp_path / "repo", {"secrets/a.yaml": sops_encrypt("a.yaml", PLAIN)})
    name = _temp_name("a.yaml", "host", 4242, "0123abcd", plaintext)
    content: str | bytes = PLAIN if plaintext else sops_encrypt("a.yaml", PLAIN)
    write(repo, f"secrets/{name}", content)
    write(repo, f"docs/{name}", content)  # outside every rule too
    stage(repo, ".")
    done = run_check(repo)
    assert done.returncode == 1, done.stdout + done.stderr
    for where in ("secrets", "docs"):
        assert f"{where}/{name}: error: sopsflow temp file" in done.stdout
    assert "[sopsflow-temp-file]" in done.stdout and "hunter2" not in done.stdout
    commit(repo, "committed without the hook")
    done_verify = subprocess.run([sys.executable, "-m", "sopsflow", "verify"], cwd=repo, env=git_env(),
                                 capture_output=True, text=True)
    assert done_verify.returncode == 1, done_verify.stdout + done_verify.stderr
    assert done_verify.stdout.count("sopsflow-temp-file") >= 2
    git(repo, "rm", "-q", "--cached", f"secrets/{name}", f"docs/{name}")
    assert run_check(repo).returncode == 0


# --- edit --show-master-keys ----------------------------------------------------------------


def test_edit_show_master_keys_removing_a_recipient_rotates_the_data_key(work: Path,
                                                                          second_key: tuple[str, Path]) -> None:
    second, second_identity = second_key
    target = work / "a.yaml"
    target.write_bytes(sops_encrypt("a.yaml", PLAIN, recipients=f"{AGE_RECIPIENT},{second}"))
    old = yaml.safe_load(target.read_text())
    (work / "editor.py").write_text(
        "import sys, yaml\n"
        "doc = yaml.safe_load(open(sys.argv[1]))\n"
        f"doc['sops']['age'] = [a for a in doc['sops']['age'] if a['recipient'] != {second!r}]\n"
        "doc['password'] = 'after removal'\n"
        "yaml.safe_dump(doc, open(sys.argv[1], 'w'))\n"
    )
    done = run_sopsflow(["edit", "-s", "a.yaml"], env=env_for(work), cwd=work)
    assert done.returncode == 0, done.stderr
    assert f"Removed {second}: the data key was rotated".encode() in done.stderr
    assert recipients(target) == [AGE_RECIPIENT]
    assert decrypted(target)["password"] == "after removal"
    # The removed person's old wrapped key (git history keeps it) no longer opens the file.
    new = yaml.safe_load(target.read_text())
    (old_entry,) = [a for a in old["sops"]["age"] if a["recipient"] == second]
    new["sops"]["age"].append(old_entry)
    forged = work / "forged.yaml"
    forged.write_text(yaml.safe_dump(new))
    done = run_sops(["decrypt", str(forged)], env=base_env(SOPS_AGE_KEY_FILE=str(second_identity)))
    assert done.returncode != 0
    assert b"after removal" not in done.stdout


def test_edit_show_master_keys_adding_a_recipient_keeps_the_data_key(work: Path, second_key: tuple[str, Path]) -> None:
    second, second_identity = second_key
    target = work / "a.yaml"
    target.write_bytes(sops_encrypt("a.yaml", PLAIN))
    before = yaml.safe_load(target.read_text())
    done = run_sopsflow(["rotate", "-i", "--add-age", second, "a.yaml"], env=env_for(work), cwd=work)
    assert done.returncode == 0, done.stderr
    with_both = yaml.safe_load(target.read_text())
    assert with_both["password"] != before["password"]  # rotate: a new key (sanity of the comparison below)
    (work / "editor.py").write_text(
        "import sys, yaml\n"
        "doc = yaml.safe_load(open(sys.argv[1]))\n"
        f"doc['sops']['age'] = [a for a in doc['sops']['age'] if a['recipient'] != {second!r}]\n"
        "yaml.safe_dump(doc, open(sys.argv[1], 'w'))\n"
    )
    done = run_sopsflow(["edit", "-s", "a.yaml"], env=env_for(work), cwd=work)
    assert done.returncode == 0 and b"rotated" in done.stderr
    (work / "editor.py").write_text(
        "import sys, yaml\n"
        "doc = yaml.safe_load(open(sys.argv[1]))\n"
        f"doc['sops']['age'].append({{'recipient': {second!r}, 'enc': ''}})\n"
        "yaml.safe_dump(doc, open(sys.argv[1], 'w'))\n"
    )
    rotated = yaml.safe_load(target.read_text())
    done = run_sopsflow(["edit", "-s", "a.yaml"], env=env_for(work), cwd=work)
    assert done.returncode == 0, done.stderr
    assert b"rotated" not in done.stderr
    assert yaml.safe_load(target.read_text())["password"] == rotated["password"]  # same key: same ENC[] text
    done = run_sops(["decrypt", str(target)], env=base_env(SOPS_AGE_KEY_FILE=str(second_identity)))
    assert done.returncode == 0 and b"hunter2" in done.stdout


# --- every other way of removing a recipient rotates too ----------------------------------------


def identities(path: Path, *files: Path) -> Path:
    """One identities file holding the identities of ``files``."""
    path.write_text("".join(f.read_text().rstrip("\n") + "\n" for f in files))
    return path


def test_groups_delete_rotates_the_data_key(work: Path, second_key: tuple[str, Path]) -> None:
    """Groups A, B, C with threshold 2; C is deleted. With the old data key,
    C and A together - A alone cannot decrypt - would open every later value
    from their stanzas in git history: C would keep standing in for B. sops'
    groups delete keeps the data key; sopsflow rotates it."""
    import pyrage

    second, second_identity = second_key
    third = pyrage.x25519.Identity.generate()
    third_identity = work / "third.txt"
    third_identity.write_text(str(third) + "\n")
    target = work / "a.yaml"
    target.write_bytes(sops_encrypt("a.yaml", PLAIN))
    plain_env = base_env(SOPS_AGE_KEY_FILE=str(AGE_KEY_FILE))
    a_and_b = base_env(SOPS_AGE_KEY_FILE=str(identities(work / "ab.txt", AGE_KEY_FILE, second_identity)))
    a_and_c = base_env(SOPS_AGE_KEY_FILE=str(identities(work / "ac.txt", AGE_KEY_FILE, third_identity)))
    for recipient in (second, str(third.to_public())):
        done = run_sops(["groups", "add", "-i", "-f", str(target), "--age", recipient,
                         "--shamir-secret-sharing-threshold", "2"], env=a_and_b)
        assert done.returncode == 0, done.stderr
    old = yaml.safe_load(target.read_text())
    assert len(old["sops"]["key_groups"]) == 3 and old["sops"]["shamir_threshold"] == 2
    assert run_sops(["decrypt", str(target)], env=a_and_c).returncode == 0  # C and A could read it before

    done = run_sopsflow(["groups", "delete", "-i", "-f", str(target), "2"], env=a_and_b, cwd=work)
    assert done.returncode == 0, done.stderr
    assert f"Deleted key group 2 ({third.to_public()} no longer in any group): the data key was rotated".encode() \
        in done.stderr
    done = run_sopsflow(["set", str(target), '["password"]', '"after removal"'], env=a_and_b, cwd=work)
    assert done.returncode == 0, done.stderr
    new = yaml.safe_load(target.read_text())
    assert len(new["sops"]["key_groups"]) == 2 and new["sops"]["shamir_threshold"] == 2
    # The real sops decrypts the result with the remaining groups, and not with A alone.
    done = run_sops(["decrypt", str(target)], env=a_and_b)
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout) == {"password": "after removal", "user": "admin"}
    assert run_sops(["decrypt", str(target)], env=plain_env).returncode != 0
    # The old key groups (C's stanza and A's, from history) spliced back: no later value opens.
    new["sops"]["key_groups"] = old["sops"]["key_groups"]
    forged = work / "forged.yaml"
    forged.write_text(yaml.safe_dump(new))
    done = run_sops(["decrypt", str(forged)], env=a_and_c)
    assert done.returncode != 0
    assert b"after removal" not in done.stdout


def test_rotate_removing_a_recipient_rotates_the_data_key(work: Path, second_key: tuple[str, Path]) -> None:
    second, second_identity = second_key
    target = work / "a.yaml"
    target.write_bytes(sops_encrypt("a.yaml", PLAIN, recipients=f"{AGE_RECIPIENT},{second}"))
    old = yaml.safe_load(target.read_text())
    done = run_sopsflow(["rotate", "-i", "--rm-age", second, "a.yaml"], env=env_for(work), cwd=work)
    assert done.returncode == 0, done.stderr
    assert recipients(target) == [AGE_RECIPIENT]
    assert decrypted(target)["password"] == "hunter2"
    new = yaml.safe_load(target.read_text())
    (old_entry,) = [a for a in old["sops"]["age"] if a["recipient"] == second]
    new["sops"]["age"].append(old_entry)
    forged = work / "forged.yaml"
    forged.write_text(yaml.safe_dump(new))
    done = run_sops(["decrypt", str(forged)], env=base_env(SOPS_AGE_KEY_FILE=str(second_identity)))
    assert done.returncode != 0
    assert b"hunter2" not in done.stdout
