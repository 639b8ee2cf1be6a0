"""sopsflow's own settings: ``.sopsflow.yaml`` at the repository root.

sopsflow keeps its settings out of ``.sops.yaml`` so that file stays exactly
what sops reads. One file, several sections; each reader takes its own keys
and tolerates every other top-level key, so features can add sections without
breaking older readers.

```yaml
# .sopsflow.yaml
strict: false            # `sopsflow check` behaves as `--strict`: the recipients and
                         # key groups of each SOPS file must equal its rule's
allow:                   # false positives, still shown in the check summary
  paths:                 # repo-relative globs: `*` and `?` stay inside one path
    - docs/examples/**   # segment, `**` spans segments, a trailing `/` covers a
    - "*.fixture.env"    # directory, a pattern without `/` matches the file name
                         # anywhere
  fingerprints:          # the `[fp:...]` id `sopsflow check` prints after a finding
    - 3f1a9c0b7d2e4f61
  recipients:            # deliberate recipients beyond a file's creation rule
    - path: secrets/ops.yaml          # a glob as in `paths`
      keys: [age1...]                 # identities as `sopsflow check` prints them
      reason: break-glass key         # optional, for people
verify: {...}            # `sopsflow verify`'s policy, read by sopsflow/gitops/policy.py
clusters: {...}          # each cluster's public keys and what it deploys, read by
                         # sopsflow/gitops/coverage.py (`sopsflow verify` checks coverage)
```

Every key is optional; a missing file means the defaults. Within the keys
read here a typo is an error (``allow: {path: ...}`` would otherwise silently
allow nothing), and so is a wrong type: the hook fails closed on a broken
settings file rather than guessing.
"""

from __future__ import annotations

from pathlib import Path

from .. import errors
from ..errors import SopsError

TYPE_CHECKING = False  # neither typing nor dataclasses at run time (hook start-up)
if TYPE_CHECKING:
    from dataclasses import dataclass, field

    from ..tree import TreeValue
else:
    from ..records import dataclass, field

SETTINGS_FILE = ".sopsflow.yaml"
_ALLOW_KEYS = ("paths", "fingerprints", "recipients")
_RECIPIENT_KEYS = ("path", "keys", "reason")


@dataclass(frozen=True)
class AllowedRecipients:
    """``allow.recipients`` entry: identities accepted beyond the rule of the
    files ``pattern`` covers."""

    pattern: str
    keys: tuple[str, ...]
    reason: str = ""


@dataclass
class AuditSettings:
    strict: bool = False
    allow_paths: list[str] = field(default_factory=list)
    allow_fingerprints: list[str] = field(default_factory=list)
    allow_recipients: list[AllowedRecipients] = field(default_factory=list)
    #: where the settings came from ("" = defaults)
    source: str = ""

    def allows_path(self, path: str) -> str | None:
        """The first allow-listed glob covering ``path``, or None."""
        from .policy import glob_match

        for pattern in self.allow_paths:
            if glob_match(pattern, path):
                return pattern
        return None

    def allows_fingerprint(self, fingerprint: str) -> bool:
        return bool(fingerprint) and any(
            fingerprint == fp or (len(fp) >= 8 and fingerprint.startswith(fp)) for fp in self.allow_fingerprints
        )

    def allowed_recipients(self, path: str) -> list[str]:
        """Identities ``allow.recipients`` accepts for ``path`` beyond its rule."""
        from .policy import glob_match

        return [key for entry in self.allow_recipients if glob_match(entry.pattern, path) for key in entry.keys]


#: The top-level keys of `.sopsflow.yaml` (the hook judges any other key as data).
SETTINGS_SECTIONS = frozenset({"strict", "allow", "verify", "publish", "clusters"})


def load_settings(repo_root: Path) -> AuditSettings:
    """The settings of the repository at ``repo_root`` (defaults without a file)."""
    path = Path(repo_root) / SETTINGS_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return AuditSettings()
    except OSError as exc:
        raise SopsError(errors.GENERIC, f"{SETTINGS_FILE}: cannot read: {exc.strerror or exc}") from None
    return parse_settings(data, SETTINGS_FILE)


def parse_settings(data: bytes, source: str = SETTINGS_FILE) -> AuditSettings:
    """Settings from the bytes of a ``.sopsflow.yaml``; SopsError(1) when invalid."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        doc = yaml.load(data, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SopsError(errors.GENERIC, f"{source}: not valid YAML{where}") from None
    except (ValueError, RecursionError):
        # PyYAML's int() of a number over 4,300 digits; nesting past the
        # recursion limit of the pure-Python loader
        raise SopsError(errors.GENERIC, f"{source}: not valid YAML (a number too long or nesting too deep)") from None
    if doc is None:
        return AuditSettings(source=source)
    if not isinstance(doc, dict):
        raise SopsError(errors.GENERIC, f"{source}: expected a mapping at the top level")
    settings = AuditSettings(source=source)
    settings.strict = _bool(doc.get("strict", False), "strict", source)
    allow = doc.get("allow")
    if allow is not None:
        if not isinstance(allow, dict):
            raise SopsError(errors.GENERIC, f"{source}: `allow` must be a mapping with `paths`, `fingerprints` and/or `recipients`")
        unknown = sorted(str(k) for k in allow if k not in _ALLOW_KEYS)
        if unknown:
            raise SopsError(errors.GENERIC, f"{source}: unknown key(s) in `allow`: {', '.join(unknown)}")
        settings.allow_paths = _strings(allow.get("paths"), "allow.paths", source)
        settings.allow_fingerprints = [
            fp.lower().removeprefix("fp:") for fp in _strings(allow.get("fingerprints"), "allow.fingerprints", source)
        ]
        settings.allow_recipients = _recipient_entries(allow.get("recipients"), source)
        from .policy import check_globs

        check_globs(settings.allow_paths + [e.pattern for e in settings.allow_recipients], source)
    return settings


def _recipient_entries(value: TreeValue, source: str) -> list[AllowedRecipients]:
    where = "allow.recipients"
    if value is None:
        return []
    if not isinstance(value, list):
        raise SopsError(errors.GENERIC, f"{source}: `{where}` must be a list of {{path, keys}} mappings")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise SopsError(errors.GENERIC, f"{source}: `{where}[{i}]` must be a mapping with `path` and `keys`")
        unknown = sorted(str(k) for k in item if k not in _RECIPIENT_KEYS)
        if unknown:
            raise SopsError(errors.GENERIC, f"{source}: unknown key(s) in `{where}[{i}]`: {', '.join(unknown)}")
        pattern = item.get("path")
        if not isinstance(pattern, str) or not pattern:
            raise SopsError(errors.GENERIC, f"{source}: `{where}[{i}].path` must be a glob")
        keys = _strings(item.get("keys"), f"{where}[{i}].keys", source)
        if not keys:
            raise SopsError(errors.GENERIC, f"{source}: `{where}[{i}].keys` must name at least one key")
        reason = item.get("reason", "")
        if not isinstance(reason, str):
            raise SopsError(errors.GENERIC, f"{source}: `{where}[{i}].reason` must be a string")
        out.append(AllowedRecipients(pattern, tuple(keys), reason))
    return out


def _bool(value: TreeValue, where: str, source: str) -> bool:
    if isinstance(value, bool):
        return value
    raise SopsError(errors.GENERIC, f"{source}: `{where}` must be true or false")


def _strings(value: TreeValue, where: str, source: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) and str(v) for v in value):
        raise SopsError(errors.GENERIC, f"{source}: `{where}` must be a list of strings")
    return [str(v) for v in value]
