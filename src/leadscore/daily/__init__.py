"""Daily operation: the job a scheduler runs each day, the fallback model, the call list, shadow
mode and the simulation over the synthetic future.

``run_daily`` is a sequence of named steps (merge -> score -> export -> record -> hooks);
``simulate`` calls the same stage function the ``daily`` command calls, once per future day.
"""

from leadscore.daily.fallback import FallbackError, FallbackModel, load_fallback, train_fallback
from leadscore.daily.run import DailyContext, DailyError, DailyRun, Hook, run_daily
from leadscore.daily.scoring import Models, ScoreOutcome

__all__ = [
    "DailyContext",
    "DailyError",
    "DailyRun",
    "FallbackError",
    "FallbackModel",
    "Hook",
    "Models",
    "ScoreOutcome",
    "load_fallback",
    "run_daily",
    "train_fallback",
]
