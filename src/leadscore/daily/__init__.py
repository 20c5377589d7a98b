"""Daily operation: the job a scheduler runs each day, the fallback model, the call list, shadow
mode and the simulation over the synthetic future.

``run.run_daily`` is a sequence of named steps (merge -> score -> export -> record -> hooks);
``simulate`` calls the same stage function the ``daily`` command calls, once per future day.
Nothing is imported here, so registering the CLI commands costs no start-up time.
"""
