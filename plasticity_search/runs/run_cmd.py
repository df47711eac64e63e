"""The ``run`` and ``inspect`` subcommands (added to ``plasticity-search`` by :func:`add_commands`).

Building the parser imports nothing heavy (the command line's start-up): the search layer, JAX and the run
machinery load inside the commands.
"""
from __future__ import annotations

import os
import re
import sys

_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_EXPONENT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$", re.ASCII)


def read_value(text: str, what: str):
    """One command-line value as YAML, with the config's bounded safe loader (no code runs, no tags; it reads
    ``1e-3`` as a number); a quoted ``"1e-3"`` is taken as that number too. ConfigError for a document over the bounds,
    yaml.YAMLError for a syntax error."""
    from ..search.config import load_yaml

    value = load_yaml(text, what)
    if isinstance(value, str) and _EXPONENT.match(value.strip()):
        return float(value)
    return value


def parse_sets(items) -> dict:
    """``--set KEY=VALUE`` (repeatable) -> {dotted key: value}. KEY is a dotted config key (``network.feedback``,
    ``search.population``); VALUE is YAML (``dfa``, ``128``, ``[64, 32]``, ``null``) read with the config's bounded
    safe loader: no code runs, no tags. The config validates the result exactly like the same keys in the file."""
    from ..search.config import ConfigError

    out = {}
    for item in items or ():
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ConfigError(f"--set: expected KEY=VALUE with a dotted config key, got {item!r}")
        if not _DOTTED.match(key):
            raise ConfigError(f"--set {key}: not a dotted config key (e.g. network.feedback, search.population)")
        if key in out:
            raise ConfigError(f"--set {key}: given twice")
        for other in out:
            if other.startswith(key + ".") or key.startswith(other + "."):
                raise ConfigError(f"--set {key}: overlaps --set {other}")
        try:
            out[key] = read_value(text, f"--set {key}")
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - a YAML syntax error is bad input
            problem = getattr(exc, "problem", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
            raise ConfigError(f"--set {key}: value {text!r} is not valid YAML ({problem})") from None
    return out


def cmd_run(args) -> int:
    from .. import distributed as dist

    # before anything touches a JAX backend: join the multi-process job, if this is one
    multi = dist.initialize(args.coordinator, args.num_processes, args.process_id)
    from .inspect import format_table, inspect_data
    from .runner import EARLY_STOPS, execute, plan_run_shared

    sets = parse_sets(args.set)
    plan = plan_run_shared(args.config, out=args.out, seed=args.seed, generations=args.generations,
                           resume=args.resume, wandb=args.wandb, curves=not args.no_curves, devices=args.devices,
                           sets=sets)
    main = not multi or dist.is_main_process()
    if plan.already_finished:
        if main:
            rec = plan.record or {}
            how = (f"stopped by {rec['stopped_by']}: start a new run to search further"
                   if rec.get("stopped_by") in EARLY_STOPS else "pass --generations N to extend it")
            print(f"run {plan.run_dir} is already finished ({rec.get('generations_done')} generations); {how}",
                  file=sys.stderr)
            print(format_table(inspect_data(plan.run_dir, 10)))
        return 0
    try:
        result = execute(plan)
    except KeyboardInterrupt:
        if main and os.path.isdir(os.path.join(plan.run_dir, "checkpoints")):
            print(f"plasticity-search: continue with: plasticity-search run {plan.run_dir} --resume", file=sys.stderr)
        raise
    except Exception as exc:
        from .rundir import RunDirError
        from ..errors import first_line
        from .runner import RunError
        if not multi or isinstance(exc, (RunError, RunDirError)):
            raise       # a refused request: every process got the same one line and exits 2
        import jax
        dist.abort(f"plasticity-search: process {jax.process_index()}/{jax.process_count()} failed: "
                   f"{first_line(exc)}\n"
                   f"plasticity-search: continue with the same command on every host: "
                   f"plasticity-search run {plan.run_dir} --resume")
    if not main:
        import jax
        print(f"process {jax.process_index()}/{jax.process_count()}: {result.generations_done} generations in "
              f"{result.wall_s:.1f} s; process 0 writes {plan.run_dir}", file=sys.stderr)
        return 0
    doc = inspect_data(result.run_dir, 10, loaded=(result.hall_of_fame, "finished"))
    print(format_table(doc))
    print(f"\nrun directory  {result.run_dir}   ({result.generations_done} generations, {result.wall_s:.1f} s"
          + (f", stopped by {result.stopped_by}" if result.stopped_by != "generations" else "") + ")")
    report = os.path.join(result.run_dir, "report.html")
    if os.path.isfile(report):
        print(f"report         {report}")
    if result.wandb_dir:
        # under the run directory as the user named it (relative to the cwd it can climb out: ../../tmp/...)
        inside = os.path.relpath(result.wandb_dir, result.run_dir)
        rel = result.wandb_dir if inside.startswith("..") else os.path.join(result.run_dir, inside)
        mode = plan.wandb_mode
        print(f"wandb          {rel}" + (f"   (upload later: wandb sync {rel})" if mode == "offline" else ""))
    for line in next_steps(result.run_dir, plan.cfg):
        print(line)
    return 0


def export_targets(rule) -> tuple[list[str], dict[str, str]]:
    """(targets that take ``rule``, {target that refuses it: why}): each target is tried (brian2 and nestml refuse
    rate rules and variables a synapse model lacks, e.g. ``e``)."""
    from ..errors import first_line
    from ..export import TARGETS, export
    from ..export.codegen import SynapseVariablesError
    from ..rules.program import RuleError

    ok, refused = [], {}
    for target in TARGETS:
        try:
            export(rule, target)
            ok.append(target)
        except SynapseVariablesError as exc:
            refused[target] = f"it reads {', '.join(exc.variables)}, which a synapse model does not have"
        except RuleError as exc:
            refused[target] = first_line(exc)
    return ok, refused


def _refusals(refused: dict) -> str:
    """'(not brian2|nestml: why)', or one reason per target where they differ."""
    whys = set(refused.values())
    if len(whys) == 1:
        return f"(not {'|'.join(refused)}: {whys.pop()})"
    return "(" + "; ".join(f"not {t}: {why}" for t, why in refused.items()) + ")"


def next_steps(run_dir: str, cfg) -> list[str]:
    """The commands printed after a run: export the chosen rule (the targets that take it, :func:`export_targets`,
    naming a spiking rule's refusals; by the model if the run has no readable rule) and, for rate runs, re-score it
    beside the run's baselines (:func:`compare_command`)."""
    from ..export import TARGETS
    from ..rules.program import RuleError
    from .results import rule_from_run
    from .rundir import RunDirError

    spiking = cfg.model == "spiking"
    model_targets = [t for t in TARGETS if spiking or t not in ("brian2", "nestml")]
    try:
        ok, refused = export_targets(rule_from_run(run_dir, 0))
    except (RuleError, RunDirError, OSError, ValueError):
        ok, refused = model_targets, {}
    refused = {t: why for t, why in refused.items() if t in model_targets}     # a rate rule's brian2/nestml: unsaid
    out = [f"export a rule  plasticity-search export {run_dir}:0 --to {'|'.join(ok)}"
           + (f"   {_refusals(refused)}" if refused else "")]
    if not spiking:
        cmd = compare_command(run_dir, cfg)
        why = ("its fitness has penalties" if cfg.fitness.penalties else "evaluate has no flags for this run's "
               "network")
        out.append(f"compare        {cmd}   (paired, same seeds and initial weights)" if cmd else
                   f"compare        the table above and report.html ({why})")
    return out


def compare_command(run_dir: str, cfg) -> str | None:
    """``plasticity-search evaluate`` re-scoring a rate run's chosen rule beside the run's baselines as the run's
    final comparison did: its first final task (args, seeds, steps), network, feedback, learning rates, batch size,
    readout rule and fitness metric. None when ``evaluate`` cannot express the run's network (``layer_rules``,
    ``feedback_rule``, ``init_scale``, ...), seeds (an explicit list) or fitness (``fitness.penalties``: evaluate
    compares one metric, and oja.yaml's penalised alignment re-scored as plain alignment reversed a verdict, found
    by a config audit)."""
    import shlex

    if cfg.fitness.penalties:
        return None

    from ..rate.mlp import default_network, parse_network_spec
    from ..search.config import default_baselines, default_metric

    split = "final" if cfg.tasks.final else "search"
    entries = cfg.tasks.final or cfg.tasks.search
    entry = entries[0]
    if entry.seed_list != tuple(range(len(entry.seed_list))):
        return None
    task, net = cfg.make_task(entry), cfg.network_config()
    spec = net.spec(task.n_in, task.n_out)
    readout_lr = None if net.readout_rule is None else net.layer_rule_specs()[-1][1]     # the lr the run used
    # the network evaluate builds from these flags (rate_model.evaluate_rule): it must be the run's
    rebuilt = parse_network_spec(spec, task.n_in, task.n_out, default_network(task.objective)).with_(
        feedback=net.feedback, lr=net.lr, batch_size=net.batch_size, readout_rule=net.readout_rule,
        readout_lr=readout_lr)
    if rebuilt != net.with_(readout_lr=readout_lr):
        return None
    q = shlex.quote
    words = ["plasticity-search", "evaluate", q(f"{run_dir}:0"), *map(q, default_baselines(cfg, task.objective)),
             "--task", q(entry.task)]
    words += [w for k, v in (entry.args or {}).items() for w in ("--task-arg", q(f"{k}={v}"))]
    words += ["--network", spec, "--seeds", str(len(entry.seed_list))]
    if entry.steps is not None:
        words += ["--steps", str(entry.steps)]
    if net.feedback != "fa":
        words += ["--feedback", net.feedback]
    words += ["--lr", f"{net.lr:g}"]
    if net.batch_size != 1:
        words += ["--batch-size", str(net.batch_size)]
    if net.readout_rule is not None:
        words += ["--readout-rule", q(net.readout_rule), "--readout-lr", f"{readout_lr:g}"]
    metric = cfg.fitness.metric or default_metric(task)
    if metric != default_metric(task):
        words += ["--metric", metric]
    if split != "final":
        words += ["--split", split]
    return " ".join(words) + (f"   (task 1 of {len(entries)})" if len(entries) > 1 else "")


def _checked(cmd):
    """``cmd`` (a command on ``args.run_dir``) after the run directory's files are checked (one line if damaged)."""
    def run(args) -> int:
        from .validate import check_run_dir

        dirs = args.run_dir if isinstance(args.run_dir, (list, tuple)) else [args.run_dir]
        for d in dirs:
            check_run_dir(d)
        return cmd(args)

    return run


def add_commands(sub) -> None:
    s = sub.add_parser("run", help="search for plasticity rules with a config; writes a run directory",
                       description="Run a search from CONFIG.yaml into runs/<name>-<timestamp>/ (or --out DIR), "
                                   "checkpointed as it goes (after generation 1, then whenever a checkpoint "
                                   "costs at most 5% of the time since the last; budget.checkpoint_every_s sets "
                                   "an interval). Continue a killed run exactly with "
                                   "`run RUN_DIR --resume` (or `run CONFIG --out RUN_DIR --resume`).")
    s.add_argument("config", metavar="CONFIG.yaml", help="search config (YAML); with --resume also a run directory")
    s.add_argument("--out", metavar="DIR", help="run directory (default runs/<name>-<timestamp>)")
    s.add_argument("--seed", type=int, help="override the config's seed")
    s.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override one config key, e.g. --set network.feedback=dfa --set search.population=128 "
                        "(repeatable; VALUE is YAML; validated like the file and written to the run's config.yaml)")
    s.add_argument("--generations", type=int, metavar="N",
                   help="override the generation budget (on --resume: extend it)")
    s.add_argument("--resume", action="store_true", help="continue the run in the run directory from its checkpoint")
    s.add_argument("--wandb", choices=("offline", "online", "disabled"),
                   help="wandb mode (default: $WANDB_MODE, else offline: no account or network needed; on --resume the "
                        "mode the run ran with)")
    s.add_argument("--devices", type=int, metavar="N",
                   help="shard the population over N devices (GPUs, TPU cores, or CPU devices); same results as 1")
    g = s.add_argument_group("several hosts (jax.distributed; every process runs the same command)")
    g.add_argument("--coordinator", metavar="HOST:PORT",
                   help="address of process 0 (default $JAX_COORDINATOR_ADDRESS); 'auto': detect the cluster "
                        "(SLURM, Open MPI, Cloud TPU pods)")
    g.add_argument("--num-processes", type=int, metavar="N", help="number of processes (default $JAX_NUM_PROCESSES)")
    g.add_argument("--process-id", type=int, metavar="I",
                   help="this process, 0..N-1 (default $JAX_PROCESS_ID); only process 0 writes the run directory "
                        "and talks to wandb")
    s.add_argument("--no-curves", action="store_true",
                   help="skip the learning curves of the top rules vs their baselines at the end")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("inspect", help="show a run's hall of fame (several runs: side by side); redraw its plots "
                                       "and report.html",
                       description="PySR-style table of a run's hall of fame (finished or running); writes "
                                   "plots/*.png and report.html in the run directory. With several run directories: "
                                   "the runs side by side (chosen rule, final metrics, paired differences to the "
                                   "baselines, the config keys that differ); nothing is written.")
    s.add_argument("run_dir", metavar="RUN_DIR", nargs="+",
                   help="a run directory made by `plasticity-search run` (several: compare them)")
    s.add_argument("--top", type=int, metavar="K", help="show the first K ranks only")
    s.add_argument("--json", action="store_true", help="print one JSON document")
    s.add_argument("--no-plots", action="store_true", help="print only; do not redraw plots/report.html")
    s.set_defaults(func=_checked(_cmd_inspect))


def _cmd_inspect(args) -> int:
    if len(args.run_dir) > 1:
        from .inspect import cmd_inspect_many
        return cmd_inspect_many(args)
    from .inspect import cmd_inspect
    args.run_dir = args.run_dir[0]
    return cmd_inspect(args)
