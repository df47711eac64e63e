"""The ``plasticity-search`` command line.

Every subcommand has ``--help``; ``--json`` prints one JSON document on stdout and nothing else; bad input
(config, formula, path, flag) is one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

EXIT_USAGE = 2


class UsageError(ValueError):
    """Bad input from the user: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage + message otherwise)
        raise UsageError(f"{self.prog}: {message}")


# ---------------------------------------------------------------------------------------------------------------
def cmd_rules(args) -> int:
    from .rules.formula import rule_equation
    from .rules import RULES
    from .rules.formula import to_latex

    out = []
    for r in RULES.values():
        prog, space = r.compile()
        out.append({"name": r.name, "model": r.model, "formula": r.resolved_formula(), "formula_params": r.formula,
                    "params": r.params, "latex": to_latex(prog, space), "variables": r.variables,
                    "defaults": r.defaults, "reference": r.reference, "description": r.description,
                    "criteria": list(r.criteria), "family": bool(r.basis)})
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    w = max(len(r["name"]) for r in out)
    for r in out:
        print(f"{r['name']:<{w}}  {r['model']:<8} {rule_equation(r['formula'])}")
        print(f"{'':<{w}}  {'':<8} {r['reference']}")
    return 0


def cmd_tasks(args) -> int:
    from .tasks import list_tasks

    out = [{"name": t.name, "kind": t.kind, "objective": t.objective, "n_in": t.n_in, "n_out": t.n_out,
            "default_steps": t.default_steps, "description": t.description} for t in list_tasks()]
    out.append({"name": "idx:PATH", "kind": "rate", "objective": "classification", "n_in": None, "n_out": None,
                "default_steps": None,
                "description": "MNIST / Fashion-MNIST / EMNIST from IDX files (gzip or not) at a path you give"})
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    w = max(len(t["name"]) for t in out)
    for t in out:
        print(f"{t['name']:<{w}}  {t['kind']:<8} {t['description']}")
    return 0


def cmd_export(args) -> int:
    from .export import export
    from .rules.resolve import resolve_rule

    rule = resolve_rule(args.rule)
    text = export(rule, args.to)
    if args.output:
        _atomic_write(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def _atomic_write(path: str, text: str) -> None:
    """Write the whole file or nothing (no half-written output on error)."""
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise UsageError(f"output directory '{d}' does not exist")
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise UsageError(f"cannot write '{path}': {exc.strerror}") from None


# ---------------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="plasticity-search",
                description="Discover local synaptic plasticity rules: search, evaluate, inspect, export.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    s = sub.add_parser("rules", help="list the known rules (name, formula, variables, reference)")
    s.add_argument("--json", action="store_true", help="print one JSON document")
    s.set_defaults(func=cmd_rules)

    s = sub.add_parser("tasks", help="list the tasks (name, kind, description)")
    s.add_argument("--json", action="store_true", help="print one JSON document")
    s.set_defaults(func=cmd_tasks)

    from .export import TARGETS
    s = sub.add_parser("export", help="export a rule (known name, formula in quotes, or rule .json file)")
    s.add_argument("rule", help="known rule name, formula in quotes, RUN_DIR:RANK, or a rule .json file")
    s.add_argument("--to", required=True, choices=list(TARGETS), help="target format")
    s.add_argument("-o", "--output", help="write to this file instead of stdout")
    s.set_defaults(func=cmd_export)

    for extra in _EXTRA_COMMANDS:
        extra(sub)
    return p


# Other layers add subcommands here: callables (subparsers) -> None that call sub.add_parser(...) and
# set_defaults(func=...). Filled by :func:`_load_extra_commands`.
_EXTRA_COMMANDS: list = []


def _load_extra_commands() -> None:
    import importlib

    for mod in ("plasticity_search.evaluate", "plasticity_search.runs.cli"):
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name and mod.startswith(exc.name):
                continue  # that layer is not part of this build
            raise
        if m.add_commands not in _EXTRA_COMMANDS:
            _EXTRA_COMMANDS.append(m.add_commands)


def main(argv=None) -> int:
    from .rules.program import RuleError

    _load_extra_commands()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except (UsageError, RuleError, ValueError, FileNotFoundError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"plasticity-search: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. `plasticity-search rules | head`
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except KeyboardInterrupt:
        print("plasticity-search: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
