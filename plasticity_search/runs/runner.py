"""``plasticity-search run``: a search in a run directory, checkpointed as it goes, resumable exactly.

    plan = plan_run(config, out=..., seed=..., generations=..., resume=..., wandb=...)   # validates; writes nothing
    result = execute(plan)                                                               # runs, writes the run dir

Every user error is found by :func:`plan_run` before anything is written. Per generation: ``Search.step`` ->
append the metrics line -> write the checkpoint (atomically; by default as often as keeps checkpoints under 5% of the wall
time, ``budget.checkpoint_every_s`` sets an interval) -> update the run record, progress and
wandb.
The checkpoint records how many metrics lines it has seen, so a resume first cuts ``metrics.jsonl`` back to it and
then continues the engine from that exact state: a run killed at any point (SIGKILL included) and resumed ends with
the same ``hall_of_fame.json`` as the same run never interrupted.

Resume rules: the config (file given, or the run's own ``config.yaml``) must resolve to the run's config; ``--seed``
must not change; ``--generations`` may only *extend* the budget (the run then continues from its last checkpoint,
which equals a run of the old length followed by more generations). A time limit (``budget.time_limit_s``, counted by
the engine over all sessions) makes a run's length depend on the machine: the one non-reproducible knob.
"""
from __future__ import annotations

import os
import secrets
import sys
import time
from dataclasses import dataclass
from types import SimpleNamespace

from .. import distributed as dist
from ..errors import first_line
from . import checkpoint as ckpt
from . import configs
from .validate import check_run_dir
from .rundir import (
    CONFIG_FILE,
    HOF_CSV,
    HOF_JSON,
    RunDirError,
    RunLock,
    append_metrics,
    atomic_write_json,
    atomic_write_text,
    check_metrics,
    cleanup_temp_files,
    create_run_dir,
    default_run_dir,
    json_safe,
    new_run_record,
    read_run_record,
    sync_metrics,
    truncate_metrics,
    write_run_record,
)


class RunError(ValueError):
    """A bad ``run`` request (one line, exit code 2)."""


def default_engine():
    """The search layer, as one namespace."""
    from ..search import engine as eng
    from ..search.hall_of_fame import HallOfFame

    return SimpleNamespace(Search=eng.Search, state_to_tree=eng.state_to_tree, state_from_tree=eng.state_from_tree,
                           HallOfFame=HallOfFame)


@dataclass
class RunPlan:
    run_dir: str
    cfg: object                     # SearchConfig
    cfg_dict: dict                  # cfg.to_dict(), plain
    fresh: bool
    wandb_mode: str
    record: dict | None = None      # existing run record (resume)
    gen_key: str = "generations"
    extend: bool = False            # --generations extends a resumed run's budget
    plots: bool = True
    curves: bool = True
    already_finished: bool = False  # resume of a finished run without --generations: nothing to do

    def shared(self) -> dict:
        """What the other processes of a multi-process run need (they never read the run directory)."""
        return {"run_dir": self.run_dir, "cfg_dict": self.cfg_dict, "fresh": self.fresh, "wandb_mode": self.wandb_mode,
                "gen_key": self.gen_key, "extend": self.extend, "plots": self.plots, "curves": self.curves,
                "already_finished": self.already_finished}

    @classmethod
    def from_shared(cls, d: dict) -> "RunPlan":
        return cls(d["run_dir"], configs.load(d["cfg_dict"]), d["cfg_dict"], d["fresh"], d["wandb_mode"],
                   gen_key=d["gen_key"], extend=d["extend"], plots=d["plots"], curves=d["curves"],
                   already_finished=d["already_finished"])


def plan_run(config: str, *, out: str | None = None, seed: int | None = None, generations: int | None = None,
             resume: bool = False, wandb: str | None = None, plots: bool = True, curves: bool = True,
             devices: int | None = None, sets: dict | None = None) -> RunPlan:
    """Validate a ``run`` request completely; nothing is written. Raises one-line ``ValueError`` subclasses.
    ``sets``: dotted config overrides (``--set KEY=VALUE``), applied to the file before ``--seed`` and
    ``--generations`` and validated with it; new runs only."""
    from .wandb_log import resolve_mode

    if generations is not None and generations < 1:
        raise RunError(f"--generations must be >= 1, got {generations}")
    if seed is not None and seed < 0:
        raise RunError(f"--seed must be >= 0, got {seed}")
    if devices is not None and devices < 1:
        raise RunError(f"--devices must be >= 1, got {devices}")
    if devices is not None and resume:
        raise RunError("--devices applies to new runs; a resumed run keeps its config's budget.devices")
    if sets and resume:
        raise RunError("--set applies to new runs; a resumed run keeps its config (see RUN_DIR/config.yaml)")
    if out is not None and not out.strip():
        raise RunError("--out: empty path (leave it out for runs/<name>-<timestamp>)")
    sets = dict(sets or {})
    mode = resolve_mode(wandb)

    if not resume:
        if os.path.isdir(config):
            hint = " (it is a run directory: add --resume to continue it)" if _is_run(config) else ""
            raise RunError(f"config '{config}' is a directory, not a YAML file{hint}")
        base = configs.load(config, sets)
        ov = {**sets, **configs.overrides_for(configs.to_plain(base.to_dict()), seed, generations)}
        if devices is not None:
            import jax
            if devices > jax.device_count():
                raise RunError(f"--devices {devices}: only {jax.device_count()} device(s) available")
            ov["budget.devices"] = int(devices)
        cfg = configs.load(config, ov) if ov != sets else base
        _check_devices(cfg)
        run_dir = out or default_run_dir(cfg.name)
        from .rundir import check_new_run_dir
        check_new_run_dir(run_dir)
        d = configs.to_plain(cfg.to_dict())
        return RunPlan(run_dir, cfg, d, True, mode, gen_key=configs.find_key(d, "generations") or "generations",
                       plots=plots, curves=curves)

    # ---- resume: RUN_DIR --resume, or CONFIG --out RUN_DIR --resume
    if out is not None:
        run_dir, cfg_src = out, config
        if os.path.isdir(config) and os.path.abspath(config) != os.path.abspath(out):
            raise RunError(f"--resume: give the run directory once (got '{config}' and --out '{out}')")
        if os.path.isdir(config):
            cfg_src = None
    else:
        if not os.path.exists(config):
            raise RunDirError(f"run directory '{config}' does not exist")
        if not os.path.isdir(config):
            raise RunError(f"--resume needs a run directory: `run RUN_DIR --resume` or "
                           f"`run CONFIG --out RUN_DIR --resume` (got the file '{config}')")
        run_dir, cfg_src = config, None
    rec = check_run_dir(run_dir)      # run.json, hall_of_fame.json, checkpoints/: checked, one line if damaged
    if wandb is None and not os.environ.get("WANDB_MODE"):     # no choice made now: the mode the run ran with
        from .wandb_log import MODES
        recorded = ((rec or {}).get("wandb") or {}).get("mode")
        mode = recorded if recorded in MODES else mode
    saved = configs.load(os.path.join(run_dir, CONFIG_FILE), what=f"run config ({run_dir}/{CONFIG_FILE})")
    saved_d = configs.to_plain(saved.to_dict())
    gen_key = configs.find_key(saved_d, "generations") or "generations"
    seed_key = configs.find_key(saved_d, "seed") or "seed"
    if cfg_src is not None:
        # the file stands in for the original command line: it must resolve to the run's config (its seed too,
        # unless --seed says so); the budget is the run's, extended only by an explicit --generations
        ov = {gen_key: generations if generations is not None else configs.get_path(saved_d, gen_key)}
        if seed is not None:
            ov[seed_key] = seed
        given = configs.load(cfg_src, ov)
    else:
        ov = {}
        if seed is not None:
            ov[seed_key] = seed
        if generations is not None:
            ov[gen_key] = generations
        given = configs.load(saved.to_dict(), ov) if ov else saved
    given_d = configs.to_plain(given.to_dict())
    changed = configs.diff(configs.budget_free(saved_d, gen_key), configs.budget_free(given_d, gen_key))
    if changed:
        k, a, b = changed[0]
        more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
        what = "--seed" if k == seed_key and seed is not None else k
        raise RunError(f"config changed since the run started: {what}: {a!r} -> {b!r}{more}; "
                       "resume with the run's own config, or start a new run")
    old_g, new_g = int(configs.get_path(saved_d, gen_key)), int(configs.get_path(given_d, gen_key))
    if new_g < old_g:
        raise RunError(f"--resume can only extend the generation budget ({gen_key} {old_g} -> {new_g})")
    _check_devices(given)
    # the budget the run finished with is run.json's: an extension killed after config.yaml was rewritten (before
    # run.json) leaves a larger budget in config.yaml, which is then still to run
    rec_g = (rec or {}).get("generations")
    rec_g = old_g if isinstance(rec_g, bool) or not isinstance(rec_g, int) else rec_g
    finished = (new_g == old_g == rec_g and os.path.isfile(os.path.join(run_dir, HOF_JSON))
                and (rec or {}).get("status") == "finished")
    stopped_by = (rec or {}).get("stopped_by")
    if new_g > old_g and stopped_by in EARLY_STOPS:
        # written when the search loop ends (before the finalize, so also for a run killed while finalizing): its
        # stop condition still holds at its last generation, and more budget would stop it again at once
        raise RunError(f"the run stopped by {stopped_by} after {(rec or {}).get('generations_done')} generations, "
                       f"so a larger {gen_key} does not continue it ({EARLY_STOPS[stopped_by]}, which cannot "
                       "change on resume); start a new run")
    if not finished:
        _check_resume(run_dir, rec, gen_key)
    # the learning curves are the run's choice like its wandb mode: a run started with --no-curves keeps it (a
    # resume may still turn them off; run.json of an older version records nothing: curves on, as then;
    # check_run_dir has checked that a recorded value is a bool)
    curves = curves and (rec or {}).get("curves", True)
    return RunPlan(run_dir, given, given_d, False, mode, record=rec, gen_key=gen_key,
                   extend=new_g > old_g or new_g != rec_g, plots=plots, curves=curves, already_finished=finished)


#: early stops (run.json's stopped_by) and the setting behind each
EARLY_STOPS = {"patience": "budget.patience", "target_fitness": "budget.target_fitness",
                "time_limit": "budget.time_limit_s"}


def _check_devices(cfg) -> None:
    try:
        dist.check_devices(cfg.budget.devices)
    except dist.DistributedError as exc:
        raise RunError(str(exc)) from None


def plan_run_shared(config: str, **kw) -> RunPlan:
    """:func:`plan_run` on process 0; its plan, or its one-line error, on every process of a multi-process run.
    The other processes never read or write the run directory: hosts need not share a file system."""
    import jax

    if jax.process_count() == 1:
        return plan_run(config, **kw)
    if dist.is_main_process():
        try:
            plan = plan_run(config, **kw)
            from ..search.config import generations_per_call_refusal
            why = generations_per_call_refusal(plan.cfg, processes=jax.process_count())
            if why is not None:
                raise RunError(f"search.generations_per_call: {why}")
        except BaseException as exc:
            dist.broadcast_json({"error": first_line(exc)})
            raise
        dist.broadcast_json({"plan": plan.shared()})
        return plan
    d = dist.broadcast_json()
    if "error" in d:
        raise RunError(d["error"])
    return RunPlan.from_shared(d["plan"])


def _is_run(path: str) -> bool:
    try:
        return read_run_record(path) is not None
    except RunDirError:
        return False


# ---------------------------------------------------------------------------------------------------------------
@dataclass
class RunResult:
    run_dir: str
    hall_of_fame: dict
    generations_done: int
    wall_s: float
    wandb_dir: str | None = None
    stopped_by: str = "generations"     # 'generations' | 'time_limit' | 'target_fitness' | 'patience'


def enable_compile_cache() -> str | None:
    """Turn on JAX's persistent compilation cache unless the user configured one (``JAX_COMPILATION_CACHE_DIR``)
    or opted out (``PLASTICITY_SEARCH_JAX_CACHE=0``). Default location: ``$XDG_CACHE_HOME/plasticity-search/jax``
    (``~/.cache/...``). A resumed run, ``inspect`` and a repeated search then skip most of their compile time;
    a cached executable is the same machine code, so results are unchanged."""
    import jax

    from ..jit_options import compile_cache_dir

    d = compile_cache_dir()
    if d is None:
        return None
    current = jax.config.jax_compilation_cache_dir
    if current:
        return current
    try:
        os.makedirs(d, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", d)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return d


def execute(plan: RunPlan, *, progress: bool | None = None, log=None) -> RunResult:
    """Run (or continue) the search of ``plan`` to its end; writes the whole run directory.

    Several processes (:func:`plasticity_search.distributed.initialize`): every process calls this with the plan of
    :func:`plan_run_shared`; all of them step the same search in lockstep (the population sharded over all their
    devices), process 0 alone writes files and talks to wandb, and the others get from it the checkpoint to
    start from and each 'stop now' decision."""
    import jax

    eng = default_engine()
    if jax.process_count() > 1 and not dist.is_main_process():
        return _follow(plan, eng)
    shared = [jax.process_count() == 1]

    def share(payload: bytes) -> None:        # the start state, once, to the other processes
        if not shared[0]:
            dist.broadcast_bytes(payload)
            shared[0] = True

    try:
        return _execute_main(plan, eng, progress, log, share)
    except BaseException as exc:
        if not shared[0]:                     # the others wait for a start state: give them the error instead
            shared[0] = True
            dist.broadcast_bytes(b"E" + first_line(exc).encode("utf-8"))
        raise


def _follow(plan: RunPlan, eng) -> RunResult:
    """A process other than 0: the same search steps, nothing written."""
    enable_compile_cache()
    t0 = time.perf_counter()
    search = eng.Search(plan.cfg)
    payload = dist.broadcast_bytes(None)
    tag, body = payload[:1], payload[1:]
    if tag == b"E":
        raise RunError(body.decode("utf-8", errors="replace"))
    if tag == b"C":
        arrays, meta = ckpt.decode(body)
        state, done = eng.state_from_tree(arrays, meta["state_meta"]), int(meta["generation"])
    else:
        state, done = search.init(), 0
    while not dist.agree(search.done(state)):
        state, _ = search.step(state)
        done = state.generation
    hof_json = json_safe(search.finalize(state).to_json())
    stopped_by = search.stop_reason(state) or "generations"
    return RunResult(plan.run_dir, hof_json, done, time.perf_counter() - t0, None, stopped_by)


def _execute_main(plan: RunPlan, eng, progress, log, share) -> RunResult:
    from ..search.ahead import FinalizeAhead
    from .progress import SearchProgress
    from .wandb_log import WandbLogger

    log = log or (lambda s: print(s, file=sys.stderr))
    enable_compile_cache()
    run_dir, cfg = plan.run_dir, plan.cfg
    header = (f"resolved config of the run in this directory (every default written out)\n"
              f"continue it with: plasticity-search run {run_dir} --resume")
    if plan.fresh:
        text = configs.dump_yaml(plan.cfg_dict, header)
        rec = new_run_record(cfg.name, seed=int(cfg.seed), generations=int(cfg.generations),
                             config_sha256=configs.config_sha(text, plan.gen_key),
                             wandb={"mode": plan.wandb_mode, "id": secrets.token_hex(4)}, argv=sys.argv[1:],
                             curves=bool(plan.curves))
        create_run_dir(run_dir, {CONFIG_FILE: text, "run.json": _json_text(rec)})
    lock = RunLock(run_dir).acquire()
    wb = search = None
    started = False
    try:
        rec = read_run_record(run_dir)
        cfg_sha = configs.check_unedited(run_dir, rec, plan.gen_key, "start a new run")
        # whatever can refuse a resume is checked before anything is written (run.json, wandb, metrics)
        search = eng.Search(cfg)
        loaded = ckpt.load_latest(run_dir, on_skip=lambda path, why: log(
            f"checkpoint '{path}' is damaged ({why}); passed over for an older one"))
        if loaded is not None and loaded[1].get("config_sha256") != cfg_sha:
            raise RunError(f"checkpoint in '{run_dir}' belongs to a different config; start a new run")
        resumed = None if loaded is None else _state_from_checkpoint(eng, run_dir, *loaded, search=search)
        share(b"N" if loaded is None else b"C" + ckpt.encode(*loaded))
        lock.write_pid()
        cleanup_temp_files(run_dir)
        wb_id = (rec.get("wandb") or {}).get("id") or secrets.token_hex(4)
        try:
            wb = WandbLogger(plan.wandb_mode, run_dir, name=os.path.basename(os.path.abspath(run_dir)), run_id=wb_id,
                             config=plan.cfg_dict)
        except ValueError:
            if plan.fresh:      # nothing was computed yet: leave nothing behind
                lock.release()
                lock = None
                import shutil
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        if plan.extend:
            atomic_write_text(os.path.join(run_dir, CONFIG_FILE), configs.dump_yaml(plan.cfg_dict, header))
            rec["generations"] = int(cfg.generations)
        rec.update(status="running", pid=os.getpid(), finished=None, error=None,
                   wandb={"mode": plan.wandb_mode, "id": wb_id, "dir": _rel(wb.local_dir, run_dir)})
        write_run_record(run_dir, rec)
        started = True

        t_session = time.perf_counter()
        elapsed = float(rec.get("elapsed_s") or 0.0) if not plan.fresh else 0.0

        def wall() -> float:
            return elapsed + (time.perf_counter() - t_session)

        bar = SearchProgress(int(cfg.generations), 0, enabled=progress)
        with bar:
            if loaded is None:
                truncate_metrics(run_dir, 0)
                bar.phase(f"compiling and scoring the initial population ({cfg.search.strategy})")
                state, done = search.init(), 0
                arrays, smeta = eng.state_to_tree(state)
                ckpt.save(run_dir, 0, arrays, smeta, n_metrics=0, cfg_sha=cfg_sha)
            else:
                arrays, meta = loaded
                state = resumed
                done = int(meta["generation"])
                truncate_metrics(run_dir, int(meta["n_metrics"]))
                if not plan.fresh:
                    log(f"resuming {run_dir} at generation {done}/{cfg.generations}")
            # the end-of-run work that does not depend on the search, beside the generations (after the initial
            # population: its compiles do not wait for the baselines'), then the finalize near the end
            search.ahead = start_ahead(search)
            spec = None
            if search.ahead is not None:
                if plan.plots:
                    from .plots import warm_up
                    search.ahead.submit(("plots", "warm-up"), warm_up)
                spec = FinalizeAhead(search, search.ahead, generalization_conditions(cfg))
            bar.update(done)
            bar.phase("search")
            every = cfg.budget.checkpoint_every_s       # None: checkpoints <= 5% of the wall time (below)
            last_ckpt, ckpt_cost = time.perf_counter(), 0.0
            while not dist.agree(search.done(state)):
                state, generations = search.steps(state)     # one, or search.generations_per_call
                for metrics in generations:
                    metrics = json_safe(dict(metrics))
                    done += 1
                    append_metrics(run_dir, metrics)              # then the checkpoint that has seen it
                    wb.log_generation(done, metrics)
                now = time.perf_counter()
                # default: after a fresh run's first generation (its first call), then whenever the last
                # checkpoint's cost is at most 1/19 of the time since, i.e. checkpoints take <= 5% of the wall time
                # (a growing checkpoint of a fast run is written less often); budget.checkpoint_every_s sets an
                # interval instead (0: every generation, or every call of search.generations_per_call)
                due = (now - last_ckpt >= every) if every is not None else (
                    done - len(generations) == 0 or now - last_ckpt >= 19.0 * ckpt_cost)
                if due or search.done(state):
                    # a resume from an older checkpoint replays the generations since (deterministic) and
                    # truncates metrics.jsonl to the checkpoint's count: the same run either way
                    arrays, smeta = eng.state_to_tree(state)
                    sync_metrics(run_dir)       # on disk before the checkpoint that has seen it
                    ckpt.save(run_dir, done, arrays, smeta, n_metrics=done, cfg_sha=cfg_sha)
                    rec.update(generations_done=done, elapsed_s=round(wall(), 3))
                    write_run_record(run_dir, rec)
                    last_ckpt = time.perf_counter()
                    ckpt_cost = last_ckpt - now
                bar.update(done, metrics)
                if spec is not None and not search.done(state):
                    spec.after_generation(state)       # near the end: the finalize computed ahead
        stopped_by = search.stop_reason(state) or "generations"
        bar.phase(f"finalizing after {done} generations (stopped by {stopped_by}): the Pareto set re-scored on "
                  "the select and final tasks, baselines, learning curves")
        hof = search.finalize(state) if spec is None else spec.finalize(state)
        hof_json = json_safe(hof.to_json())
        atomic_write_json(os.path.join(run_dir, HOF_JSON), hof_json)
        from .results import hall_of_fame_csv, table_rows

        atomic_write_text(os.path.join(run_dir, HOF_CSV), hall_of_fame_csv(hof_json))
        write_generalization(run_dir, cfg, hof, bar.phase, spec)
        rec.update(stopped_by=stopped_by, elapsed_s=round(wall(), 3))   # the report shows them
        write_run_record(run_dir, rec)
        images = {}
        if plan.plots:
            from .report import write_outputs

            bar.phase("plots and report.html")
            images = write_outputs(run_dir, hof_json, curves=plan.curves, log=log, status="finished")
        cols, rows = table_rows(hof_json)
        wb.log_hall_of_fame(cols, rows, summary={"generations_done": done, "best_formula": _best_formula(hof_json)})
        wb.log_images(images)
        wandb_dir = wb.local_dir
        wb.finish()
        wb = None
        total = wall()
        rec.update(status="finished", finished=_now(), generations_done=done, elapsed_s=round(total, 3),
                   stopped_by=stopped_by)
        write_run_record(run_dir, rec)
        return RunResult(run_dir, hof_json, done, total, wandb_dir, stopped_by)
    except BaseException as exc:
        if wb is not None:
            try:
                wb.finish(exit_code=1)
            except Exception:  # noqa: BLE001
                pass
        if started:
            _record_stop(run_dir, rec, exc)
        raise
    finally:
        if search is not None and search.ahead is not None:
            search.ahead.stop()         # normally done by now; after an error, no further job
        if lock is not None:
            lock.release()


def _record_stop(run_dir: str, rec: dict, exc: BaseException) -> None:
    """run.json of a run that stopped on an exception: status 'interrupted' (Ctrl-C) or 'failed' with the error's
    first line, so that ``inspect`` and the report say why. The checkpoint fields stay those of the newest
    checkpoint, which a resume continues from. A kill cannot write this: its run.json keeps 'running', read as
    interrupted once no process holds the lock (``rundir.run_status``)."""
    interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit))
    try:
        write_run_record(run_dir, dict(rec, status="interrupted" if interrupted else "failed",
                                       error=None if interrupted else f"{type(exc).__name__}: {first_line(exc)}"[:500]))
    except Exception:  # noqa: BLE001  (a full disk: the original error is what the user needs)
        pass


def generalization_conditions(cfg) -> list[dict]:
    """The held-out conditions a finished run scores its chosen rule on (``generalization.at_end``)."""
    from ..search.generalize import conditions_of

    return conditions_of(cfg) if cfg.generalization.at_end and cfg.model == "rate" else []


def start_ahead(search):
    """Start the end-of-run work that does not depend on the search (:mod:`..search.ahead`): the baselines outside
    the candidates' final call and FA and BP on the held-out conditions; the thread then takes the finalize
    computed ahead near the end of the search (:class:`..search.ahead.FinalizeAhead`). None with a device mesh or
    several processes (there every call runs in the same order everywhere)."""
    import jax

    from ..search.ahead import Ahead
    from ..search.finalize import baseline_jobs
    from ..search.generalize import baseline_jobs as generalization_jobs

    if search.devices is not None or jax.process_count() > 1:
        return None
    jobs = baseline_jobs(search)
    conds = generalization_conditions(search.cfg)
    if conds:
        jobs.update(generalization_jobs(search.space, search.cfg, conds))
    return Ahead(jobs).start()          # more jobs near the end of the search (FinalizeAhead)


def write_generalization(run_dir: str, cfg, hof, log, spec=None) -> dict | None:
    """``generalization.json``: the chosen rule, FA and BP on held-out conditions (``generalization.at_end``);
    ``spec``: the :class:`..search.ahead.FinalizeAhead` that may have computed it for the same rule (and whose
    thread computed FA and BP ahead)."""
    from ..search.generalize import generalization_report
    from .rundir import GEN_JSON

    conds = generalization_conditions(cfg) if len(hof) else []
    if not conds:
        return None
    log(f"generalization: the chosen rule, FA and BP on {len(conds)} held-out conditions "
        f"({cfg.generalization.seeds} seeds each)")
    prog, space = hof.entries[hof.best].rule_program()
    doc = spec.generalization(prog, space) if spec is not None else None
    if doc is None:
        doc = generalization_report(prog, space, cfg, conds, ahead=None if spec is None else spec.ahead)
    atomic_write_json(os.path.join(run_dir, GEN_JSON), json_safe(doc))
    return doc


def _state_from_checkpoint(eng, run_dir: str, arrays: dict, meta: dict, search=None):
    """The search state of a checkpoint; a damaged one (missing arrays, wrong types; with ``search``: programs
    out of range, sizes other than the config's, NaN or +inf fitness) is a one-line error."""
    try:
        state = eng.state_from_tree(arrays, meta["state_meta"])
        if state.generation != meta["generation"]:      # the run resumes counting from the file's generation
            raise ValueError(f"its search state is at generation {state.generation}, the file says "
                             f"{meta['generation']}")
        if search is not None:
            search.check_state(state)
        return state
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError) as exc:
        raise ckpt.CheckpointError(f"checkpoint in '{run_dir}' cannot be resumed: {first_line(exc)}") from None


def _check_resume(run_dir: str, rec: dict, gen_key: str) -> None:
    """What makes a resume impossible, found before anything is written: config.yaml edited since the run
    started, no readable checkpoint, a checkpoint of another config."""
    cfg_sha = configs.check_unedited(run_dir, rec, gen_key, "start a new run")
    loaded = ckpt.load_latest(run_dir)
    if loaded is not None and loaded[1].get("config_sha256") != cfg_sha:
        raise RunError(f"checkpoint in '{run_dir}' belongs to a different config; start a new run")
    if loaded is not None:
        _state_from_checkpoint(default_engine(), run_dir, *loaded)     # missing arrays, damaged state tree
        check_metrics(run_dir, int(loaded[1]["n_metrics"]))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _json_text(obj) -> str:
    import json

    return json.dumps(obj, indent=2) + "\n"


def _rel(p: str | None, base: str) -> str | None:
    return None if p is None else os.path.relpath(p, base)


def _best_formula(hof_json: dict) -> str:
    entries = hof_json.get("entries") or []
    b = hof_json.get("best", 0) or 0
    return entries[b]["formula"] if 0 <= b < len(entries) else ""
