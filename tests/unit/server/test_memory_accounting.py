"""Registry memory accounting with real (unstarted) worker groups: what is committed, who may be
evicted. A model being unloaded stays committed until it is gone and is never offered as a victim
again, so two loads evicting at once never count on the same freed memory."""

from __future__ import annotations

from sagemaker_inference.server.config import ServerConfig
from sagemaker_inference.server.registry import Model, ModelRegistry, ModelState
from sagemaker_inference.server.workers.pool import ModelSpec, WorkerGroup

MIB = 1024 * 1024


def registry_with(*models: tuple[str, ModelState, int, float]) -> ModelRegistry:
    registry = ModelRegistry(ServerConfig(multi_model=True), {})
    for name, state, estimate, last_used in models:
        model = Model(name, name, WorkerGroup(ModelSpec(name, "/nowhere", "h", 1)), loaded_at_startup=False)
        model.state, model.memory_estimate, model.last_used = state, estimate, last_used
        registry.models[name] = model
    return registry


def test_a_model_being_unloaded_stays_committed_and_is_nobodys_victim():
    registry = registry_with(("old", ModelState.UNLOADING, 40 * MIB, 1.0), ("mid", ModelState.READY, 30 * MIB, 2.0),
                             ("new", ModelState.READY, 20 * MIB, 3.0), ("coming", ModelState.LOADING, 10 * MIB, 0.0))
    registry.reservations["next"] = 5 * MIB
    assert registry.memory_committed() == 105 * MIB
    assert registry.memory_loading() == 5 * MIB
    assert [m.name for m in registry.least_recently_used()] == ["mid", "new"]
    assert [m.name for m in registry.least_recently_used(keep="mid")] == ["new"]


def test_a_model_whose_name_is_reserved_is_not_evicted():
    registry = registry_with(("a", ModelState.READY, MIB, 1.0), ("b", ModelState.READY, MIB, 2.0))
    registry.reservations["a"] = 0
    assert [m.name for m in registry.least_recently_used()] == ["b"]
