"""age plugins: recipients ``age1<name>1...`` and identities
``AGE-PLUGIN-<NAME>-1...``, served by the binary ``age-plugin-<name>`` over
the age plugin stdio protocol (state machines ``recipient-v1`` to wrap file
keys, ``identity-v1`` to unwrap them).

A session handles many file keys at once, so callers that know their work
ahead (updatekeys) start each plugin once per run: :func:`wrap_many` and
:func:`unwrap_many`. Only non-interactive plugins are served: ``msg`` is
shown on stderr, while ``confirm``, ``request-public`` and ``request-secret``
are answered ``fail`` (PIN and touch prompts are not supported yet).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence

from ..lazyre import compile_lazy
from .agefmt import Stanza, b64decode, b64encode

TYPE_CHECKING = False  # typing is not imported at run time (start-up time)
if TYPE_CHECKING:
    from typing import IO

_NAME = compile_lazy(r"[A-Za-z0-9._+-]+\Z")
_COLUMNS = 64


class PluginError(Exception):
    """A plugin could not be started or reported an error (one line)."""


def plugin_name(text: str) -> str | None:
    """The plugin a recipient (``age1NAME1...``) or identity
    (``AGE-PLUGIN-NAME-1...``) belongs to, lower case; None for anything else."""
    if text.startswith("AGE-PLUGIN-"):
        head = text[len("AGE-PLUGIN-"):].rpartition("-1")[0]
        name = head.lower()
    elif text.startswith("age1") and text.count("1") > 1:
        name = text[len("age1"):].rpartition("1")[0]
    else:
        return None
    return name if name and _NAME.match(name) else None


def binary_name(name: str) -> str:
    return f"age-plugin-{name}"


def _find(name: str) -> str:
    """The plugin binary on PATH; relative PATH entries are never searched."""
    program = binary_name(name)
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory or not os.path.isabs(directory):
            continue
        candidate = os.path.join(directory, program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise PluginError(f'{name} plugin: couldn\'t start plugin: "{name}" plugin not found: exec: "{program}": '
                      "executable file not found in $PATH")


class _Session:
    def __init__(self, name: str, machine: str) -> None:
        self.name = name
        path = _find(name)
        try:
            self.process = subprocess.Popen([path, f"--age-plugin={machine}"], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            raise PluginError(f"{name} plugin: couldn't start plugin: {exc.strerror or exc}") from None
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin: IO[bytes] = self.process.stdin
        self.stdout: IO[bytes] = self.process.stdout

    def send(self, words: Sequence[str], body: bytes = b"") -> None:
        text = b64encode(body)
        lines = [text[i:i + _COLUMNS] for i in range(0, len(text), _COLUMNS)]
        if not lines or len(lines[-1]) == _COLUMNS:
            lines.append("")
        try:
            self.stdin.write(("-> " + " ".join(words) + "\n" + "".join(p + "\n" for p in lines)).encode("ascii"))
            self.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._died() from None

    def receive(self) -> tuple[list[str], bytes]:
        line = self.stdout.readline()
        if not line:
            raise self._died()
        words = line.rstrip(b"\n").decode("ascii", "replace").split(" ")
        if len(words) < 2 or words[0] != "->":
            raise PluginError(f"{self.name} plugin: malformed message from the plugin")
        body = b""
        while True:
            part = self.stdout.readline()
            if not part:
                raise self._died()
            part = part.rstrip(b"\n")
            body += part
            if len(part) < _COLUMNS:
                break
        try:
            return words[1:], b64decode(body)
        except ValueError:
            raise PluginError(f"{self.name} plugin: malformed message from the plugin") from None

    def answer(self, words: list[str], body: bytes) -> bool:
        """Answer the interaction commands; False when ``words`` is not one."""
        command = words[0]
        if command == "msg":
            sys.stderr.write(f"{self.name} plugin: {body.decode('utf-8', 'replace').strip()}\n")
            self.send(["ok"])
        elif command in ("confirm", "request-public", "request-secret"):
            self.send(["fail"])  # no prompts: the plugin decides whether that is fatal
        else:
            return False
        return True

    def converse(self, handle: Callable[[list[str], bytes], bool]) -> list[str]:
        """Read the plugin's messages until ``done``: interaction commands are
        answered, ``error`` messages collected (and returned), and the rest go
        to ``handle``, which returns False for a message it does not know."""
        errors: list[str] = []
        while True:
            words, body = self.receive()
            if words[0] == "done":
                return errors
            if self.answer(words, body):
                continue
            if words[0] == "error":
                errors.append(body.decode("utf-8", "replace").strip() or " ".join(words[1:]))
                self.send(["ok"])
            elif handle(words, body):
                self.send(["ok"])
            else:
                self.send(["unsupported"])

    def _died(self) -> PluginError:
        self.process.kill()
        self.process.wait()
        err = b""
        if self.process.stderr is not None:
            err = self.process.stderr.read()
        last = err.decode("utf-8", "replace").strip().splitlines()
        detail = f": {last[-1]}" if last else ""
        return PluginError(f"{self.name} plugin: the plugin stopped unexpectedly{detail}")

    def close(self) -> None:
        for stream in (self.stdin, self.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        self.process.wait()


def wrap_many(name: str, recipients: Sequence[str], file_keys: Sequence[bytes]) -> list[list[Stanza]]:
    """One recipient-v1 session: the stanzas wrapping each file key for every
    recipient, in file-key order."""
    session = _Session(name, "recipient-v1")
    try:
        for recipient in recipients:
            session.send(["add-recipient", recipient])
        for file_key in file_keys:
            session.send(["wrap-file-key"], file_key)
        session.send(["done"])
        out: list[list[Stanza]] = [[] for _ in file_keys]

        def stanza(words: list[str], body: bytes) -> bool:
            if words[0] == "recipient-stanza" and len(words) >= 3 and words[1].isdigit():
                index = int(words[1])
                if index >= len(out):
                    raise PluginError(f"{name} plugin: stanza for an unknown file key")
                out[index].append(Stanza(words[2], words[3:], body))
                return True
            return words[0] == "labels"

        errors = session.converse(stanza)
        if errors:
            raise PluginError(f"{name} plugin: " + "; ".join(errors))
        if any(not stanzas for stanzas in out):
            raise PluginError(f"{name} plugin: the plugin did not wrap every file key")
        return out
    finally:
        session.close()


def unwrap_many(name: str, identities: Sequence[str], files: Sequence[Sequence[Stanza]]) -> dict[int, bytes]:
    """One identity-v1 session: the file keys the plugin could unwrap, by the
    index of their file in ``files``. Errors are PluginError."""
    session = _Session(name, "identity-v1")
    try:
        for identity in identities:
            session.send(["add-identity", identity])
        for index, stanzas in enumerate(files):
            for stanza in stanzas:
                session.send(["recipient-stanza", str(index), stanza.type, *stanza.args], stanza.body)
        session.send(["done"])
        found: dict[int, bytes] = {}

        def file_key(words: list[str], body: bytes) -> bool:
            if words[0] == "file-key" and len(words) == 2 and words[1].isdigit():
                found.setdefault(int(words[1]), body)
                return True
            return False

        errors = session.converse(file_key)
        if errors and not found:
            raise PluginError(f"{name} plugin: " + "; ".join(errors))
        return found
    finally:
        session.close()


class PluginRecipient:
    """An ``age1<name>1...`` recipient. File keys can be wrapped ahead in one
    session (:meth:`prepare`); :meth:`wrap` uses those first."""

    def __init__(self, text: str) -> None:
        name = plugin_name(text)
        if name is None:
            raise ValueError(f"malformed plugin recipient {text!r}")
        self.text = text
        self.name = name

    def __str__(self) -> str:
        return self.text

    def wrap(self, file_key: bytes) -> list[Stanza]:
        return wrap_many(self.name, [self.text], [file_key])[0]

    def encrypt(self, plaintext: bytes) -> bytes:
        """An age file of ``plaintext`` for this recipient, using a file key
        wrapped ahead (:func:`prepare_wraps`) when there is one left."""
        from . import agefmt

        ready = _prepared.get(self.text)
        if ready:
            file_key, stanzas = ready.pop()
            return agefmt.encrypt(plaintext, [lambda _key: stanzas], file_key=file_key)
        return agefmt.encrypt(plaintext, [self.wrap])


class PluginIdentity:
    """An ``AGE-PLUGIN-<NAME>-1...`` identity (its text is handed to the plugin)."""

    def __init__(self, text: str) -> None:
        name = plugin_name(text)
        if name is None:
            raise ValueError("malformed plugin identity")
        self.text = text
        self.name = name

    def __repr__(self) -> str:
        return f"PluginIdentity({self.name})"

    def unwrap_file(self, stanzas: list[Stanza]) -> bytes | None:
        key = _stanza_key(stanzas)
        if key in _unwrapped:
            return _unwrapped[key]  # tried ahead: the file key, or None when no plugin could
        return unwrap_many(self.name, [self.text], [stanzas]).get(0)


# Work done ahead in one session per plugin (updatekeys): file keys already
# wrapped per recipient, and file keys already unwrapped per file header.
_prepared: dict[str, list[tuple[bytes, list[Stanza]]]] = {}
_unwrapped: dict[tuple[tuple[str, tuple[str, ...], bytes], ...], bytes | None] = {}


def _stanza_key(stanzas: Sequence[Stanza]) -> tuple[tuple[str, tuple[str, ...], bytes], ...]:
    return tuple((s.type, tuple(s.args), s.body) for s in stanzas)


def prepare_wraps(recipient: str, count: int) -> None:
    """Wrap ``count`` fresh file keys for ``recipient`` in one session; each
    later :meth:`PluginRecipient.encrypt` in this process uses one of them,
    once (a file key is never shared between files)."""
    name = plugin_name(recipient)
    if name is None or count <= 0:
        return
    keys = [os.urandom(16) for _ in range(count)]
    stanzas = wrap_many(name, [recipient], keys)
    _prepared.setdefault(recipient, []).extend(zip(keys, stanzas, strict=True))


def prepare_unwraps(identities: Sequence[PluginIdentity], files: Sequence[Sequence[Stanza]]) -> None:
    """Unwrap the file keys of many age headers with one session per plugin."""
    by_name: dict[str, list[str]] = {}
    for identity in identities:
        by_name.setdefault(identity.name, []).append(identity.text)
    pending = list(files)
    for name, texts in by_name.items():
        if not pending:
            break
        found = unwrap_many(name, texts, pending)
        for index, file_key in found.items():
            _unwrapped[_stanza_key(pending[index])] = file_key
        pending = [stanzas for i, stanzas in enumerate(pending) if i not in found]
    for stanzas in pending:
        # every plugin of every identity was asked: asking again per file would only restart them
        _unwrapped[_stanza_key(stanzas)] = None


def clear_prepared() -> None:
    _prepared.clear()
    _unwrapped.clear()
