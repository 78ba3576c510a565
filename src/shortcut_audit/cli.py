"""``shortcut-audit`` command line: one sub-command per user-facing task.

Each sub-command's module is imported only when that command runs, so ``gate`` does
not load Great Expectations or the report's renderer (the package itself imports torch).
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "gate": ("shortcut_audit.validation.gate", "Evaluate the release gate (exit 0 pass, 1 fail, 2 missing inputs)."),
    "validate": ("shortcut_audit.validation.suites", "Run the Great Expectations suites over the pipeline outputs."),
    "report": ("shortcut_audit.report.build", "Render the HTML and PDF audit report."),
    "plots-template": ("shortcut_audit.dvc_plots", "Write the offline page for `dvc plots show` (run by make setup)."),
}


def _usage() -> str:
    lines = ["usage: shortcut-audit <command> [options]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `shortcut-audit <command> --help` for the options of a command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        from shortcut_audit import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"shortcut-audit: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
