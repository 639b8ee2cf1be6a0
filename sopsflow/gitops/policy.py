"""The ``verify:`` section of ``.sopsflow.yaml``: what `sopsflow verify` reports
and how loudly.

```yaml
verify:
  severity:                 # per finding kind: error | warning | off
    unused-creation-rule: error
    stale-recipients: off
  allow:                    # findings to drop; kinds omitted = every kind
    - path: "fixtures/**"
      kinds: [leaked-secret]
      reason: test data, not real credentials
  rotation:                 # maximum age of a file's data key (from lastmodified)
    - path: "**/db-*.yaml"  # or `paths: [...]`; the first matching rule wins
      max_age_days: 30
      severity: error       # default: warning
  flux: auto                # auto (lint when Flux manifests exist) | on | off
  large_file_bytes: 5242880 # Flux refuses to decrypt larger files
```

The hook's own settings (strict mode, allow-listed paths and fingerprints) are
read by ``settings.py``; this module reads only the ``verify`` key, so the two
can evolve separately while sharing one file. Errors in this section are
configuration errors (exit 2), not findings.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from .. import errors
from ..errors import SopsError

TYPE_CHECKING = False  # neither typing nor dataclasses at run time (hook start-up)
if TYPE_CHECKING:
    from dataclasses import dataclass, field

    from ..tree import TreeValue
else:
    from ..records import dataclass, field

POLICY_FILE = ".sopsflow.yaml"
#: Exit code for usage and configuration errors (`sopsflow verify` contract).
USAGE_ERROR = 2
SEVERITIES = ("error", "warning")
#: Flux's kustomize-controller refuses to decrypt files larger than this.
DEFAULT_LARGE_FILE_BYTES = 5 * 1024 * 1024
# YAML 1.1 reads bare on/off as booleans, so both spellings arrive here.
_FLUX_MODES: dict[object, bool | None] = {"auto": None, "on": True, "off": False, True: True, False: False}


@dataclass(frozen=True)
class AllowRule:
    pattern: str
    kinds: frozenset[str] = frozenset()  # empty = every kind
    reason: str = ""

    def covers(self, kind: str, path: str) -> bool:
        return (not self.kinds or kind in self.kinds) and glob_match(self.pattern, path)


@dataclass(frozen=True)
class RotationRule:
    patterns: tuple[str, ...]
    max_age_days: float
    severity: str = "warning"

    def matches(self, path: str) -> bool:
        return any(glob_match(p, path) for p in self.patterns)


@dataclass
class VerifyPolicy:
    #: kind -> "error" | "warning" | "off"
    severity: dict[str, str] = field(default_factory=dict)
    allow: list[AllowRule] = field(default_factory=list)
    rotation: list[RotationRule] = field(default_factory=list)
    #: None = lint when Flux manifests are present
    flux: bool | None = None
    large_file_bytes: int = DEFAULT_LARGE_FILE_BYTES

    def severity_for(self, kind: str, default: str) -> str | None:
        """The severity to report ``kind`` at, or None when the policy turns it off."""
        chosen = self.severity.get(kind, default)
        return None if chosen == "off" else chosen

    def allowed(self, kind: str, path: str) -> bool:
        return any(rule.covers(kind, path) for rule in self.allow)

    def rotation_rule(self, path: str) -> RotationRule | None:
        for rule in self.rotation:
            if rule.matches(path):
                return rule
        return None


def load_policy(repo_root: Path, explicit: Path | None = None) -> VerifyPolicy:
    """Read the ``verify`` section of ``.sopsflow.yaml`` at the repository root
    (or ``explicit``). A missing file means the defaults."""
    path = explicit if explicit is not None else repo_root / POLICY_FILE
    if not path.exists():
        if explicit is not None:
            raise SopsError(USAGE_ERROR, f"policy file {path} does not exist")
        return VerifyPolicy()
    return parse_policy(path.read_bytes(), str(path.name if explicit is None else path))


def parse_policy(data: bytes, source: str = POLICY_FILE) -> VerifyPolicy:
    import yaml

    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SopsError(USAGE_ERROR, f"{source}: not valid YAML{where}") from None
    except (ValueError, RecursionError):
        # PyYAML's int() of a number over 4,300 digits; nesting past the
        # recursion limit of the pure-Python loader
        raise SopsError(USAGE_ERROR, f"{source}: not valid YAML (a number too long or nesting too deep)") from None
    if doc is None:
        return VerifyPolicy()
    if not isinstance(doc, dict):
        raise SopsError(USAGE_ERROR, f"{source}: expected a mapping at the top level")
    section = doc.get("verify")
    if section is None:
        return VerifyPolicy()
    if not isinstance(section, dict):
        raise SopsError(USAGE_ERROR, f"{source}: `verify` must be a mapping")
    return _parse_section(section, source)


def _parse_section(section: dict[str, TreeValue], source: str) -> VerifyPolicy:
    known = {"severity", "allow", "rotation", "flux", "large_file_bytes"}
    unknown = sorted(str(k) for k in section if k not in known)
    if unknown:
        # A typo such as `rotaton` would silently disable a policy: refuse it.
        raise SopsError(USAGE_ERROR, f"{source}: unknown key(s) in `verify`: {', '.join(unknown)}")
    policy = VerifyPolicy()
    policy.severity = _parse_severity(section.get("severity"), source)
    policy.allow = _parse_allow(section.get("allow"), source)
    policy.rotation = _parse_rotation(section.get("rotation"), source)
    flux = section.get("flux", "auto")
    if flux not in _FLUX_MODES:
        raise SopsError(USAGE_ERROR, f"{source}: `verify.flux` must be auto, on or off")
    policy.flux = _FLUX_MODES[flux]
    size = section.get("large_file_bytes", DEFAULT_LARGE_FILE_BYTES)
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise SopsError(USAGE_ERROR, f"{source}: `verify.large_file_bytes` must be a positive integer")
    policy.large_file_bytes = size
    return policy


def _parse_severity(raw: TreeValue, source: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SopsError(USAGE_ERROR, f"{source}: `verify.severity` must map finding kinds to error/warning/off")
    out: dict[str, str] = {}
    for kind, level in raw.items():
        # YAML reads a bare `off` as False.
        text = "off" if level is False else level
        if text not in (*SEVERITIES, "off"):
            raise SopsError(USAGE_ERROR, f"{source}: severity of {kind!s} must be error, warning or off")
        out[str(kind)] = str(text)
    return out


def _patterns(entry: dict[str, TreeValue], where: str, source: str) -> tuple[str, ...]:
    raw = entry.get("paths", entry.get("path"))
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(p, str) and p for p in raw):
        raise SopsError(USAGE_ERROR, f"{source}: {where} needs `path` or `paths` (glob patterns)")
    for pattern in raw:
        _glob_regex(pattern)  # fail early on a broken character class
    return tuple(raw)


def _parse_allow(raw: TreeValue, source: str) -> list[AllowRule]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise SopsError(USAGE_ERROR, f"{source}: `verify.allow` must be a list")
    rules = []
    for i, entry in enumerate(raw):
        where = f"verify.allow[{i}]"
        if isinstance(entry, str):
            entry = {"path": entry}
        if not isinstance(entry, dict):
            raise SopsError(USAGE_ERROR, f"{source}: {where} must be a mapping or a glob")
        kinds = entry.get("kinds", entry.get("kind", []))
        if isinstance(kinds, str):
            kinds = [kinds]
        if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
            raise SopsError(USAGE_ERROR, f"{source}: {where}.kinds must be a list of finding kinds")
        reason = entry.get("reason", "")
        for pattern in _patterns(entry, where, source):
            rules.append(AllowRule(pattern, frozenset(kinds), str(reason or "")))
    return rules


def _parse_rotation(raw: TreeValue, source: str) -> list[RotationRule]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise SopsError(USAGE_ERROR, f"{source}: `verify.rotation` must be a list")
    rules = []
    for i, entry in enumerate(raw):
        where = f"verify.rotation[{i}]"
        if not isinstance(entry, dict):
            raise SopsError(USAGE_ERROR, f"{source}: {where} must be a mapping")
        days = entry.get("max_age_days")
        if isinstance(days, bool) or not isinstance(days, (int, float)) or days <= 0:
            raise SopsError(USAGE_ERROR, f"{source}: {where}.max_age_days must be a positive number")
        severity = entry.get("severity", "warning")
        if severity not in SEVERITIES:
            raise SopsError(USAGE_ERROR, f"{source}: {where}.severity must be error or warning")
        rules.append(RotationRule(_patterns(entry, where, source), float(days), str(severity)))
    return rules


# --- globs ---------------------------------------------------------------------


def check_globs(patterns: list[str], source: str) -> None:
    """Every pattern of a settings file compiles; a bad one is an error naming the file."""
    for pattern in patterns:
        try:
            glob_match(pattern, "")
        except SopsError as exc:
            raise SopsError(errors.GENERIC, f"{source}: {exc.message}") from None


def glob_match(pattern: str, path: str) -> bool:
    """Match a repo-relative path against a gitignore-like glob: ``*`` and ``?``
    stay within one path segment, ``**`` spans segments, and a pattern without
    a ``/`` matches the file name in any directory."""
    return _glob_regex(pattern).match(path) is not None


@functools.lru_cache(maxsize=512)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    anchored = "/" in pattern.rstrip("/")
    body = pattern.lstrip("/")
    if body.endswith("/"):
        body += "**"  # a directory pattern covers everything below it
    out = [] if anchored else ["(?:.*/)?"]
    i = 0
    while i < len(body):
        c = body[i]
        if body.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif body.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            end = body.find("]", i + 2 if body.startswith("[!", i) or body.startswith("[^", i) else i + 1)
            if end == -1:
                raise SopsError(USAGE_ERROR, f"bad glob pattern {pattern!r}: unclosed [")
            inner = body[i + 1 : end]
            if inner[:1] in ("!", "^"):
                inner = "^" + inner[1:]
            out.append("[" + inner.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z")
