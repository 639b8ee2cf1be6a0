"""The classic ``sops`` command line: ``sops -d FILE``, ``sops -e -i FILE``,
``sops --set '... ...' FILE``, ``sops FILE`` (edit) and the rest of sops'
top-level flags.

Nothing here encrypts or decrypts: the flags are parsed the way sops parses
them (Go's flag rules: single or double dash, ``--flag=value`` or ``--flag
value``, flags end at the first file name, no abbreviations) and translated
into the argument list of the matching subcommand, which then runs through
its own parser and implementation. One code path per operation, whichever
command line asked for it.

Imported only when the first argument is not a command name, so a commit
hook running ``sopsflow check`` never pays for it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from .. import __version__, errors
from ..errors import SopsError

#: The sops version whose command line and file format sopsflow reproduces.
SOPS_RELEASE = "3.11.0"


@dataclass(frozen=True)
class Flag:
    names: tuple[str, ...]  # the first is the canonical (long) name
    kind: str  # "bool", "str", "int" or "list" (repeatable)
    help: str
    env: str = ""

    @property
    def takes_value(self) -> bool:
        return self.kind != "bool"

    @property
    def name(self) -> str:
        return self.names[0]


_KEY_TYPES = (
    ("kms", "AWS KMS ARNs (ARN or ARN+ROLE_ARN)"),
    ("pgp", "PGP fingerprints"),
    ("gcp-kms", "GCP KMS resource IDs"),
    ("hckms", "HuaweiCloud KMS key IDs (region:key-uuid)"),
    ("azure-kv", "Azure Key Vault key URLs"),
    ("hc-vault-transit", "Vault transit key URIs"),
    ("age", "age recipients"),
)

#: Every top-level flag of the pinned sops, in its --help order (the
#: differential test checks this table against the binary's own listing).
FLAGS: tuple[Flag, ...] = (
    Flag(("decrypt", "d"), "bool", "decrypt FILE to stdout (or --output / -i)"),
    Flag(("encrypt", "e"), "bool", "encrypt FILE to stdout (or --output / -i)"),
    Flag(("rotate", "r"), "bool", "new data key; re-encrypt every value (with --add-*/--rm-*)"),
    Flag(("disable-version-check",), "bool", "accepted; sopsflow never checks for updates", "SOPS_DISABLE_VERSION_CHECK"),
    Flag(("check-for-updates",), "bool", "accepted; sopsflow never checks for updates (no network)"),
    Flag(("kms", "k"), "str", "comma-separated AWS KMS ARNs for a new file", "SOPS_KMS_ARN"),
    Flag(("aws-profile",), "str", "AWS profile for the KMS keys"),
    Flag(("gcp-kms",), "str", "comma-separated GCP KMS resource IDs for a new file", "SOPS_GCP_KMS_IDS"),
    Flag(("hckms",), "str", "comma-separated HuaweiCloud KMS key IDs for a new file", "SOPS_HUAWEICLOUD_KMS_IDS"),
    Flag(("azure-kv",), "str", "comma-separated Azure Key Vault key URLs for a new file", "SOPS_AZURE_KEYVAULT_URLS"),
    Flag(("hc-vault-transit",), "str", "comma-separated Vault transit key URIs for a new file", "SOPS_VAULT_URIS"),
    Flag(("pgp", "p"), "str", "comma-separated PGP fingerprints for a new file", "SOPS_PGP_FP"),
    Flag(("age", "a"), "str", "comma-separated age recipients for a new file", "SOPS_AGE_RECIPIENTS"),
    Flag(("in-place", "i"), "bool", "write the result back to FILE instead of stdout"),
    Flag(("extract",), "str", "decrypt one value or branch only, e.g. '[\"data\"][\"password\"]'"),
    Flag(("input-type",), "str", "yaml, json, dotenv, ini or binary (default: from the file name)"),
    Flag(("output-type",), "str", "yaml, json, dotenv, ini or binary (default: the input type)"),
    Flag(("show-master-keys", "s"), "bool", "edit the sops metadata block too"),
    *(
        Flag((f"{verb}-{stem}",), "str", f"with --rotate: comma-separated {what} to {verb_text}")
        for stem, what in _KEY_TYPES
        for verb, verb_text in (("add", "add to the first key group"), ("rm", "remove from every key group"))
    ),
    Flag(("ignore-mac",), "bool", "do not verify the MAC while decrypting"),
    Flag(("mac-only-encrypted",), "bool", "new file: the MAC covers encrypted values only"),
    Flag(("unencrypted-suffix",), "str", "new file: keys ending in this stay plaintext"),
    Flag(("encrypted-suffix",), "str", "new file: only keys ending in this are encrypted"),
    Flag(("unencrypted-regex",), "str", "new file: keys matching this stay plaintext"),
    Flag(("encrypted-regex",), "str", "new file: only keys matching this are encrypted"),
    Flag(("unencrypted-comment-regex",), "str", "new file: values after a matching comment stay plaintext"),
    Flag(("encrypted-comment-regex",), "str", "new file: only values after a matching comment are encrypted"),
    Flag(("config",), "str", "the .sops.yaml to use (no upward search)", "SOPS_CONFIG"),
    Flag(("encryption-context",), "str", "KMS encryption context k1:v1,k2:v2"),
    Flag(("set",), "str", "write one value in place: 'PATH JSON', e.g. '[\"a\"][0] {\"b\":true}'"),
    Flag(("shamir-secret-sharing-threshold",), "int", "new file: key groups needed to decrypt"),
    Flag(("indent",), "int", "spaces of indentation for YAML/JSON output (0: the default)"),
    Flag(("verbose",), "bool", "log what is done on stderr"),
    Flag(("output",), "str", "write the result to this file instead of stdout"),
    Flag(("filename-override",), "str", "use this name for .sops.yaml rules and the file format"),
    Flag(("decryption-order",), "str", "key types to try first, e.g. age,pgp", "SOPS_DECRYPTION_ORDER"),
    Flag(("enable-local-keyservice",), "bool", "use the local key service (always on)", "SOPS_ENABLE_LOCAL_KEYSERVICE"),
    Flag(("keyservice",), "list", "remote key services are not supported (refused)", "SOPS_KEYSERVICE"),
    Flag(("help", "h"), "bool", "show this help"),
    Flag(("version", "v"), "bool", "print the version"),
)

BY_NAME: dict[str, Flag] = {name: flag for flag in FLAGS for name in flag.names}

#: sops' commands; those sopsflow does not implement are refused by name.
SOPS_COMMANDS = (
    "completion", "exec-env", "exec-file", "publish", "keyservice", "filestatus", "groups",
    "updatekeys", "decrypt", "encrypt", "rotate", "edit", "set", "unset", "help", "h",
)

REFUSED = {
    "keyservice": "sopsflow has no key service server; it uses local keys only. Run the real sops for "
    "`keyservice`",
}

_BOOL_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_BOOL_FALSE = ("0", "f", "F", "FALSE", "false", "False")


class UsageError(Exception):
    """A command line the flag parser rejects (sops: "Incorrect Usage", exit 1)."""

    def __init__(self, message: str, *, heading: str = "Incorrect Usage. ") -> None:
        super().__init__(message)
        self.heading = heading


@dataclass
class Parsed:
    values: dict[str, str | list[str] | bool]  # canonical name -> value, as given
    positionals: list[str]


def parse(argv: list[str]) -> Parsed:
    """Go's flag rules: flags up to the first argument that is not one (or
    ``--``); the rest are positionals. Exact names only."""
    values: dict[str, str | list[str] | bool] = {}
    seen_as: dict[str, set[str]] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if len(arg) < 2 or not arg.startswith("-"):
            break
        body = arg[2:] if arg.startswith("--") else arg[1:]
        if not body or body[0] in "-=":
            raise UsageError(f"bad flag syntax: {arg}")
        name, has_value, value = body.partition("=")
        flag = BY_NAME.get(name)
        if flag is None:
            raise UsageError(f"flag provided but not defined: -{name}")
        i += 1
        if flag.kind == "bool":
            if has_value and value not in _BOOL_TRUE + _BOOL_FALSE:
                raise UsageError(f'invalid boolean value "{value}" for -{name}: parse error')
            values[flag.name] = not has_value or value in _BOOL_TRUE
        else:
            if not has_value:
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: -{name}")
                value = argv[i]
                i += 1
            if flag.kind == "int" and not _is_go_int(value):
                raise UsageError(f'invalid value "{value}" for flag -{name}: parse error')
            if flag.kind == "list":
                listed = values.setdefault(flag.name, [])
                assert isinstance(listed, list)
                listed.append(value)
            else:
                values[flag.name] = value
        seen_as.setdefault(flag.name, set()).add(name)
    for forms in seen_as.values():
        if len(forms) > 1:
            # sops says this one without its "Incorrect Usage" heading.
            raise UsageError("Cannot use two forms of the same flag: " + " ".join(sorted(forms)), heading="")
    return Parsed(values, argv[i:])


def _is_go_int(text: str) -> bool:
    try:
        int(text, 0)
    except ValueError:
        return False
    return True


def first_positional(argv: list[str]) -> str | None:
    """The first argument after the top-level flags (a command name or a file),
    or None when there is none or the flags do not parse."""
    try:
        rest = parse(argv).positionals
    except UsageError:
        return None
    # Even after `--` a command name is the command, as in sops: never a file.
    return rest[0] if rest else None


# --- reading the parsed flags -------------------------------------------------


class Flags:
    """Parsed values with sops' fallbacks: the flag, then its environment variable."""

    def __init__(self, parsed: Parsed) -> None:
        self.values = parsed.values

    def given(self, name: str) -> bool:
        return name in self.values

    def text(self, name: str) -> str:
        value = self.values.get(name)
        if isinstance(value, str):
            return value
        env = BY_NAME[name].env
        return os.environ.get(env, "") if env else ""

    def on(self, name: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, bool):
            return value
        env = BY_NAME[name].env
        raw = os.environ.get(env, "") if env else ""
        return raw in _BOOL_TRUE

    def many(self, name: str) -> list[str]:
        value = self.values.get(name)
        if isinstance(value, list):
            return value
        env = BY_NAME[name].env
        raw = os.environ.get(env, "") if env else ""
        return [part for part in raw.split(",") if part]


# The flags each operation passes on to its subcommand; sops ignores the others
# in that mode, and so do we.
_GLOBAL = ("config", "indent", "decryption-order")
_STORE = ("input-type", "output-type", "filename-override")
_NEW_FILE_KEYS = ("kms", "pgp", "gcp-kms", "hckms", "azure-kv", "hc-vault-transit", "age", "aws-profile",
                  "encryption-context", "shamir-secret-sharing-threshold")
_SELECTION = ("unencrypted-suffix", "encrypted-suffix", "unencrypted-regex", "encrypted-regex",
              "unencrypted-comment-regex", "encrypted-comment-regex")
_ROTATE_KEYS = tuple(f"{verb}-{stem}" for stem, _what in _KEY_TYPES for verb in ("add", "rm"))


def _pass(flags: Flags, names: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for name in names:
        value = flags.values.get(name)
        if isinstance(value, str):
            out += [f"--{name}", value]
    return out


def _pass_bool(flags: Flags, names: tuple[str, ...]) -> list[str]:
    return [f"--{name}" for name in names if flags.values.get(name) is True]


def translate(flags: Flags, file: str) -> list[str]:
    """The subcommand argument list that does what the classic flags ask."""
    mode = _mode(flags)
    common = _pass(flags, _GLOBAL) + _pass_bool(flags, ("verbose",)) + _pass(flags, _STORE)
    out_flags = _pass(flags, ("output",)) + _pass_bool(flags, ("in-place",))
    if mode == "decrypt":
        return ["decrypt", *common, *_pass(flags, ("extract",)), *_pass_bool(flags, ("ignore-mac",)),
                *out_flags, "--", file]
    if mode == "encrypt":
        if file in ("-", "/dev/stdin") and not flags.given("filename-override"):
            # sops names stdin by its path: rules and the format follow /dev/stdin.
            common += ["--filename-override", os.path.abspath(file)]
        return ["encrypt", *common, *_pass(flags, _NEW_FILE_KEYS + _SELECTION),
                *_pass_bool(flags, ("mac-only-encrypted",)), *out_flags, "--", file]
    if mode == "rotate":
        return ["rotate", *common, *_pass(flags, _ROTATE_KEYS + ("encryption-context", "aws-profile")),
                *out_flags, "--", file]
    if mode == "set":
        path, sep, value = flags.text("set").partition("] ")
        if not sep:
            raise SopsError(errors.INVALID_SET_FORMAT, "Invalid --set format")
        store = _pass(flags, ("input-type", "output-type"))
        return ["set", *_pass(flags, _GLOBAL), *_pass_bool(flags, ("verbose", "ignore-mac")), *store,
                "--", file, path + "]", value]
    return ["edit", *common, *_pass(flags, _NEW_FILE_KEYS + _SELECTION),
            *_pass_bool(flags, ("mac-only-encrypted", "show-master-keys", "ignore-mac")), "--", file]


def _mode(flags: Flags) -> str:
    """sops runs every mode given and keeps the last one's output; the last wins here too."""
    modes = [m for m in ("encrypt", "decrypt", "rotate") if flags.on(m)]
    if flags.text("set"):
        modes.append("set")
    if len(modes) > 1:
        _warn(
            "More than one command (--encrypt, --decrypt, --rotate, --set) has been specified. "
            "Only the changes made by the last one will be visible."
        )
    return modes[-1] if modes else "edit"


def _warn(message: str) -> None:
    sys.stderr.write(f"[sopsflow] WARNING: {message}\n")


# --- the checks sops makes before any operation -------------------------------------


def _preflight(flags: Flags, positionals: list[str]) -> str:
    if not positionals:
        raise SopsError(errors.NO_FILE_SPECIFIED, "Error: no file specified")
    if len(positionals) > 1:
        _warn("More than one positional argument provided. Only the first one will be used!")
    if flags.on("in-place") and flags.text("output"):
        raise SopsError(errors.CONFLICTING_PARAMETERS, "Error: cannot operate on both --output and --in-place")
    remote = flags.many("keyservice")
    if remote:
        refuse_keyservice(remote)
    if not flags.on("enable-local-keyservice") and (
        flags.given("enable-local-keyservice") or os.environ.get("SOPS_ENABLE_LOCAL_KEYSERVICE")
    ):
        raise SopsError(
            errors.GENERIC,
            "sopsflow: --enable-local-keyservice=false leaves no key service; sopsflow has only the local one",
        )
    file = positionals[0]
    path = os.path.abspath(file)
    if file not in ("-", "/dev/stdin") and not os.path.exists(path):
        if any(flags.text(name) for name in _ROTATE_KEYS):
            raise SopsError(
                errors.CANNOT_CHANGE_KEYS_FROM_NON_EXISTENT_FILE,
                f'Error: cannot add or remove keys on non-existent file "{path}", use `--kms` and `--pgp` instead.',
            )
        if any(flags.on(m) for m in ("encrypt", "decrypt", "rotate")):
            raise SopsError(errors.NO_FILE_SPECIFIED, f'Error: cannot operate on non-existent file "{path}"')
    return file


# --- version and help -------------------------------------------------------------


def invoked_as_sops(prog: str) -> bool:
    name = os.path.basename(prog)
    return name.removesuffix(".exe") == "sops"


def version_line(prog: str) -> str:
    """Under the name ``sops`` the first line is what sops prints, so tools that
    parse ``sops X.Y.Z`` pick the modern command line; otherwise it says what
    this is."""
    if invoked_as_sops(prog):
        return f"sops {SOPS_RELEASE} (sopsflow {__version__})"
    return f"sopsflow {__version__} (reproduces the command line and file format of sops {SOPS_RELEASE})"


def help_text(prog: str) -> str:
    from ..main import COMMANDS

    name = "sops" if invoked_as_sops(prog) else "sopsflow"
    lines = [
        f"usage: {name} [FLAGS] FILE        (edit, or one of -d/-e/-r/--set)",
        f"       {name} COMMAND [FLAGS] ...",
        "",
        "SOPS-compatible secrets for GitOps repositories; the classic sops command line.",
        "Flags come before FILE, as in sops.",
        "",
        "examples:",
        f"  {name} -d secrets.yaml",
        f"  {name} --encrypt --in-place secrets.yaml",
        f"  {name} --age age1... --encrypt --encrypted-regex '^(data|stringData)$' --in-place s.yaml",
        "",
        "commands:",
        "  " + ", ".join(sorted(set(COMMANDS) | {"completion", "help"})),
        f"  ({name} COMMAND --help for each)",
        "",
        "flags:",
    ]
    for flag in FLAGS:
        spelled = ", ".join(("--" if len(n) > 1 else "-") + n for n in flag.names)
        if flag.takes_value:
            spelled += " VALUE"
        env = f" [${flag.env}]" if flag.env else ""
        lines.append(f"  {spelled:<40} {flag.help}{env}")
    return "\n".join(lines) + "\n"


# --- entry point -----------------------------------------------------------------


def run(argv: list[str], prog: str, dispatch: Callable[[list[str]], int]) -> int:
    """Run a classic command line; ``dispatch`` runs a subcommand argument list."""
    try:
        parsed = parse(argv)
    except UsageError as exc:
        gap = "\n" if exc.heading else ""
        sys.stdout.write(f"{exc.heading}{exc}\n{gap}{help_text(prog)}")
        sys.stdout.flush()
        sys.stderr.write(f"{exc}\n")
        return errors.GENERIC
    flags = Flags(parsed)
    if flags.on("help"):
        sys.stdout.write(help_text(prog))
        return 0
    if flags.on("version"):
        sys.stdout.write(version_line(prog) + "\n")
        return 0
    file = _preflight(flags, parsed.positionals)
    return dispatch(translate(flags, file))


def refuse_keyservice(addresses: list[str]) -> NoReturn:
    """--keyservice / SOPS_KEYSERVICE: refused, whichever command line gave it."""
    raise SopsError(
        errors.GENERIC,
        f"sopsflow: --keyservice {addresses[0]}: remote key services are not supported; "
        "sopsflow uses the local keys only (drop --keyservice / SOPS_KEYSERVICE, or use the real sops)",
    )


def refuse(command: str) -> int:
    sys.stderr.write(f"sopsflow: `{command}` is not supported: {REFUSED[command]}\n")
    return errors.GENERIC


def show_help(argv: list[str], prog: str, dispatch: Callable[[list[str]], int]) -> int:
    """``help`` / ``h`` [COMMAND]: this help, or the command's."""
    rest = parse(argv).positionals[1:]
    if not rest:
        sys.stdout.write(help_text(prog))
        return 0
    topic = rest[0]
    if topic in REFUSED:
        return refuse(topic)
    if topic == "completion":
        return completion(["completion", "--help"])
    from ..main import COMMANDS

    if topic not in COMMANDS:
        sys.stderr.write(f"No help topic for '{topic}'\n")
        return 3
    return dispatch([topic, "--help"])


# --- shell completion ------------------------------------------------------------------


def completion(argv: list[str]) -> int:
    """``completion bash|zsh``: a completion script for sops' and sopsflow's
    commands and flags, for the name this program was called by."""
    rest = parse(argv).positionals[1:]
    shell = rest[0] if rest else ""
    if shell in ("", "-h", "--help", "help", "h"):
        sys.stdout.write(
            "usage: completion bash|zsh\n\n"
            "Print a shell completion script. Load it with:\n"
            "  source <(sopsflow completion bash)\n"
            "  source <(sops completion zsh)       # when installed as sops\n"
        )
        return 0
    if shell not in ("bash", "zsh"):
        sys.stderr.write(f"No help topic for '{shell}'\n")
        return 3
    sys.stdout.write(completion_script(shell, os.path.basename(sys.argv[0]) or "sopsflow"))
    return 0


def _command_flags() -> dict[str, list[str]]:
    import argparse

    from ..main import build_parser

    parser = build_parser()
    found: dict[str, list[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = sorted({o for a in sub._actions for o in a.option_strings if o.startswith("--")})
    return found


def completion_script(shell: str, prog: str) -> str:
    """A static script: commands, each command's flags, then files."""
    if prog not in ("sops", "sopsflow"):
        prog = "sops" if invoked_as_sops(prog) else "sopsflow"
    per_command = _command_flags()
    commands = sorted(set(per_command) | {"completion", "help"})
    top_flags = " ".join("--" + f.name for f in FLAGS)
    cases = "\n".join(f'    {name}) opts="{" ".join(flags)}" ;;' for name, flags in sorted(per_command.items()))
    func = "_" + prog.replace("-", "_") + "_complete"
    body = f"""{func}() {{
  local cur cmd word opts
  cur="${{COMP_WORDS[COMP_CWORD]}}"
  cmd=""
  for word in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
    case "$word" in -*) ;; *) cmd="$word"; break ;; esac
  done
  case "$cmd" in
{cases}
    completion) opts="bash zsh" ;;
    "") if [[ "$cur" == -* ]]; then opts="{top_flags}"; else opts="{" ".join(commands)}"; fi ;;
    *) opts="" ;;
  esac
  COMPREPLY=( $(compgen -W "$opts" -- "$cur") $(compgen -f -- "$cur") )
}}
"""
    if shell == "bash":
        return f"# bash completion for {prog}: source <({prog} completion bash)\n{body}complete -o default -F {func} {prog}\n"
    return (
        f"#compdef {prog}\n# zsh completion for {prog}: source <({prog} completion zsh)\n"
        "autoload -U +X bashcompinit && bashcompinit\n"
        f"{body}complete -o default -F {func} {prog}\n"
    )
