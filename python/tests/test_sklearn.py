"""nnbackprop.sklearn: NNBClassifier and NNBRegressor as scikit-learn estimators, held to
sklearn's own estimator checks, and learning real data sets inside Pipeline and GridSearchCV."""

import os
import pathlib
import pickle
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn", minversion="1.6", reason="nnbackprop.sklearn needs scikit-learn >= 1.6 (its tags API)")

from sklearn.base import clone  # noqa: E402
from sklearn.compose import TransformedTargetRegressor  # noqa: E402
from sklearn.datasets import load_diabetes, load_iris  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils import get_tags  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402
from sklearn.utils.validation import check_is_fitted, has_fit_parameter  # noqa: E402

import nnbackprop as nnb  # noqa: E402
from nnbackprop.sklearn import NNBClassifier, NNBRegressor  # noqa: E402


def iris_split():
    X, y = load_iris(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


# -- scikit-learn's estimator checks ----------------------------------------------------------


def expected_failed_checks(estimator):
    # None: both estimators, with their default parameters, pass every check that runs.
    # scikit-learn itself skips two per estimator (SkipTest, shown as skipped here):
    # check_array_api_input unless SCIPY_ARRAY_API=1 is set, and check_classifier_data_not_an_array
    # / check_regressor_data_not_an_array when pandas is not installed.
    # With NNBClassifier(epochs=5, hidden_layer_sizes=(16,)) (and the regressor alike) the
    # checks check_classifiers_train / check_regressors_train fail their score thresholds
    # (accuracy > 0.83, R^2 > 0.5): five epochs do not learn their data, so those are not used.
    return {}


# The default instances: the data sets of the checks are a few hundred rows, so 50 epochs of
# the default (64,) network take milliseconds and all checks of both run in about a second.
@parametrize_with_checks([NNBClassifier(), NNBRegressor()], expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_tags_and_no_sample_weight():
    assert get_tags(NNBClassifier()).estimator_type == "classifier"
    assert get_tags(NNBRegressor()).estimator_type == "regressor"
    assert get_tags(NNBRegressor()).target_tags.multi_output
    assert not get_tags(NNBClassifier()).target_tags.multi_output
    assert not get_tags(NNBClassifier()).input_tags.allow_nan
    # No sample_weight parameter, so sklearn's checks (and meta-estimators) know it is unsupported.
    assert not has_fit_parameter(NNBClassifier(), "sample_weight")
    assert not has_fit_parameter(NNBRegressor(), "sample_weight")
    X, y = iris_split()[0], iris_split()[2]
    with pytest.raises(TypeError, match="sample_weight"):
        NNBClassifier().fit(X, y, sample_weight=np.ones(len(y)))


def test_importing_nnbackprop_does_not_import_sklearn():
    python_dir = str(pathlib.Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=python_dir + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = "import sys, nnbackprop; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- learning real data, in sklearn's tools ---------------------------------------------------


def test_pipeline_learns_iris():
    X_train, X_test, y_train, y_test = iris_split()
    pipe = make_pipeline(StandardScaler(), NNBClassifier(hidden_layer_sizes=(32,), epochs=200, random_state=0))
    pipe.fit(X_train, y_train)
    assert pipe.score(X_test, y_test) >= 0.9
    clf = pipe[-1]
    assert clf.n_features_in_ == 4 and clf.n_iter_ == 200 and len(clf.loss_curve_) == 200
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] / 3
    assert clf.model_.describe().startswith("4-32:relu-3")
    proba = pipe.predict_proba(X_test)
    assert proba.shape == (len(X_test), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    # Columns are in classes_ order: their argmax is what predict says.
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], pipe.predict(X_test))


def test_grid_search_over_hidden_sizes_and_learning_rates():
    X_train, X_test, y_train, y_test = iris_split()
    grid = {"nnbclassifier__hidden_layer_sizes": [(8,), (32,)], "nnbclassifier__learning_rate": [1e-3, 1e-2]}
    search = GridSearchCV(make_pipeline(StandardScaler(), NNBClassifier(random_state=0)), grid, cv=3, n_jobs=1)
    search.fit(X_train, y_train)
    assert len(search.cv_results_["params"]) == 4
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    # 50 epochs at 1e-2 learn iris; 50 at 1e-3 (a few hundred steps) do not yet, and the search sees it.
    assert search.best_params_["nnbclassifier__learning_rate"] == 1e-2
    assert search.best_score_ > 0.9
    assert search.score(X_test, y_test) >= 0.9


def test_string_and_integer_labels_round_trip():
    X_train, X_test, y_train, y_test = iris_split()
    names = load_iris().target_names
    clf = NNBClassifier(learning_rate=1e-2, random_state=0).fit(X_train, names[y_train])
    assert clf.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    predicted = clf.predict(X_test)
    assert predicted.dtype.kind == "U" and set(predicted) <= set(names)
    assert np.mean(predicted == names[y_test]) >= 0.9
    assert clf.score(X_test, names[y_test]) >= 0.9
    # Integer labels that are not 0..k-1 come back as themselves; the order is np.unique's.
    labels = np.array([10, -3, 7])
    clf = NNBClassifier(learning_rate=1e-2, random_state=0).fit(X_train, labels[y_train])
    assert clf.classes_.tolist() == [-3, 7, 10]
    assert set(clf.predict(X_test)) <= {-3, 7, 10}
    assert clf.score(X_test, labels[y_test]) >= 0.9
    # Binary problems (two softmax outputs) too.
    keep = y_train < 2
    binary = NNBClassifier(random_state=0).fit(X_train[keep], names[y_train][keep])
    assert binary.classes_.tolist() == ["setosa", "versicolor"]
    assert binary.predict_proba(X_test).shape == (len(X_test), 2)


def test_partial_fit_improves_and_continues_the_optimizer_state():
    X_train, X_test, y_train, y_test = iris_split()
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        NNBClassifier().partial_fit(X_train, y_train)
    clf = NNBClassifier(random_state=0)
    clf.partial_fit(X_train, y_train, classes=[0, 1, 2])
    first = clf.score(X_test, y_test)
    for _ in range(4):
        clf.partial_fit(X_train, y_train)
    after_five = clf.score(X_test, y_test)
    for _ in range(45):
        clf.partial_fit(X_train, y_train)
    after_fifty = clf.score(X_test, y_test)
    assert clf.n_iter_ == 50 and len(clf.loss_curve_) == 50
    assert clf.loss_curve_[-1] < clf.loss_curve_[4] < clf.loss_curve_[0]
    assert first < after_fifty and after_five <= after_fifty
    # Fifty partial_fit calls are fit(epochs=50), bitwise: same seed, same data order, one kept
    # optimizer state.
    whole = NNBClassifier(random_state=0).fit(X_train, y_train)
    np.testing.assert_array_equal(clf.predict_proba(X_test), whole.predict_proba(X_test))
    with pytest.raises(ValueError, match="not the same as on the first call"):
        clf.partial_fit(X_train, y_train, classes=[0, 1])
    with pytest.raises(ValueError, match=r"labels \['5'\] that are not among the classes \[0, 1, 2\]"):
        clf.partial_fit(X_train[:2], [0, 5])
    # An unpickled estimator has no optimizer state (the Model does not pickle one): partial_fit
    # starts a new one and goes on learning.
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X_test), clf.predict_proba(X_test))
    restored.partial_fit(X_train, y_train)
    assert restored.n_iter_ == 51 and restored.score(X_test, y_test) >= 0.8


def test_partial_fit_after_fit_and_for_the_regressor():
    X_train, _, y_train, _ = iris_split()
    clf = NNBClassifier(epochs=3, random_state=0).fit(X_train, y_train)
    clf.partial_fit(X_train, y_train)
    assert clf.n_iter_ == 4
    # A changed training parameter takes effect: a new optimizer state with the new rate, as
    # compile() with it and train_epoch do on the Model by hand.
    model = nnb.Model.from_bytes(clf.model_.to_bytes())
    model.compile(lr=1e-2, seed=0)
    model.train_epoch(X_train, y_train)
    clf.set_params(learning_rate=1e-2).partial_fit(X_train, y_train)
    np.testing.assert_array_equal(clf.model_.predict(X_train), model.predict(X_train))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = np.stack([X @ [1.0, -2.0, 0.5], X[:, 0] - X[:, 2]], axis=1)
    reg = NNBRegressor(learning_rate=1e-2, random_state=0)
    losses = [reg.partial_fit(X, y).loss_curve_[-1] for _ in range(20)]
    assert losses[-1] < losses[0] / 5
    assert reg.predict(X).shape == (200, 2)
    with pytest.raises(ValueError, match="y has 1 targets per row, but NNBRegressor was fitted with 2"):
        reg.partial_fit(X, y[:, 0])
    with pytest.raises(ValueError, match="X has 2 features, but NNBRegressor is expecting 3 features"):
        reg.partial_fit(X[:, :2], y)


def test_regressor_learns_diabetes():
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
    # The targets (about 25..346) are not rescaled by the network; sklearn's wrapper does it.
    reg = TransformedTargetRegressor(
        NNBRegressor(hidden_layer_sizes=(16,), epochs=30, random_state=0), transformer=StandardScaler()
    )
    reg.fit(X_train, y_train)
    assert reg.score(X_test, y_test) > 0.3  # LinearRegression reaches 0.39 on this split
    predicted = reg.predict(X_test)
    assert predicted.shape == y_test.shape and predicted.dtype == np.float64
    assert reg.regressor_.model_.describe().startswith("10-16:relu-1")


def test_multi_output_regression_shapes():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4))
    Y = np.stack([X @ [1.0, 0.0, -1.0, 0.5], X[:, 1] * 2.0, X[:, 0] - X[:, 3]], axis=1)
    reg = NNBRegressor(epochs=100, learning_rate=3e-3, random_state=0).fit(X, Y)
    assert reg.n_outputs_ == 3 and reg.model_.outputs == 3
    assert reg.predict(X).shape == (300, 3)
    assert reg.score(X, Y) > 0.9
    one_column = NNBRegressor(epochs=2, random_state=0).fit(X, Y[:, :1])
    assert one_column.predict(X).shape == (300, 1)
    one_d = NNBRegressor(epochs=2, random_state=0).fit(X, Y[:, 0])
    assert one_d.predict(X).shape == (300,)
    assert one_d.predict(X[:1]).shape == (1,)
    # The predictions of a one-column y are those of the 1-D y, in the other shape.
    np.testing.assert_array_equal(one_column.predict(X)[:, 0], one_d.predict(X))


def test_random_state_reproducibility():
    X_train, X_test, y_train, _ = iris_split()

    def proba(random_state):
        return NNBClassifier(epochs=5, random_state=random_state).fit(X_train, y_train).predict_proba(X_test)

    np.testing.assert_array_equal(proba(3), proba(3))
    assert not np.array_equal(proba(3), proba(4))
    np.testing.assert_array_equal(proba(np.random.RandomState(7)), proba(np.random.RandomState(7)))
    np.random.seed(0)
    assert not np.array_equal(proba(None), proba(None))  # None: a new seed from np.random each fit
    # An int seeds both the weights (Model seed) and the data order (fit's seed option): the
    # Model trained by hand with both gives the estimator's outputs; another data order does not.
    def by_hand(data_seed):
        model = nnb.Model("4-64:relu-3", seed=3)
        model.fit(X_train, y_train, epochs=5, batch_size=32, lr=1e-3, seed=data_seed, standardize=1)
        return model.predict_proba(X_test)

    np.testing.assert_array_equal(by_hand(3), proba(3))
    assert not np.array_equal(by_hand(4), proba(3))
    with pytest.raises(ValueError):
        NNBClassifier(random_state=-1).fit(X_train, y_train)


def test_pickle_and_clone():
    X_train, X_test, y_train, _ = iris_split()
    names = load_iris().target_names
    clf = NNBClassifier(epochs=5, random_state=0).fit(X_train, names[y_train])
    reg = NNBRegressor(epochs=5, random_state=0).fit(X_train, X_train[:, :2] * 3)
    for est in (clf, reg):
        restored = pickle.loads(pickle.dumps(est))
        assert restored.model_ is not est.model_
        np.testing.assert_array_equal(restored.predict(X_test), est.predict(X_test))
        copy = clone(est)
        assert copy.get_params() == est.get_params()
        with pytest.raises(NotFittedError):
            check_is_fitted(copy)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X_test), clf.predict_proba(X_test))


def test_set_params_and_bad_parameters():
    X_train, _, y_train, _ = iris_split()
    clf = NNBClassifier().set_params(hidden_layer_sizes=(8, 4), activation="tanh", epochs=2)
    assert clf.fit(X_train, y_train).model_.describe().startswith("4-8:tanh-4:tanh-3")
    assert NNBClassifier(hidden_layer_sizes=()).fit(X_train, y_train).model_.describe().startswith("4-3")
    for params, message in [
        (dict(epochs=0), "epochs must be a positive int, got 0"),
        (dict(batch_size=2.5), "batch_size must be a positive int"),
        (dict(learning_rate=-1), "learning_rate must be a positive number"),
        (dict(weight_decay=-0.1), "weight_decay must be a number >= 0"),
        (dict(hidden_layer_sizes=(8, 0)), "each of hidden_layer_sizes must be a positive int, got 0"),
        (dict(activation="swish"), "unknown activation 'swish'; known: identity"),
        (dict(optimizer="lbfgs"), "lbfgs"),
    ]:
        with pytest.raises(ValueError, match=message):
            NNBClassifier(**params).fit(X_train, y_train)
    with pytest.raises(ValueError, match="loss must be one of 'mse', 'mae', 'huber', got 'cross_entropy'"):
        NNBRegressor(loss="cross_entropy").fit(X_train, X_train[:, 0])
    for loss in ("mae", "huber"):
        assert NNBRegressor(loss=loss, epochs=2).fit(X_train, X_train[:, 0]).model_.loss == loss


def test_bad_input():
    X_train, X_test, y_train, _ = iris_split()
    bad = X_train.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        NNBClassifier().fit(bad, y_train)
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        NNBRegressor().fit(bad, y_train.astype(float))
    with pytest.raises(ValueError, match="Input y contains NaN"):
        NNBRegressor().fit(X_train, np.where(y_train == 1, np.nan, y_train))
    with pytest.raises(NotFittedError):
        NNBClassifier().predict(X_test)
    with pytest.raises(NotFittedError):
        NNBRegressor().predict(X_test)
    clf = NNBClassifier(epochs=2).fit(X_train, y_train)
    with pytest.raises(ValueError, match="X has 3 features, but NNBClassifier is expecting 4 features as input"):
        clf.predict(X_test[:, :3])
    with pytest.raises(ValueError, match="X has 5 features, but NNBClassifier is expecting 4 features as input"):
        clf.predict_proba(np.hstack([X_test, X_test[:, :1]]))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        clf.predict(np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match="only one class: \\[2\\]"):
        NNBClassifier().fit(X_train, np.full(len(X_train), 2))
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        NNBClassifier().fit(X_train, X_train[:, 0])


def test_dataframe_feature_names():
    pd = pytest.importorskip("pandas", reason="feature_names_in_ is set from a pandas DataFrame")
    X_train, X_test, y_train, _ = iris_split()
    columns = load_iris().feature_names
    clf = NNBClassifier(epochs=2).fit(pd.DataFrame(X_train, columns=columns), y_train)
    assert clf.feature_names_in_.tolist() == columns
    assert clf.predict(pd.DataFrame(X_test, columns=columns)).shape == (len(X_test),)
