"""Fixtures shared by test modules in different folders."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def local_ray(request: pytest.FixtureRequest) -> Iterator[None]:
    """One local Ray instance (2 CPUs) per test module: starting Ray costs seconds."""
    import ray

    # The job functions live in the test module, which Ray's workers cannot import: ship them by value.
    ray.cloudpickle.register_pickle_by_value(request.module)
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    if started:
        ray.shutdown()
