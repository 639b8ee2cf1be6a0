"""``sopsflow exec-env`` and ``sopsflow exec-file`` (sops' `cmd/sops/main.go`).

exec-env runs ``/bin/sh -c CMD`` with the top-level values of the decrypted
file added to the environment (non-strings rendered with sops' ValToString);
exec-file runs it with ``{}`` replaced by the path of the plaintext, written
to a FIFO (default) or a 0600 file inside a private 0700 temporary directory
that is always removed afterwards. The child's exit code is passed through
(a child killed by a signal gives 255, as sops reports Go's -1).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .. import errors
from ..errors import SopsError
from ..logs import logger
from ..tree import Comment, TreeMap, val_to_string
from . import common

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from ..operations import Decrypted
    from ..stores import Store

FALLBACK_FILENAME = "tmp-file"


def register(sub: argparse._SubParsersAction) -> None:
    env = sub.add_parser("exec-env", help="run a command with the decrypted values in its environment")
    env.add_argument("file", nargs="?", help="file to decrypt")
    env.add_argument("command", nargs="?", help="command run by /bin/sh -c")
    env.add_argument("--pristine", action="store_true", help="do not pass on the inherited environment")
    env.add_argument("--same-process", action="store_true", help="exec the command in place of sopsflow")
    _add_common(env)
    env.set_defaults(func=run, exec_kind="env")

    f = sub.add_parser("exec-file", help="run a command with the decrypted file at {} (a FIFO by default)")
    f.add_argument("file", nargs="?", help="file to decrypt")
    f.add_argument("command", nargs="?", help="command run by /bin/sh -c; {} is replaced by the path")
    f.add_argument("--no-fifo", action="store_true", help="write a regular 0600 file instead of a FIFO")
    f.add_argument("--filename", help=f"name of the temporary file (default: {FALLBACK_FILENAME})")
    f.add_argument("--input-type", help="yaml, json, dotenv, ini or binary (default: from the file name)")
    f.add_argument("--output-type", help="format of the temporary file (default: the input's)")
    _add_common(f)
    f.set_defaults(func=run, exec_kind="file")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--user", help="run the command as this user (needs root)")
    p.add_argument("--background", action="store_true", help="deprecated: do not wait for the command")
    common.add_global_flags(p, suppress=True)


def run(args: argparse.Namespace) -> int:
    if not args.file or args.command is None:
        raise SopsError(errors.GENERIC, "error: missing file to decrypt")
    if args.exec_kind == "env":
        return _run_env(args)
    return _run_file(args)


# --- decryption ---------------------------------------------------------------------


def _decrypt(args: argparse.Namespace, output_type: str | None) -> tuple[Decrypted, Store]:
    from ..operations import decrypt_document

    config = common.load_config_lenient(args)
    in_store = common.pick_store(args.file, getattr(args, "input_type", None), args, config)
    out_store = common.pick_store(args.file, output_type or getattr(args, "input_type", None), args, config)
    order = common.decryption_order(args)
    data = common.read_existing(args.file)
    doc = decrypt_document(in_store, data, decryption_order=order, check_version=True)
    return doc, out_store


def environment_entries(branch: TreeMap) -> list[tuple[str, str]]:
    """The top-level values as (name, text) pairs, refused as sops refuses them."""
    entries: list[tuple[str, str]] = []
    for entry in branch:
        if type(entry) is Comment:
            continue
        key, value = entry
        if type(value) in (TreeMap, list):
            raise SopsError(errors.GENERIC, f"cannot use complex value in environment; offending key {key}")
        if type(key) is not str:
            raise SopsError(errors.GENERIC, f"cannot use non-string keys in environment, got {type(key).__name__}")
        if "=" in key:
            raise SopsError(errors.GENERIC, f"cannot use keys with '=' in environment: {key}")
        text = val_to_string(value)
        if "\0" in key or "\0" in text:
            raise SopsError(errors.GENERIC, f"cannot use values containing NUL in environment; offending key {key}")
        entries.append((key, text))
    return entries


def _child_env(pristine: bool, extra: list[tuple[str, str]]) -> dict[str, str]:
    # Values from the file win over inherited ones, as with Go's exec.Cmd.
    env: dict[str, str] = {} if pristine else dict(os.environ)
    env.update(extra)
    return env


# --- running the command ---------------------------------------------------------------


def _switch_user(name: str) -> None:
    """Become ``name`` before running anything, as sops does (needs root)."""
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise SopsError(errors.GENERIC, f"user: unknown user {name}") from None
    try:
        os.initgroups(name, entry.pw_gid)
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    except PermissionError:
        raise SopsError(errors.GENERIC, f"cannot switch to user {name}: operation not permitted") from None


def _signal_text(signum: int) -> str:
    try:
        text = signal.strsignal(signum) or f"signal {signum}"
    except ValueError:
        text = f"signal {signum}"
    return text[:1].lower() + text[1:]


def _run_shell(command: str, env: dict[str, str], background: bool) -> int:
    """Run ``/bin/sh -c command`` with our stdio; returns 0 or raises SopsError
    carrying the child's status the way sops reports it."""
    if background:
        subprocess.Popen(["/bin/sh", "-c", command], env=env)
        return 0
    proc = subprocess.Popen(["/bin/sh", "-c", command], env=env)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        # The child got the same SIGINT from the terminal; let it finish its way.
        code = proc.wait()
    except BaseException:
        # We are being terminated: do not leave the command running on its own.
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    if code == 0:
        return 0
    if code < 0:
        raise SopsError(255, f"signal: {_signal_text(-code)}")
    raise SopsError(code, f"exit status {code}")


def _run_env(args: argparse.Namespace) -> int:
    if args.background:
        logger().warning("exec-env's --background option is deprecated and will be removed in a future version")
        if args.same_process:
            raise SopsError(
                errors.CONFLICTING_PARAMETERS, "Error: The --same-process flag cannot be used with --background"
            )
    doc, _ = _decrypt(args, None)
    entries = environment_entries(doc.branches[0])
    if args.user:
        _switch_user(args.user)
    env = _child_env(args.pristine, entries)
    if args.same_process:
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            os.execve("/bin/sh", ["/bin/sh", "-c", args.command], env)
        except OSError as exc:
            raise SopsError(errors.GENERIC, f"exec /bin/sh: {exc.strerror}") from None
    return _run_shell(args.command, env, args.background)


# --- exec-file ---------------------------------------------------------------------------


@contextmanager
def private_dir() -> Iterator[str]:
    """A 0700 directory under $TMPDIR, removed however the block ends
    (SIGTERM and SIGHUP are turned into an exception so cleanup runs)."""
    path = tempfile.mkdtemp(prefix=".sops")
    previous = {}

    def _terminate(signum: int, _frame: object) -> None:
        raise SopsError(128 + signum, _signal_text(signum).capitalize())

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            previous[signum] = signal.signal(signum, _terminate)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        for number, handler in previous.items():
            signal.signal(number, handler)


def _write_fifo(path: str, data: bytes) -> None:
    """Feed the plaintext to the first reader of the FIFO (blocks until one opens it)."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        return
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except OSError:  # the reader went away (EPIPE): nothing more to do
        pass
    finally:
        os.close(fd)


def _release_fifo_writer(path: str, writer: threading.Thread) -> None:
    """If the command never opened the FIFO, the writer still waits in open();
    opening the read end lets it finish instead of lingering."""
    if not writer.is_alive():
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return
    try:
        writer.join(timeout=1.0)
    finally:
        os.close(fd)
    writer.join(timeout=1.0)


def _place_plaintext(directory: str, data: bytes, fifo: bool, filename: str | None) -> tuple[str, threading.Thread | None]:
    if fifo:
        path = os.path.join(directory, filename or FALLBACK_FILENAME)
        os.mkfifo(path, 0o600)
        writer = threading.Thread(target=_write_fifo, args=(path, data), daemon=True)
        writer.start()
        return path, writer
    if filename:
        path = os.path.join(directory, filename)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    else:
        fd, path = tempfile.mkstemp(prefix=FALLBACK_FILENAME, dir=directory)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(data)
    return path, None


def _check_filename(name: str | None) -> None:
    # The name must stay inside the private directory.
    if name and (name in (".", "..") or "/" in name or "\0" in name):
        raise SopsError(errors.GENERIC, f"invalid --filename {name!r}: must be a plain file name")


def _run_file(args: argparse.Namespace) -> int:
    _check_filename(args.filename)
    doc, out_store = _decrypt(args, args.output_type)
    plaintext = out_store.dump_plain(doc.branches)
    if args.background:
        logger().warning(
            "exec-file's --background option is deprecated; sopsflow waits for the command "
            "so that the temporary file can be removed safely"
        )
    if args.user:
        _switch_user(args.user)
    with private_dir() as directory:
        try:
            path, writer = _place_plaintext(directory, plaintext, not args.no_fifo, args.filename)
        except OSError as exc:
            raise SopsError(errors.GENERIC, f"cannot create the temporary file: {exc.strerror}") from None
        command = args.command.replace("{}", path)
        try:
            return _run_shell(command, _child_env(False, []), background=False)
        finally:
            if writer is not None:
                _release_fifo_writer(path, writer)
