"""The ``plasticity-search`` command line.

Every subcommand has ``--help``; ``--json`` prints one JSON document on stdout and nothing else; bad input
(config, formula, path, flag) is one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import re
import sys

from . import evaluate_cmd as evaluate
from .errors import UsageError
from .runs import run_cmd as runs_cli

# Start-up stays light (``--help`` loads neither JAX nor sympy): this module and the command modules it lists import
# the rule language, tasks, export, models and the search layer inside the commands that use them. Every error
# class of bad input is a ``ValueError`` (``RuleError``, ``TaskError``, ``ConfigError``, ``RunDirError``, ...).

EXIT_USAGE = 2

# the names of export.TARGETS (the parser's choices), kept here so that building the parser imports no printer;
# tests/test_cli_ux.py checks that the two agree
EXPORT_TARGETS = ("sympy", "latex", "jax", "numpy", "torch", "brian2", "nestml", "json")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage + message otherwise)
        # main() prefixes "plasticity-search: error: "; name the subcommand once ("export: ..."), not the program
        sub = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        raise UsageError(f"{sub}: {message}" if sub else message)


_FORMULA_OPERATORS = re.compile(r"[*/+()^;\s]")
_NEGATED_NAME = re.compile(r"^-[A-Za-z_][A-Za-z_0-9]*$")     # "-x", "-e_pre": a negated variable
_RULE_COMMANDS = ("export", "evaluate", "generalize")          # the subcommands that take rules as positionals


def _option_strings(parser: argparse.ArgumentParser) -> dict:
    """Every option string of ``parser`` and of its subcommands -> whether it takes a value."""
    out = {}
    for action in parser._actions:
        out.update({o: action.nargs != 0 for o in action.option_strings})
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out.update(_option_strings(sub))
    return out


def protect_formulas(argv: list, parser: argparse.ArgumentParser) -> list:
    """A RULE that starts with a minus (``evaluate "-e*x" ...``) is a formula, not an option: argparse would take
    any ``-...`` token for an option. A token that starts with one '-', holds a formula operator or is a negated name
    (``-x``, ``-e_pre``), is no option and does not begin with a known short option (``-o/tmp/x``) gets a leading
    space: argparse then reads it as a positional, and rule resolution strips it."""
    opts = _option_strings(parser)
    command = next((t for t in argv if isinstance(t, str) and not t.startswith("-")), None)
    takes_rules = command in _RULE_COMMANDS         # elsewhere "-v" stays a mistyped option, not a formula
    out = []
    for i, tok in enumerate(argv):
        after_option = i > 0 and opts.get(argv[i - 1], False)      # the value of e.g. --out: left to argparse
        if (isinstance(tok, str) and tok.startswith("-") and not tok.startswith("--") and len(tok) > 1
                and (_FORMULA_OPERATORS.search(tok) or (takes_rules and _NEGATED_NAME.match(tok))) and tok not in opts
                and not (tok[:2] in opts and opts[tok[:2]]) and not after_option):
            tok = " " + tok
        out.append(tok)
    return out


# ---------------------------------------------------------------------------------------------------------------
def cmd_rules(args) -> int:
    from .rules import RULES
    from .rules.variables import legend, legend_lines, rule_equation

    if args.json:       # compiling every rule (sympy): only for --json; the text listing loads neither sympy nor JAX
        from .rules.formula import to_latex
    out = []
    for r in RULES.values():
        latex = to_latex(*r.compile()) if args.json else None
        out.append({"name": r.name, "model": r.model, "formula": r.resolved_formula(), "formula_params": r.formula,
                    "params": r.params, "latex": latex, "variables": r.variables,
                    "defaults": r.defaults, "reference": r.reference, "description": r.description,
                    "criteria": list(r.criteria), "family": bool(r.basis),
                    "legend": {v["name"]: v["description"] for v in legend(r.variables)}})
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    w = max(len(r["name"]) for r in out)
    for r in out:
        eq = rule_equation(r["formula"])
        if r["params"]:     # a parametrised rule: its formula with the parameter names and their defaults
            vals = ", ".join(f"{k}={v:g}" for k, v in r["params"].items())
            eq += f"   (from {r['formula_params']}; {vals})"
        print(f"{r['name']:<{w}}  {r['model']:<8} {eq}")
        print(f"{'':<{w}}  {'':<8} variables: {', '.join(r['variables']) or '-'}   {r['reference']}")
    print("\nlegend:")
    print("\n".join(legend_lines(sorted({v for r in out for v in r["variables"]}))))
    return 0


def cmd_tasks(args) -> int:
    from .tasks import list_tasks

    out = [{"name": t.name, "kind": t.kind, "objective": t.objective, "n_in": t.n_in, "n_out": t.n_out,
            "default_steps": t.default_steps, "description": t.description} for t in list_tasks()]
    out.append({"name": "idx:PATH", "kind": "rate", "objective": "classification", "n_in": None, "n_out": None,
                "default_steps": None,
                "description": "MNIST / Fashion-MNIST / EMNIST from IDX files (gzip or not) at a path you give"})
    out.append({"name": "module:function", "kind": "rate|spiking", "objective": None, "n_in": None, "n_out": None,
                "default_steps": None,
                "description": "a task of yours, imported by path (e.g. mytasks:make_task; README: Your own task)"})
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    w, k = max(len(t["name"]) for t in out), max(len(t["kind"]) for t in out)
    for t in out:
        print(f"{t['name']:<{w}}  {t['kind']:<{k}}  {t['description']}")
    return 0


def cmd_export(args) -> int:
    from .export import export
    from .runs import resolve_rule_spec

    if args.output is not None and not args.output.strip():
        raise UsageError("-o: empty file name (leave -o out to print to stdout)")
    rule = resolve_rule_spec(args.rule)
    text = export(rule, args.to)
    if args.output is not None:
        _atomic_write(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def _atomic_write(path: str, text: str) -> None:
    """Write the whole file or nothing (no half-written output on error).

    A regular file (or a new one) is written to a temporary file beside it and renamed over it; a symbolic link is
    followed (its target is replaced, the link stays); a target that exists and is no regular file (``/dev/null``, a
    FIFO) is written in place, never replaced; a directory is refused."""
    if path.endswith(("/", os.sep)) or os.path.basename(path) in (".", ".."):
        raise UsageError(f"cannot write '{path}': it names a directory, not a file")
    if os.path.islink(path):
        try:
            os.stat(path)
        except OSError as exc:      # a link loop or a link to nowhere: not silently replaced by a file
            if exc.errno != errno.ENOENT:
                raise UsageError(f"cannot write '{path}': {exc.strerror}") from None
    path = os.path.realpath(path)
    if os.path.isdir(path):
        raise UsageError(f"cannot write '{path}': it is a directory")
    if os.path.exists(path) and not os.path.isfile(path):
        try:
            with open(path, "w") as f:
                f.write(text)
        except OSError as exc:
            raise UsageError(f"cannot write '{path}': {exc.strerror}") from None
        return
    d = os.path.dirname(path)
    if not os.path.isdir(d):
        what = "is not a directory" if os.path.exists(d) else "does not exist"
        raise UsageError(f"output directory '{d}' {what}")
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

    s = sub.add_parser("rules", help="list the known rules (name, formula, variables, reference)",
                       description="List the known rules: name, model (rate or spiking), the update with its "
                                   "parameters and their defaults, the local variables it reads, and the reference. "
                                   "Any name listed here can be given wherever a RULE is taken.")
    s.add_argument("--json", action="store_true", help="print one JSON document")
    s.set_defaults(func=cmd_rules)

    s = sub.add_parser("tasks", help="list the tasks (name, kind, description)",
                       description="List the tasks a config or --task can name: name, kind (rate or spiking) and "
                                   "what is learned; idx:PATH reads MNIST-style IDX files you provide; "
                                   "module:function imports a task of yours.")
    s.add_argument("--json", action="store_true", help="print one JSON document")
    s.set_defaults(func=cmd_tasks)

    s = sub.add_parser("export", help="export a rule (known name, formula in quotes, or rule .json file)")
    s.add_argument("rule", help="known rule name, formula in quotes, RUN_DIR:RANK, or a rule .json file")
    s.add_argument("--to", required=True, choices=EXPORT_TARGETS, help="target format")
    s.add_argument("-o", "--output", help="write to this file instead of stdout")
    s.set_defaults(func=cmd_export)

    for add_commands in COMMANDS:
        add_commands(sub)
    return p


# The subcommands other modules define: callables (subparsers) -> None that call sub.add_parser(...) and
# set_defaults(func=...).
COMMANDS = (evaluate.add_commands, runs_cli.add_commands)


def main(argv=None) -> int:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return _main(argv)
    _SIGINT["seen"] = False
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGINT, previous)


_SIGINT = {"seen": False}


def _on_sigint(signum, frame):
    """Python's own Ctrl-C handler (raise KeyboardInterrupt), except inside an import: an interrupt there is
    delivered again 20 ms later (numpy and jaxlib print the traceback of an interrupted import of their extension
    and raise an ImportError that names no interrupt). Remembers that it ran, for that ImportError."""
    _SIGINT["seen"] = True
    f = frame
    while f is not None:
        if f.f_code.co_filename.startswith("<frozen importlib"):
            import _thread
            import threading

            timer = threading.Timer(0.02, _thread.interrupt_main)
            timer.daemon = True         # never holds the process at exit
            timer.start()
            return
        f = f.f_back
    raise KeyboardInterrupt


def _main(argv=None) -> int:
    if sys.stdout is None:      # started with stdout closed (`>&-`): output goes nowhere, errors still to stderr
        sys.stdout = open(os.devnull, "w")
    parser = build_parser()
    try:
        args = parser.parse_args(protect_formulas(sys.argv[1:] if argv is None else list(argv), parser))
        return int(args.func(args) or 0)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except (ValueError, FileNotFoundError) as exc:     # UsageError, RuleError, ... are ValueErrors
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"plasticity-search: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except RecursionError:  # a last guard: every reader of user files bounds its nesting itself
        print("plasticity-search: error: input nested too deeply", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. `plasticity-search rules | head`
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except OSError as exc:  # writing stdout on a full disk (> /dev/full), or a run's file that cannot be written
        what = f"'{exc.filename}'" if exc.filename else "the output"
        print(f"plasticity-search: error: cannot write {what}: {exc.strerror or exc}", file=sys.stderr)
        try:
            sys.stdout = open(os.devnull, "w")     # nothing more reaches the failing stream at exit
        except OSError:
            pass
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("plasticity-search: interrupted", file=sys.stderr)
        return 130
    except ImportError:      # Ctrl-C while a library loads: numpy raises ImportError from the interrupt
        if not _SIGINT["seen"]:
            raise
        print("plasticity-search: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
