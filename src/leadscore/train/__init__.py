"""Train stage, one module per step: ``preprocess`` (the model-ready table), ``cv`` (time
splits), ``selection`` (in-fold filters), ``imbalance``, ``booster`` (XGBoost), ``tune``
(Optuna), ``baseline`` (logistic), ``predict`` (how a fitted model scores) and ``fit`` (the
runner, :func:`~leadscore.train.fit.train_model`, and its :class:`TrainResult`).
"""
