"""Worker for the multi-process test: every process runs the same evaluation; process 0 writes the result."""
import json
import sys

import jax
import numpy as np

from plasticity_search import distributed as dist


def main(out_path: str) -> None:
    dist.initialize()   # from JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID
    from plasticity_search.rate import InnerConfig, evaluate_population
    from plasticity_search.rate import NetworkConfig
    from plasticity_search.rules import RATE_SPACE, random_population
    from plasticity_search.tasks import make

    space = RATE_SPACE.resized(n_post=3, n_pre=2, n_terms=4)
    pop = jax.tree.map(np.asarray, random_population(jax.random.key(0), space, 7, 3))
    cfg = InnerConfig(network=NetworkConfig(hidden=(16,)), steps=60, curve_points=3)
    m, _ = evaluate_population(pop, space, make("digits"), cfg, [0, 1], "search", devices=jax.device_count())
    if dist.is_main_process():
        with open(out_path, "w") as f:
            json.dump({"process_count": jax.process_count(), "device_count": jax.device_count(),
                       "metrics": {k: np.asarray(v).tolist() for k, v in m.items()}}, f)


if __name__ == "__main__":
    main(sys.argv[1])
