"""Stored model versions and their aliases: what serves (``champion``), what is on trial, and why it changed.

    sentiment-models list                                  # versions, key test metrics, aliases
    sentiment-models history                               # every alias change, oldest first
    sentiment-models promote VERSION --reason "..." [--alias challenger] [--report reports/.../evaluation.json]
    sentiment-models rollback --reason "..."               # champion back to the one it replaced
    sentiment-models challenger VERSION --reason "..."     # or: challenger --clear --reason "..."
    sentiment-models champion                              # the exact tag to serve or package (bootstraps)
    sentiment-models export VERSION                        # store a verified ONNX export in a version registered
                                                           # before exports were stored (needs PyTorch)
    sentiment-models gate [--challenger VERSION] [--dry-run] [--force --reason "..."]
                                                           # challenger vs champion; promotes if it passes

    sentiment-models import-labels FILE.csv|FILE.jsonl [--labeller NAME]
                                                           # labels made elsewhere (text, label) into the labels
                                                           # file; invalid rows, duplicates, conflicts counted

``gate`` exits 0 when the gate passed (promoted, or a dry run) or a forced promotion went through, else 3.

Every command takes ``--json`` (machine-readable output) and ``--name`` (default: settings' model name).
A refused change exits with status 1 and says why. Also ``python -m scripts.models``.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from sentiment.model.aliases import AliasError, AliasRegistry
from sentiment.model.registry import StoredVersion, list_versions, store_export
from sentiment.records import AliasChange
from sentiment.settings import load_settings
from training.promotion import GateError, GateReport, render_markdown, run_gate


class VersionRow(StoredVersion):
    """A stored version and the aliases naming it (what ``list --json`` prints)."""

    aliases: list[str]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON instead of a table")
    common.add_argument("--name", help="model name in the store (default: SENTIMENT_MODEL__NAME)")
    p = argparse.ArgumentParser(
        prog="sentiment-models", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", parents=[common], help="stored versions with key metrics and aliases")
    sub.add_parser("history", parents=[common], help="every alias change")
    sub.add_parser("champion", parents=[common], help="the exact champion tag (bootstraps it when never set)")
    pr = sub.add_parser("promote", parents=[common], help="point an alias at a stored version")
    pr.add_argument("tag", help="a version, a unique prefix of one, or NAME:VERSION")
    pr.add_argument("--alias", choices=["champion", "challenger"], default="champion")
    pr.add_argument("--reason", required=True)
    pr.add_argument("--report", type=Path, help="the evaluation or comparison report that justifies it")
    pr.add_argument("--force", action="store_true", help="promote a champion with a lower test macro-F1")
    rb = sub.add_parser("rollback", parents=[common], help="champion back to the one it replaced")
    rb.add_argument("--reason", required=True)
    ch = sub.add_parser("challenger", parents=[common], help="set or clear the challenger")
    target = ch.add_mutually_exclusive_group(required=True)
    target.add_argument("tag", nargs="?", help="a version, a unique prefix of one, or NAME:VERSION")
    target.add_argument("--clear", action="store_true")
    ch.add_argument("--reason", required=True)
    ch.add_argument("--report", type=Path)
    ex = sub.add_parser("export", parents=[common], help="store a verified ONNX export in an older version")
    ex.add_argument("tag", help="a version, a unique prefix of one, or NAME:VERSION")
    im = sub.add_parser("import-labels", parents=[common], help="append labels made elsewhere (CSV or JSONL)")
    im.add_argument("file", type=Path, help="CSV or JSON Lines with a text and a label (or sentiment) column")
    im.add_argument("--labeller", default="", help="recorded with each label (default: import:<file name>)")
    gt = sub.add_parser("gate", parents=[common], help="score challenger vs champion on the frozen evaluation set")
    gt.add_argument("--challenger", help="a version to judge instead of the challenger alias")
    gt.add_argument("--dry-run", action="store_true", help="decide and write the report, move no alias")
    gt.add_argument("--force", action="store_true", help="promote even if the gate fails (needs --reason)")
    gt.add_argument("--reason", default="", help="why (required with --force)")
    args = p.parse_args(argv)
    if args.command == "gate" and args.force and not args.reason.strip():
        p.error("--force needs --reason")
    return args


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns sized to their widest cell: readable in a terminal, greppable in a log."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def version_rows(registry: AliasRegistry) -> list[VersionRow]:
    state = registry.state()
    return [
        VersionRow(**v.model_dump(), aliases=[a for a in ("champion", "challenger") if getattr(state, a) == v.tag])
        for v in list_versions(registry.name)
    ]


def render_versions(rows: list[VersionRow]) -> str:
    return table(
        ["tag", "created (UTC)", "profile", "macro-F1", "accuracy", "neg-vs-pos acc", "aliases"],
        [
            [
                r.tag,
                r.created.strftime("%Y-%m-%d %H:%M:%S"),
                r.profile,
                _num(r.test_macro_f1),
                _num(r.test_accuracy),
                _num(r.test_binary_accuracy),
                ", ".join(r.aliases),
            ]
            for r in rows
        ],
    )


def render_changes(changes: list[AliasChange]) -> str:
    return table(
        ["when (UTC)", "alias", "action", "from", "to", "forced", "reason", "report", "by", "command"],
        [
            [
                c.ts,
                c.alias,
                c.action,
                c.from_tag or "-",
                c.to_tag or "-",
                "yes" if c.forced else "",
                c.reason,
                c.report or "",
                c.by,
                c.command,
            ]
            for c in changes
        ],
    )


def _dump(items: Sequence[BaseModel]) -> str:
    return json.dumps([i.model_dump(mode="json") for i in items], indent=1)


def run(args: argparse.Namespace, command: str) -> str:
    """The command's output; raises AliasError when a change is refused."""
    registry = AliasRegistry(args.name or load_settings().model.name)
    changes: list[AliasChange]
    if args.command == "list":
        rows = version_rows(registry)
        return _dump(rows) if args.json else (render_versions(rows) if rows else f"no versions of {registry.name}")
    if args.command == "champion":
        tag = registry.resolve_serving_tag()
        if tag is None:
            raise AliasError(f"no versions of {registry.name} in the model store")
        return json.dumps({"champion": tag}) if args.json else tag
    if args.command == "export":
        tag, record = store_export(registry.stored_tag(args.tag))
        done = {"tag": tag, **record.model_dump(mode="json")}
        return (
            json.dumps(done)
            if args.json
            else (
                f"{tag}: onnx/{record.fp32.file} ({record.fp32.bytes / 1e6:.1f} MB, max logit diff to PyTorch "
                f"{record.max_logit_diff:.2g}), onnx/{record.int8.file} ({record.int8.bytes / 1e6:.1f} MB)"
            )
        )
    if args.command == "history":
        changes = registry.history()
        if not changes and not args.json:
            return f"no alias changes for {registry.name}"
    elif args.command == "promote":
        changes = registry.promote(args.alias, args.tag, args.reason, args.report, args.force, command)
    elif args.command == "rollback":
        changes = [registry.rollback(args.reason, command)]
    elif args.clear:
        changes = [registry.clear_challenger(args.reason, command)]
    else:
        changes = registry.promote("challenger", args.tag, args.reason, args.report, command=command)
    return _dump(changes) if args.json else render_changes(changes)


def gate(args: argparse.Namespace, command: str) -> GateReport:
    settings = load_settings()
    return run_gate(
        args.name or settings.model.name, settings, args.challenger, args.dry_run, args.force, args.reason, command
    )


def import_labels_command(args: argparse.Namespace) -> int:
    from training.label_import import LabelFileError, import_labels

    try:
        result = import_labels(args.file, load_settings(), args.labeller)
    except (OSError, UnicodeDecodeError, LabelFileError, csv.Error) as exc:
        print(f"cannot import {args.file}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(result.model_dump_json(indent=1))
        return 0
    m = result.merged
    print(
        f"{result.imported} of {result.rows} rows imported into {result.labels_file}; left out: "
        f"{result.unreadable} unreadable, {result.unknown_label} unknown label, {result.rejected_text} text failing "
        f"the input checks\nthe labels file now holds {m.reviews} labelled reviews ({m.duplicates} duplicates "
        f"merged, {m.conflicts} conflicting texts: the latest label wins)"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    command = shlex.join(["sentiment-models", *argv])
    if args.command == "import-labels":
        return import_labels_command(args)
    if args.command == "gate":
        try:
            report = gate(args, command)
        except (GateError, AliasError) as exc:
            print(f"gate cannot run: {exc}", file=sys.stderr)
            return 1
        print(
            report.model_dump_json(indent=1)
            if args.json
            else render_markdown(report) + f"\nreport: {report.report_dir}"
        )
        return 0 if report.action in ("promoted", "forced") or (report.action == "dry_run" and report.passed) else 3
    try:
        out = run(args, command)
    except AliasError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
