"""Two or three examples under every command's ``--help``.

Kept in one table, applied only when help is asked for, so the commands'
modules stay about behaviour and a normal run pays nothing for them.
"""

from __future__ import annotations

import argparse
import textwrap


class ExamplesFormatter(argparse.HelpFormatter):
    """Wraps one-line paragraphs as usual; keeps paragraphs with line breaks
    (the examples) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = text.split("\n\n")
        return "\n\n".join(
            textwrap.indent(p, indent) if "\n" in p else super(ExamplesFormatter, self)._fill_text(p, width, indent)
            for p in paragraphs
        )

EXAMPLES: dict[str, tuple[str, ...]] = {
    "encrypt": (
        "sopsflow encrypt secrets.yaml > secrets.enc.yaml        # keys from .sops.yaml",
        "sopsflow encrypt --age age1... --in-place secrets.yaml",
        "cat app.env | sopsflow encrypt --filename-override app.env > app.enc.env",
    ),
    "decrypt": (
        "sopsflow decrypt secrets.yaml",
        "sopsflow decrypt --extract '[\"db\"][\"password\"]' secrets.yaml",
        "sopsflow decrypt --output-type json --output plain.json secrets.yaml",
    ),
    "edit": (
        "sopsflow edit secrets.yaml                 # or just: sopsflow secrets.yaml",
        "EDITOR='code --wait' sopsflow edit secrets.yaml",
        "sopsflow edit -s secrets.yaml              # the metadata block too",
    ),
    "set": (
        "sopsflow set secrets.yaml '[\"db\"][\"password\"]' '\"s3cret\"'",
        "sopsflow set --value-file secrets.yaml '[\"tls\"][\"key\"]' key.json",
        "printf '%s' '\"s3cret\"' | sopsflow set --value-stdin secrets.yaml '[\"token\"]'",
    ),
    "unset": (
        "sopsflow unset secrets.yaml '[\"db\"][\"password\"]'",
        "sopsflow unset --idempotent secrets.yaml '[\"old\"][0]'",
    ),
    "rotate": (
        "sopsflow rotate -i secrets.yaml",
        "sopsflow rotate -i --add-age age1... secrets.yaml",
        "sopsflow rotate -i --rm-pgp 85D77543B3D624B63CEA9E6DBC17301B491B3F21 secrets.yaml",
    ),
    "updatekeys": (
        "sopsflow updatekeys secrets.yaml",
        "sopsflow updatekeys -y secrets/*.yaml",
    ),
    "filestatus": (
        "sopsflow filestatus secrets.yaml",
        "sopsflow filestatus values.yaml | grep -q '\"encrypted\":true'",
    ),
    "exec-env": (
        "sopsflow exec-env secrets.env 'echo $DB_PASSWORD'",
        "sopsflow exec-env --pristine secrets.yaml ./deploy.sh",
    ),
    "exec-file": (
        "sopsflow exec-file secrets.yaml 'kubectl apply -f {}'",
        "sopsflow exec-file --no-fifo --filename app.env secrets.env './run --env-file {}'",
    ),
    "groups": (
        "sopsflow groups add -f secrets.yaml --age age1...",
        "sopsflow groups delete -f secrets.yaml 1",
    ),
    "groups add": (
        "sopsflow groups add -f secrets.yaml --age age1...",
        "sopsflow groups add -f secrets.yaml -i --pgp 85D77543B3D624B63CEA9E6DBC17301B491B3F21",
    ),
    "groups delete": (
        "sopsflow groups delete -f secrets.yaml 1",
        "sopsflow groups delete -f secrets.yaml -i 0",
    ),
    "rules": (
        "sopsflow rules secrets/prod.yaml",
        "sopsflow rules --json app/.env",
    ),
    "check": (
        "sopsflow check                       # what is staged",
        "sopsflow check --all-files",
        "sopsflow check secrets/prod.yaml",
    ),
    "verify": (
        "sopsflow verify",
        "sopsflow verify --rev origin/main --format sarif=verify.sarif",
        "sopsflow verify --show-suppressed    # list what inline markers and allow lists suppressed",
    ),
    "history": (
        "sopsflow history --report history.json",
        "sopsflow history --since origin/main --format sarif=history.sarif",
    ),
    "install-hooks": (
        "sopsflow install-hooks",
        "sopsflow install-hooks --chain      # keep an existing pre-commit hook",
    ),
    "recipients": (
        "sopsflow recipients add age1... --update",
        "sopsflow recipients remove age1... --rule 0",
    ),
    "recipients add": (
        "sopsflow recipients add age1...",
        "sopsflow recipients add --path-regex '\\.env$' age1... --update -y",
    ),
    "recipients remove": (
        "sopsflow recipients remove age1...",
        "sopsflow recipients remove --rule 1 age1... --update",
    ),
    "rotate-recipient": (
        "sopsflow rotate-recipient age1old... age1new...   # starts, then one phase per run",
        "sopsflow rotate-recipient --key-file old.agekey --key-file new.agekey | kubectl apply -f -",
        "sopsflow rotate-recipient --status",
    ),
    "flux": (
        "sopsflow flux age-secret --key-file keys.txt | kubectl apply -f -",
        "sopsflow flux age-secret --key-file - --namespace apps < keys.txt",
    ),
    "flux age-secret": (
        "sopsflow flux age-secret --key-file keys.txt | kubectl apply -f -",
        "sopsflow flux age-secret --key-file - --namespace apps < keys.txt",
    ),
    "textconv": (
        "git config diff.sopsdiffer.textconv 'sopsflow textconv'",
        "sopsflow textconv secrets.yaml",
    ),
    "merge-driver": (
        "git config merge.sopsflow.driver 'sopsflow merge-driver %O %A %B %P'",
        "echo '*.enc.yaml merge=sopsflow' >> .gitattributes",
    ),
    "publish": (
        "sopsflow publish --dry-run secrets/app.yaml      # the plan; exit 1 when anything would change",
        "sopsflow publish -y secrets/app.yaml             # apply",
        "sopsflow publish -y --recursive --emit-external-secrets deploy/eso/ secrets/",
    ),
    "ksops": (
        "sopsflow ksops install                 # the launcher kustomize runs for viaduct.ai/v1 ksops",
        "sopsflow ksops secret-generator.yaml   # what kustomize runs: the decrypted manifests",
        "sopsflow ksops < resource-list.yaml    # as a KRM function",
    ),
    "argocd": (
        "sopsflow argocd generate apps/staging   # what the Argo CD plugin prints",
        "sopsflow argocd discover .",
    ),
    "argocd generate": (
        "sopsflow argocd generate                # in the Application's directory",
        "sopsflow argocd generate apps/staging > /dev/null && echo decrypts",
    ),
    "argocd discover": (
        "sopsflow argocd discover .",
        "sopsflow argocd discover apps/staging   # empty: not a sopsflow application",
    ),
}


def add_examples(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """Append the examples to every (sub)command parser's epilog."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, sub in action.choices.items():
            key = f"{prefix}{name}"
            lines = EXAMPLES.get(key)
            if lines and "examples:" not in (sub.epilog or ""):
                block = "examples:\n" + "\n".join(f"  {line}" for line in lines)
                sub.epilog = f"{sub.epilog}\n\n{block}" if sub.epilog else block
                if sub.formatter_class is argparse.HelpFormatter:
                    sub.formatter_class = ExamplesFormatter
            add_examples(sub, f"{key} ")
