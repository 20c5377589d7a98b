"""Train stage: the logistic-regression baseline the model must beat.

Reads :class:`~leadscore.train.preprocess.TrainingData`; returns fitted scikit-learn pipelines
and out-of-fold decision values on the same folds and features as XGBoost.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from leadscore.train.preprocess import TrainingData

MISSING_LEVEL = "__missing__"


def _as_text(x: pd.DataFrame) -> pd.DataFrame:
    return x.astype(object).where(x.notna(), MISSING_LEVEL).astype(str)


def make_baseline(features: list[str], types: Mapping[str, str], seed: int) -> Pipeline:
    """Logistic regression baseline: impute, one-hot, standardize, balanced class weights."""
    numeric = [f for f in features if types[f] != "category"]
    categorical = [f for f in features if types[f] == "category"]
    num = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", add_indicator=True)),
            ("scale", StandardScaler()),
        ]
    )
    cat = Pipeline(
        [
            ("text", FunctionTransformer(_as_text)),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    prep = ColumnTransformer([("num", num, numeric), ("cat", cat, categorical)])
    clf = LogisticRegression(class_weight="balanced", max_iter=2000, random_state=seed)
    return Pipeline([("prep", prep), ("clf", clf)])


def fit_baseline(x: pd.DataFrame, y: np.ndarray, data: TrainingData) -> Pipeline:
    """Fit the logistic baseline on one training set."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_baseline(list(x.columns), data.types, data.seed).fit(x, y)


def cross_validate_baseline(data: TrainingData, selected: list[list[str]]) -> list[np.ndarray]:
    """The baseline's out-of-fold decision values, one array per fold."""
    margins = []
    for (tr, te), feats in zip(data.folds, selected, strict=True):
        x_tr, x_te = data.x.iloc[tr][feats], data.x.iloc[te][feats]
        data.record("logistic", x_tr, x_te)
        model = fit_baseline(x_tr, data.y[tr], data)
        margins.append(np.asarray(model.decision_function(x_te)))
    return margins
