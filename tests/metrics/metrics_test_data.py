"""A ground-truth data set for the metric tests: uniform independent factors observed as themselves."""

import numpy as np


class IdentityData:
    """Uniform independent factors observed as themselves (float32)."""

    def __init__(self, factor_sizes):
        self.factor_sizes = list(factor_sizes)

    def sample_factors(self, num, random_state):
        return np.stack(
            [random_state.randint(size, size=num) for size in self.factor_sizes], axis=1
        )

    def sample_observations_from_factors(self, factors, random_state):
        return np.asarray(factors, dtype=np.float32)
