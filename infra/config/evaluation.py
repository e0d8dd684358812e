"""Evaluation config: `ml-platform:evaluation` — scheduled lm-evaluation-harness runs against served models.

The runner image is built from evaluation/Dockerfile by CI and pushed to the stack's ECR repository;
config takes its digest. Without one, the CronJobs exist but are suspended: nothing can run yet.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from catalog.model import Model, distinct, go_duration
from catalog.pools import duration_seconds
from infra.config.base import cron, longest_gap_seconds

TASK = re.compile(r"^[a-z0-9][a-z0-9_]*$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class ModelEvaluation(Model):
    tasks: list[str] = Field(min_length=1, description="lm-evaluation-harness tasks, e.g. gsm8k, mmlu_pro.")
    limit: int = Field(200, ge=1, description="Samples per task (a sample keeps runs cheap and comparable).")
    few_shot: int = Field(5, ge=0, le=25, description="Few-shot examples per prompt.")
    schedule: str = Field("0 2 * * *", description="Cron (UTC); default daily at 02:00.")
    time_budget: str = Field("2h", description="How long a run may take (Go duration); the job is killed at 1.5x.")
    floors: dict[str, float] = Field(default_factory=dict, description="Task -> the lowest acceptable score (0-1).")

    @field_validator("tasks")
    @classmethod
    def _tasks(cls, tasks: list[str]) -> list[str]:
        for task in tasks:
            if not TASK.match(task):
                raise ValueError(f"{task!r} is not an lm-evaluation-harness task name like gsm8k or mmlu_pro")
        return distinct(tasks, "tasks")

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return cron(value)

    @field_validator("time_budget")
    @classmethod
    def _budget(cls, value: str) -> str:
        return go_duration(value, "30m or 2h", "time budget")

    @field_validator("floors")
    @classmethod
    def _floors(cls, floors: dict[str, float]) -> dict[str, float]:
        for task, floor in floors.items():
            if not 0 <= floor <= 1:
                raise ValueError(f"the floor of {task} is {floor}: scores run from 0 to 1")
        return floors

    @property
    def interval_seconds(self) -> int:
        return longest_gap_seconds(self.schedule)

    @property
    def budget_seconds(self) -> int:
        return duration_seconds(self.time_budget)

    @model_validator(mode="after")
    def _floored_tasks(self) -> ModelEvaluation:
        unknown = sorted(set(self.floors) - set(self.tasks))
        if unknown:
            raise ValueError(f"floors name tasks this evaluation does not run: {', '.join(unknown)}")
        return self


class Evaluation(Model):
    """Model evaluation (`ml-platform:evaluation`)."""

    namespace: str = Field("ml-jobs", description="Team namespace the jobs run in.")
    image_digest: str | None = Field(None, description="sha256 digest of the runner image CI pushed to the stack's "
                                     "ECR repository; unset: the CronJobs are suspended.")
    results_expire_days: int = Field(365, ge=1, description="Days the results bucket keeps each result.")
    models: dict[str, ModelEvaluation] = Field(default_factory=dict, description="Served model name -> evaluation.")

    @field_validator("image_digest")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        if value is not None and not DIGEST.match(value):
            raise ValueError(f"{value!r} is not an image digest like sha256:<64 hex digits> (a tag can move)")
        return value
