"""Typed learner state and run configuration. Imports nothing of ours; everything else imports it."""
from ioa_state.config import (
                              Adaptations,
                              AdapterConfig,
                              ConfigError,
                              RunConfig,
                              StudentConfig,
                              TaskConfig,
                              TeacherConfig,
                              Thresholds,
                              load_config,
)
from ioa_state.state import ArtifactRef, Decision, Edge, Item, LearnerState, Module, Observation, Stage, Usage

__all__ = [
    "AdapterConfig",
    "Adaptations",
    "ConfigError",
    "RunConfig",
    "StudentConfig",
    "TaskConfig",
    "TeacherConfig",
    "Thresholds",
    "load_config",
    "ArtifactRef",
    "Decision",
    "Edge",
    "Item",
    "LearnerState",
    "Module",
    "Observation",
    "Stage",
    "Usage",
]
