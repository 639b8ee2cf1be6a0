"""Render a verify result for people and for CI systems.

Formats: ``text`` (people), ``json`` (scripts), ``sarif`` (SARIF 2.1.0, GitHub
code scanning), ``junit`` (JUnit XML, one test case per audited file),
``github`` (workflow commands that annotate the diff) and ``gitlab`` (GitLab
Code Quality JSON). Every renderer takes the same :class:`VerifyResult` and
returns text; nothing here reads the repository. Finding messages never hold
secret values (audit guarantees it), so every format may be published.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..errors import SopsError
from . import exposure as _exposure
from .policy import USAGE_ERROR

if TYPE_CHECKING:
    from .check import Finding
    from .verify import VerifyResult

FORMATS = ("text", "json", "sarif", "junit", "github", "gitlab")
TOOL_NAME = "sopsflow"
INFORMATION_URI = "https://github.com/getsops/sops"

#: kind -> (short description, help text). Unknown kinds (a newer audit) still
#: render, with a generic description.
RULES: dict[str, tuple[str, str]] = {
    "plaintext-secret": (
        "Plaintext file at a path a .sops.yaml creation rule covers",
        "Encrypt it: sopsflow encrypt -i PATH (the creation rule picks the recipients).",
    ),
    "partly-plaintext": (
        "SOPS file with values left in plaintext that its rule would encrypt",
        "Decrypt and re-encrypt the file so every selected value is encrypted.",
    ),
    "broken-sops": (
        "File that looks like SOPS but whose metadata does not load",
        "Restore the file from history or re-create it with sopsflow encrypt.",
    ),
    "leaked-secret": (
        "Secret-looking value in a file that no creation rule covers",
        "Move the value into a SOPS-encrypted file, rotate it, and purge it from history.",
    ),
    "stale-recipients": (
        "SOPS file whose recipients differ from its creation rule",
        "Run sopsflow updatekeys to re-wrap the data key for the rule's recipients.",
    ),
    "recipients-outside-rule": (
        "SOPS file with recipients its creation rule does not name",
        "Run sopsflow updatekeys (it rotates the data key), or allow-list a deliberate extra recipient.",
    ),
    "symlink-at-rule-path": (
        "Symbolic link at a path a creation rule covers",
        "Replace the link with the encrypted file itself.",
    ),
    "unmatched-sops-file": (
        "SOPS file that no .sops.yaml creation rule matches",
        "Add a creation rule for it or move it under a covered path.",
    ),
    "sopsflow-temp-file": (
        "Temp file of an interrupted sopsflow write (it may hold plaintext)",
        "Remove it from the index and delete it; add *.sopsflow-tmp to .gitignore.",
    ),
    "invalid-config": (
        "Invalid .sops.yaml",
        "Fix the named problem; sops refuses to encrypt with this configuration.",
    ),
    "ignored-config": (
        "Config file under a name the tools do not read (.sops.yml, .sopsflow.yml)",
        "Rename it to .sops.yaml (or .sopsflow.yaml), or remove it.",
    ),
    "unused-creation-rule": (
        "Creation rule that matches no tracked file",
        "Remove the rule or fix its path_regex.",
    ),
    "mac-failure": (
        "SOPS file whose MAC does not verify",
        "The file was changed outside sops; restore it or re-encrypt it from trusted plaintext.",
    ),
    "mac-unverified": (
        "SOPS file whose MAC could not be checked (no key available)",
        "Provide a key that can decrypt the file to the verify job, or accept the gap.",
    ),
    "rotation-age": (
        "Data key older than the rotation policy allows",
        "Run sopsflow rotate -i PATH to generate a new data key.",
    ),
    "flux-secret-metadata-encrypted": (
        "Encrypted Kubernetes Secret whose apiVersion, kind or metadata is encrypted",
        "Re-encrypt with encrypted_regex: ^(data|stringData)$ so Flux can read the object.",
    ),
    "flux-missing-decryption": (
        "Flux Kustomization applies SOPS files without decryption",
        "Add spec.decryption: {provider: sops, secretRef: {name: sops-keys}} to the Kustomization.",
    ),
    "flux-decryption-key-name": (
        "Flux decryption Secret key Flux will not use",
        "Name age keys *.agekey and PGP keys *.asc in the decryption Secret.",
    ),
    "old-fingerprint": (
        "Allow-list entry that holds a finding's old fingerprint",
        "Replace the entry in .sopsflow.yaml with the new fingerprint the message names.",
    ),
    "secret-generator-plaintext": (
        "Plaintext file or literal that a kustomize secretGenerator turns into a Secret",
        "Encrypt the file with sopsflow encrypt -i (under a creation rule) and let Flux decrypt it.",
    ),
    "large-encrypted-file": (
        "Encrypted file larger than Flux decrypts",
        "Split the file; Flux's kustomize-controller refuses encrypted files over 5 MiB.",
    ),
    "cluster-cannot-decrypt": (
        "A cluster of .sopsflow.yaml cannot decrypt a SOPS file it deploys",
        "Add a key the cluster holds to the file's creation rule (enough key groups for the Shamir "
        "threshold) and run sopsflow updatekeys, or give the cluster a key the file is encrypted for.",
    ),
    "flux-secret-cannot-decrypt": (
        "The decryption Secret of a Flux Kustomization cannot decrypt a file it applies",
        "Encrypt the file for a key of the Secret (sopsflow recipients add, updatekeys) or add the key "
        "to the Secret (sopsflow flux age-secret).",
    ),
    "flux-secret-unknown": (
        "Flux Kustomization names a decryption Secret whose public half is not given",
        "List the Secret's public keys under clusters.NAME.secrets in .sopsflow.yaml.",
    ),
    "cluster-config": (
        "clusters entry of .sopsflow.yaml that names nothing in the tree",
        "Fix the FILE or FILE#NAME of the Flux Kustomization.",
    ),
    "retired-recipient": (
        "Creation rule or SOPS file still lists a key a rotation retired",
        "Run sopsflow rotate-recipient --id ID --phase remove.",
    ),
    "rotation-plan-invalid": (
        "Rotation plan in .sopsflow/rotations/ that does not load",
        "Restore the plan from git history.",
    ),
}


# Kept here under their old names for callers of this module.
EXPOSURE_KINDS = _exposure.EXPOSURE_KINDS
ROTATE_HINT = _exposure.ROTATE_HINT


def _fix(f: Finding, result: VerifyResult) -> str | None:
    """The fix as shown for ``result``. In a commit (not the index or work
    tree) an exposed secret is in history already: fixing the file does not
    take it back. Pushed (or not known to be local only), it must be rotated;
    in local commits only, they can still be rewritten."""
    if not result.commit or f.kind not in EXPOSURE_KINDS:
        return f.fix
    exposures = getattr(result, "exposures", None) or {}
    return _exposure.fix_for(f.fix, exposures.get(f.fingerprint, _exposure.PUSHED))


def rule_info(kind: str) -> tuple[str, str]:
    return RULES.get(kind, (kind.replace("-", " ").capitalize(), "See sopsflow verify --help."))


# --- format selection ------------------------------------------------------------


def parse_targets(specs: Sequence[str] | None, output: str | None) -> list[tuple[str, str | None]]:
    """``--format`` values (``FMT`` or ``FMT=FILE``) and ``--output`` into
    (format, file or None for stdout) pairs. Usage errors exit 2."""
    specs = list(specs or ["text"])
    targets: list[tuple[str, str | None]] = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        name = name.strip().lower()
        if name not in FORMATS:
            raise SopsError(USAGE_ERROR, f"unknown format {name!r} (choose from {', '.join(FORMATS)})")
        if sep and not path:
            raise SopsError(USAGE_ERROR, f"--format {spec}: missing file name after '='")
        targets.append((name, path if sep else None))
    if output:
        if len(targets) != 1:
            raise SopsError(USAGE_ERROR, "--output needs exactly one --format; use --format FMT=FILE for several")
        if targets[0][1] is not None:
            raise SopsError(USAGE_ERROR, "give the file either as --format FMT=FILE or as --output, not both")
        targets = [(targets[0][0], output)]
    if sum(1 for _, path in targets if path is None) > 1:
        raise SopsError(USAGE_ERROR, "only one format can go to stdout; use --format FMT=FILE for the others")
    return targets


def render(fmt: str, result: VerifyResult) -> str:
    renderer: Callable[[VerifyResult], str] = {
        "text": render_text,
        "json": render_json,
        "sarif": render_sarif,
        "junit": render_junit,
        "github": render_github,
        "gitlab": render_gitlab,
    }[fmt]
    return renderer(result)


# --- shared helpers ---------------------------------------------------------------


def fingerprints(findings: Sequence[Finding]) -> list[str]:
    """A stable id per finding: kind, path and the finding's own secret-free
    anchor fingerprint (else its occurrence number of that kind in that file).
    Messages are left out on purpose: they hold ages and counts that change
    between runs while the problem stays the same."""
    seen: dict[tuple[str, str], int] = {}
    out = []
    for f in findings:
        n = seen.get((f.kind, f.path), 0)
        seen[(f.kind, f.path)] = n + 1
        anchor = getattr(f, "fingerprint", "") or str(n)
        text = f"{f.kind}\0{f.path}\0{anchor}"
        out.append(hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest())
    return out


def _summary_line(result: VerifyResult) -> str:
    errors, warnings = result.count("error"), result.count("warning")
    suppressed = len(getattr(result, "suppressed", ()))
    return (
        f"sopsflow verify ({result.target}): {len(result.files)} files checked, "
        f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
        + (f", {suppressed} suppressed" if suppressed else "")
    )


# --- text -------------------------------------------------------------------------


def render_text(result: VerifyResult) -> str:
    lines = []
    for f in result.findings:
        where = f.path + (f":{f.line}" if f.line else "")
        lines.append(f"{where}: {f.severity}: {f.message} [{f.kind}]")
        fix = _fix(f, result)
        if fix:
            lines.append(f"    fix: {fix}")
    if getattr(result, "show_suppressed", False):
        for f, why in result.suppressed:
            where = f.path + (f":{f.line}" if f.line else "")
            lines.append(f"{where}: suppressed: {f.message} [{f.kind}] by {why}")
    for note in result.notes:
        lines.append(f"note: {note}")
    lines.append(_summary_line(result))
    return "\n".join(lines) + "\n"


# --- json -------------------------------------------------------------------------


def render_json(result: VerifyResult) -> str:
    doc = {
        "version": 1,
        "target": result.target,
        "commit": result.commit,
        "checks": list(result.checks),
        "summary": {
            "files": len(result.files),
            "errors": result.count("error"),
            "warnings": result.count("warning"),
            "exit_code": result.exit_code,
        },
        "files": [{"path": a.path, "status": a.status} for a in result.files],
        "findings": [_finding_dict(f, (getattr(result, "exposures", None) or {}).get(f.fingerprint))
                     for f in result.findings],
        "notes": list(result.notes),
        "suppressed": [dict(_finding_dict(f, None), suppressed_by=why)
                       for f, why in getattr(result, "suppressed", ())],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _finding_dict(f: Finding, exposure: str | None) -> dict[str, object]:
    out: dict[str, object] = {
        "kind": f.kind,
        "severity": f.severity,
        "path": f.path,
        "line": f.line,
        "message": f.message,
        "fix": f.fix,
    }
    if exposure is not None:
        # "pushed": rotate the secret; "local": only in unpushed commits
        out["exposure"] = exposure
    return out


# --- SARIF 2.1.0 ------------------------------------------------------------------


def _uri(path: str) -> str:
    from urllib.parse import quote

    return quote(path.encode("utf-8", "surrogateescape"), safe="/")


def render_sarif(result: VerifyResult) -> str:
    from .. import __version__

    kinds = sorted({f.kind for f in result.findings})
    index = {kind: i for i, kind in enumerate(kinds)}
    levels: dict[str, str] = {}
    for f in result.findings:
        # A kind's level: error if the policy made any of its findings one.
        if levels.get(f.kind) != "error":
            levels[f.kind] = "error" if f.severity == "error" else "warning"
    rules = []
    for kind in kinds:
        short, help_text = rule_info(kind)
        rules.append(
            {
                "id": kind,
                "name": "".join(part.capitalize() for part in kind.split("-")),
                "shortDescription": {"text": short},
                "help": {"text": help_text},
                "defaultConfiguration": {"level": levels[kind]},
            }
        )
    results = []
    for f, fp in zip(result.findings, fingerprints(result.findings), strict=True):
        fix = _fix(f, result)
        location: dict[str, object] = {
            "artifactLocation": {"uri": _uri(f.path), "uriBaseId": "%SRCROOT%"},
        }
        if f.line:
            location["region"] = {"startLine": int(f.line)}
        item: dict[str, object] = {
            "ruleId": f.kind,
            "ruleIndex": index[f.kind],
            "level": "error" if f.severity == "error" else "warning",
            "message": {"text": f.message + (f" Fix: {fix}" if fix else "")},
            "locations": [{"physicalLocation": location}],
            "partialFingerprints": {"sopsflowFindingHash/v1": fp},
        }
        results.append(item)
    run: dict[str, object] = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "semanticVersion": __version__,
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }
        },
        "originalUriBaseIds": {"%SRCROOT%": {"uri": result.root.as_uri() + "/"}},
        "invocations": [{"executionSuccessful": True}],
        "results": results,
        "properties": {"target": result.target, "commit": result.commit, "checks": list(result.checks)},
    }
    if result.commit:
        run["automationDetails"] = {"id": f"sopsflow-verify/{result.target}/"}
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [run],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


# --- GitHub workflow commands ------------------------------------------------------


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(result: VerifyResult) -> str:
    lines = []
    for f in result.findings:
        command = "error" if f.severity == "error" else "warning"
        props = [f"file={_gh_prop(f.path)}"]
        if f.line:
            props.append(f"line={int(f.line)}")
        props.append(f"title={_gh_prop('sopsflow ' + f.kind)}")
        fix = _fix(f, result)
        message = f.message + (f" Fix: {fix}" if fix else "")
        lines.append(f"::{command} {','.join(props)}::{_gh_data(message)}")
    lines.append(_gh_data(_summary_line(result)))
    return "\n".join(lines) + "\n"


# --- GitLab Code Quality --------------------------------------------------------


def render_gitlab(result: VerifyResult) -> str:
    issues = []
    for f, fp in zip(result.findings, fingerprints(result.findings), strict=True):
        issues.append(
            {
                "type": "issue",
                "check_name": f.kind,
                "description": f.message,
                "categories": ["Security"],
                "fingerprint": fp,
                # Code Quality knows info/minor/major/critical/blocker.
                "severity": "major" if f.severity == "error" else "minor",
                "location": {"path": f.path, "lines": {"begin": int(f.line or 1)}},
            }
        )
    return json.dumps(issues, indent=2, ensure_ascii=False) + "\n"


# --- JUnit XML ---------------------------------------------------------------------


def render_junit(result: VerifyResult) -> str:
    import xml.etree.ElementTree as ET

    by_path: dict[str, list[Finding]] = {}
    for f in result.findings:
        by_path.setdefault(f.path, []).append(f)
    paths = [a.path for a in result.files]
    # Repository-level findings (a rule, a Kustomization) may name a path the
    # audit did not visit, e.g. with --since; they still get a test case.
    paths += sorted(set(by_path) - set(paths))
    suite = ET.Element("testsuite", name="sopsflow verify", timestamp=result.started)
    failures = 0
    for path in paths:
        case = ET.SubElement(suite, "testcase", classname="sopsflow.verify", name=_xml_text(path), file=_xml_text(path))
        found = by_path.get(path, [])
        errors = [f for f in found if f.severity == "error"]
        warnings = [f for f in found if f.severity != "error"]
        if errors:
            failures += 1
            first = errors[0]
            failure = ET.SubElement(case, "failure", type=first.kind, message=_xml_text(first.message))
            failure.text = "\n".join(_xml_text(_finding_line(f, _fix(f, result))) for f in errors)
        if warnings:
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(_xml_text(_finding_line(f, _fix(f, result))) for f in warnings)
    suite.set("tests", str(len(paths)))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", "0")
    suite.set("time", f"{result.seconds:.3f}")
    root = ET.Element("testsuites", name="sopsflow verify", tests=str(len(paths)), failures=str(failures), errors="0")
    root.set("time", f"{result.seconds:.3f}")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _finding_line(f: Finding, fix: str | None) -> str:
    where = f.path + (f":{f.line}" if f.line else "")
    return f"{where}: {f.severity}: {f.message} [{f.kind}]" + (f" (fix: {fix})" if fix else "")


def _xml_text(text: str) -> str:
    # XML 1.0 cannot carry most control characters, even escaped; a path with
    # one must still produce a well-formed report.
    return "".join(c if c in "\t\n\r" or ord(c) >= 0x20 and not 0xD800 <= ord(c) <= 0xDFFF else "\ufffd" for c in text)
