"""Weights & Biases logging for ``plasticity-search run`` (kept out of the core: the CLI layer calls it).

Mode: the ``--wandb`` flag, else ``WANDB_MODE``, else ``offline`` (no account or network needed: the run is written
to ``RUN_DIR/wandb/offline-run-*`` and ``wandb sync RUN_DIR/wandb/offline-run-*`` uploads it later). ``disabled``
imports nothing. Logged: per-generation metrics (step = generation), the hall of fame as a table, the plots.
"""
from __future__ import annotations

import os

MODES = ("offline", "online", "disabled")


class WandbError(ValueError):
    """wandb could not start (e.g. ``online`` without an account): one line, exit code 2."""


def resolve_mode(flag: str | None, env: dict | None = None) -> str:
    """The flag, else ``WANDB_MODE``, else ``offline``. ``dryrun`` (old wandb spelling) means offline."""
    env = os.environ if env is None else env
    mode = flag or env.get("WANDB_MODE") or "offline"
    mode = mode.strip().lower()
    if mode == "dryrun":
        mode = "offline"
    if mode == "run":
        mode = "online"
    if mode not in MODES:
        src = "--wandb" if flag else "WANDB_MODE"
        raise WandbError(f"{src}: unknown wandb mode '{mode}' (known: {', '.join(MODES)})")
    return mode


class WandbLogger:
    """A thin wrapper over one wandb run; every method is a no-op in ``disabled`` mode."""

    def __init__(self, mode: str, run_dir: str, *, name: str, run_id: str, config: dict, project: str | None = None):
        self.mode = mode
        self.run = None
        if mode == "disabled":
            return
        try:
            import wandb
        except ImportError:
            raise WandbError("wandb is not installed (pip install wandb, or --wandb disabled)") from None
        if mode == "offline":
            # wandb's process-wide analytics read the *global* settings (not init's mode=) and would post to the
            # W&B server from an offline run; offline must mean no network at all.
            os.environ["WANDB_MODE"] = "offline"
            os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
        settings = wandb.Settings(silent=True, console="off", x_disable_stats=True, x_disable_machine_info=True)
        try:
            self.run = wandb.init(mode=mode, dir=os.path.abspath(run_dir),
                                  project=project or os.environ.get("WANDB_PROJECT") or "plasticity-search",
                                  name=name, id=run_id, resume="allow", config=config, settings=settings,
                                  reinit="finish_previous")
        except Exception as exc:  # noqa: BLE001 - wandb raises many types (UsageError, CommError, AuthenticationError)
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WandbError(f"wandb ({mode}) could not start: {msg} (use --wandb offline or disabled)") from None

    @property
    def local_dir(self) -> str | None:
        """The run's local directory (``.../wandb/offline-run-...``), if any."""
        if self.run is None:
            return None
        return os.path.dirname(self.run.dir.rstrip(os.sep))

    def log_generation(self, generation: int, metrics: dict) -> None:
        if self.run is None:
            return
        scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self.run.log(scalars, step=int(generation))

    def log_hall_of_fame(self, columns: list[str], rows: list[list], summary: dict | None = None) -> None:
        if self.run is None:
            return
        import wandb

        self.run.log({"hall_of_fame": wandb.Table(columns=columns, data=rows)})
        for k, v in (summary or {}).items():
            self.run.summary[k] = v

    def log_images(self, paths: dict[str, str]) -> None:
        if self.run is None or not paths:
            return
        import wandb

        self.run.log({f"plots/{k}": wandb.Image(p) for k, p in paths.items() if os.path.isfile(p)})

    def finish(self, exit_code: int = 0) -> None:
        if self.run is not None:
            self.run.finish(exit_code=exit_code)
            self.run = None
