"""Loading, overriding, writing and comparing search configs for runs (the config itself belongs to the search layer).

``load_config`` (``plasticity_search.search.config``) validates everything; this module only turns the errors it
can meet on the way (missing file, YAML syntax) into one-line messages and finds what changed between two configs.
"""
from __future__ import annotations

import json
import os

import yaml

from .rundir import RunDirError


class RunConfigError(ValueError):
    """A config problem found by the runs layer (one line, exit code 2)."""


def _search_config():
    from ..search import config as mod

    return mod


def load(source, overrides: dict | None = None, *, what: str = "config"):
    """``load_config(source, overrides)`` with every user error as a one-line ``ValueError``."""
    mod = _search_config()
    if isinstance(source, str):
        if not os.path.exists(source):
            raise RunConfigError(f"{what} file '{source}' does not exist")
        if os.path.isdir(source):
            raise RunConfigError(f"{what} '{source}' is a directory, not a YAML file "
                                 "(to continue a run: plasticity-search run RUN_DIR --resume)")
        try:
            text = mod.read_text_file(source, what)     # a regular UTF-8 file only (a FIFO would block open())
        except OSError as exc:
            raise RunConfigError(f"cannot read {what} file '{source}': {exc.strerror}") from None
        try:
            doc = mod.load_yaml(text, f"{what} file '{source}'")      # bounded: no "billion laughs"
        except yaml.YAMLError as exc:
            raise RunConfigError(f"{what} file '{source}' is not valid YAML: {_yaml_msg(exc)}") from None
        if not isinstance(doc, dict):
            raise RunConfigError(f"{what} file '{source}' must hold a mapping of keys (got {type(doc).__name__})")
        source = doc            # validated from the text read once (the file is not opened a second time)
    try:
        return mod.load_config(source, overrides or None)
    except yaml.YAMLError as exc:  # in case load_config re-parses
        raise RunConfigError(f"{what} is not valid YAML: {_yaml_msg(exc)}") from None
    except FileNotFoundError as exc:
        raise RunConfigError(f"{what}: file not found: {exc.filename or exc}") from None


def _yaml_msg(exc) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else str(problem)


def to_plain(d):
    """A config dict with tuples as lists etc. (what YAML/JSON round trips give back)."""
    return json.loads(json.dumps(d, default=_default))


def _default(x):
    if hasattr(x, "tolist"):
        return x.tolist()
    if isinstance(x, (set, frozenset)):
        return sorted(x)
    return str(x)


def dump_yaml(cfg_dict: dict, header: str = "") -> str:
    from ..search.config import yaml_classes

    # the dumper of the config loader: a string such as "1e3" is quoted, since the loader reads 1e3 as a number
    body = yaml.dump(to_plain(cfg_dict), Dumper=yaml_classes()[1], sort_keys=False, default_flow_style=None,
                     width=120)
    return "".join(f"# {line}\n" for line in header.splitlines()) + body


def budget_free(cfg_dict: dict, gen_key: str) -> dict:
    """The config without its generation budget (what must not change on resume)."""
    d = to_plain(cfg_dict)
    parts = gen_key.split(".")
    cur = d
    for p in parts[:-1]:
        cur = cur.get(p, {})
    if isinstance(cur, dict):
        cur.pop(parts[-1], None)
    return d


def config_sha(yaml_text: str, gen_key: str) -> str:
    """Fingerprint of a run's config.yaml *as written* (without the generation budget, which may be extended):
    edits are caught, while a newer version that adds config defaults still resumes old runs."""
    from .checkpoint import config_hash

    return config_hash(budget_free(_search_config().load_yaml(yaml_text, "run config") or {}, gen_key))


def check_unedited(run_dir: str, rec: dict | None, gen_key: str, advice: str) -> str:
    """The fingerprint (:func:`config_sha`) of ``run_dir``'s config.yaml; a one-line :class:`.rundir.RunDirError`
    ending in ``advice`` if the run's record ``rec`` (run.json) holds another one: the file was edited after the run
    started. Records without a fingerprint pass."""
    from .rundir import CONFIG_FILE

    path = os.path.join(run_dir, CONFIG_FILE)
    sha = config_sha(_search_config().read_text_file(path, "run config"), gen_key)
    if (rec or {}).get("config_sha256") not in (None, sha):
        raise RunDirError(f"'{path}' was edited after the run started; {advice}")
    return sha


def load_run_config(run_dir: str):
    """A run's ``config.yaml`` as a SearchConfig, refused in one line if it was edited after the run started
    (:func:`check_unedited`): what reads a run's results with its config (a running run's provisional hall of fame,
    ``generalize RUN_DIR:RANK``) would otherwise label them with another config's space, network or tasks."""
    from .rundir import CONFIG_FILE, read_run_record

    cfg = load(os.path.join(run_dir, CONFIG_FILE), what="run config")
    check_unedited(run_dir, read_run_record(run_dir), find_key(to_plain(cfg.to_dict()), "generations") or
                   "generations", "its results belong to the config the run started with")
    return cfg


def find_key(d: dict, leaf: str, prefix: str = "") -> str | None:
    """Dotted path of the first key named ``leaf`` (depth first, top level first)."""
    if leaf in d:
        return prefix + leaf
    for k, v in d.items():
        if isinstance(v, dict):
            got = find_key(v, leaf, f"{prefix}{k}.")
            if got:
                return got
    return None


def get_path(d: dict, dotted: str):
    for part in dotted.split("."):
        d = d[part]
    return d


def diff(old: dict, new: dict, prefix: str = "") -> list[tuple[str, object, object]]:
    """[(dotted key, old value, new value)] for every leaf that differs (missing = ``<absent>``)."""
    out = []
    for k in list(old) + [k for k in new if k not in old]:
        a, b = old.get(k, "<absent>"), new.get(k, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += diff(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append((f"{prefix}{k}", a, b))
    return out


def overrides_for(cfg_dict: dict, seed: int | None, generations: int | None) -> dict:
    """Dotted overrides for ``--seed`` / ``--generations`` (keys found in the resolved config)."""
    out = {}
    if seed is not None:
        out[find_key(cfg_dict, "seed") or "seed"] = int(seed)
    if generations is not None:
        out[find_key(cfg_dict, "generations") or "generations"] = int(generations)
    return out


__all__ = [
    "RunConfigError",
    "RunDirError",
    "diff",
    "dump_yaml",
    "find_key",
    "get_path",
    "load",
    "overrides_for",
    "to_plain",
]
