"""scikit-learn estimators on libnnbackprop: NNBClassifier and NNBRegressor.

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from nnbackprop.sklearn import NNBClassifier, NNBRegressor

    clf = make_pipeline(StandardScaler(), NNBClassifier(hidden_layer_sizes=(32,), epochs=100, random_state=0))
    clf.fit(X_train, y_train)                  # y: any labels np.unique sorts (ints, strings, ...)
    clf.score(X_test, y_test)                  # accuracy; predict returns the original labels

    reg = NNBRegressor(hidden_layer_sizes=(64, 64), loss="huber", random_state=0)
    reg.fit(X, y)                              # y is (rows,) -> predict gives (rows,); (rows, k) -> (rows, k)

Both follow the scikit-learn estimator API: the constructor only stores its parameters
(get_params / set_params / clone work), fit(X, y) builds and trains a fresh network, and the
fitted estimator has n_features_in_ (feature_names_in_ for a DataFrame), model_ (the
nnbackprop.Model, whose description is f"{n_features}-{h1}:{activation}-...-{n_outputs}"),
n_iter_ (epochs run) and loss_curve_ (the training loss after each epoch); the classifier also
classes_. They pickle (the Model pickles as its model file's bytes) and run in Pipeline and
GridSearchCV. random_state: an int seeds both the weight initialisation and the data order; None
draws a seed from numpy's global generator on each fit; a RandomState draws one from it.

partial_fit(X, y[, classes]) trains one epoch on (X, y) and keeps the optimizer state for the
next call (the classifier needs classes= on its first call, as SGDClassifier does). With
standardize=True the per-feature standardizer is fitted on the rows of the first call (or of
fit()) and kept from then on. The optimizer state is not pickled: after unpickling (or a
set_params that changes a training parameter) the next partial_fit starts a new one.

Sample weights are not supported (fit takes none). This module imports scikit-learn; plain
`import nnbackprop` does not.
"""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .model import Model

_REGRESSION_LOSSES = ("mse", "mae", "huber")


def _positive_int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


class _NNBEstimator(BaseEstimator):
    """What the classifier and the regressor share: parameters, seeding, training calls."""

    # -- parameters -------------------------------------------------------------------------

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral):
            sizes = (sizes,)
        try:
            sizes = tuple(sizes)
        except TypeError:
            raise ValueError(f"hidden_layer_sizes must be a sequence of positive ints, got {sizes!r}") from None
        return tuple(_positive_int(h, "each of hidden_layer_sizes") for h in sizes)

    def _check_params(self):
        """Checked in fit, not __init__ (scikit-learn's rule), with a message naming the value."""
        _positive_int(self.epochs, "epochs")
        _positive_int(self.batch_size, "batch_size")
        if not isinstance(self.learning_rate, numbers.Real) or not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be a positive number, got {self.learning_rate!r}")
        if not isinstance(self.weight_decay, numbers.Real) or not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        for name in ("activation", "optimizer"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a name (str), got {getattr(self, name)!r}")
        # Unknown activation or optimizer names are the library's to refuse: it lists the ones
        # it knows, plugin activations included (UnknownNameError is a ValueError).

    def _seed(self):
        """The int that seeds weights and data order: random_state itself when it is an int."""
        random_state = self.random_state
        if isinstance(random_state, numbers.Integral) and not isinstance(random_state, (bool, np.bool_)):
            check_random_state(random_state)  # refuses what numpy refuses (a negative seed)
            return int(random_state)
        return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))

    def _training(self):
        """The arguments (but the seed) that compile() takes, as fit() and partial_fit() use them."""
        return dict(
            loss=self._loss_name(),
            optimizer=self.optimizer,
            lr=float(self.learning_rate),
            batch_size=int(self.batch_size),
            weight_decay=float(self.weight_decay),
        )

    def _new_model(self, n_features, n_outputs, seed):
        layers = [f"{h}:{self.activation}" for h in self._hidden_sizes()]
        return Model("-".join([str(n_features), *layers, str(n_outputs)]), seed=seed)

    # -- training ---------------------------------------------------------------------------

    def _fit(self, X, targets, n_outputs, epochs):
        """A new network trained for `epochs` epochs on (X, targets)."""
        seed = self._seed()
        self.model_ = self._new_model(X.shape[1], n_outputs, seed)
        training = self._training()
        history = self.model_.fit(
            X,
            targets,
            epochs=epochs,
            verbose=bool(self.verbose),
            standardize=int(bool(self.standardize)),
            seed=seed,
            **training,
        )
        # Model.fit leaves its optimizer state in the model, for partial_fit to continue.
        self._compiled = training
        self.n_iter_ = len(history)
        self.loss_curve_ = [report["loss"] for report in history]
        return self

    def _partial_fit(self, X, targets, n_outputs):
        """One epoch on (X, targets), continuing the optimizer state of the last call."""
        if not hasattr(self, "model_"):
            # The first call is a one-epoch fit, not compile + train_epoch: only fit can fit
            # the standardizer (compile refuses standardize: it has no data), and it leaves the same state.
            return self._fit(X, targets, n_outputs, epochs=1)
        training = self._training()
        if getattr(self, "_compiled", None) != training:
            # No optimizer state (unpickled, copied) or changed training parameters: a new one.
            self.model_.compile(seed=self._seed(), **training)
            self._compiled = training
        report = self.model_.train_epoch(X, targets)
        if self.verbose:
            print(f"partial_fit: epoch {self.n_iter_ + 1}  loss {report['loss']:.4f}", flush=True)
        self.n_iter_ += 1
        self.loss_curve_.append(report["loss"])
        return self

    def _validated(self, X):
        """X checked as predict takes it: fitted, finite, n_features_in_ columns (float32)."""
        check_is_fitted(self)
        return validate_data(self, X, dtype=np.float32, reset=False)

    def __getstate__(self):
        # The Model pickles without its optimizer state, so the record of one must go too.
        state = dict(super().__getstate__())  # a copy: object.__getstate__ gives __dict__ itself
        state.pop("_compiled", None)
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False  # the defaults, said here: NaN and sparse X are refused
        tags.input_tags.sparse = False
        # Seeded training on one thread count is bitwise repeatable (see the tests).
        tags.non_deterministic = False
        return tags


class NNBClassifier(ClassifierMixin, _NNBEstimator):
    """A feed-forward network classifier trained with softmax cross-entropy.

    One output per class (two for binary problems); predict_proba is the softmax of the
    outputs, columns in classes_ order. Parameters as scikit-learn's MLPClassifier names them
    where they overlap; standardize fits a per-feature standardizer inside the model.
    """

    def __init__(
        self,
        hidden_layer_sizes=(64,),
        activation="relu",
        optimizer="adam",
        learning_rate=1e-3,
        epochs=50,
        batch_size=32,
        weight_decay=0.0,
        standardize=True,
        random_state=None,
        verbose=False,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.standardize = standardize
        self.random_state = random_state
        self.verbose = verbose

    def _loss_name(self):
        return "cross_entropy"

    def _set_classes(self, classes):
        classes = np.unique(classes)
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 classes, but the data contains only one class: "
                f"{classes.tolist()!r}"
            )
        self.classes_ = classes

    def _indices(self, y):
        """y's labels as float32 class indices into classes_; a label outside them raises."""
        try:
            index = np.clip(np.searchsorted(self.classes_, y), 0, len(self.classes_) - 1)
            known = self.classes_[index] == y
        except TypeError:  # labels numpy cannot compare with classes_ (str against int)
            known = np.zeros(len(y), dtype=bool)
        if not np.all(known):
            unknown = np.unique(np.asarray(y)[~known].astype(str))
            raise ValueError(
                f"y holds labels {unknown[:5].tolist()!r} that are not among the classes {self.classes_.tolist()!r}"
            )
        return index.astype(np.float32)

    def fit(self, X, y):
        """Trains a fresh network for `epochs` epochs on (X, y); returns self."""
        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        self._set_classes(y)
        return self._fit(X, self._indices(y), len(self.classes_), int(self.epochs))

    def partial_fit(self, X, y, classes=None):
        """One epoch on (X, y), continuing the last call's optimizer state; returns self.

        classes (all labels y can hold) is required on the first call, and if given later it
        must be the same."""
        self._check_params()
        first = not hasattr(self, "classes_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        if not first and classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(
                f"classes={np.unique(classes).tolist()!r} is not the same as on the first call to partial_fit "
                f"({self.classes_.tolist()!r})"
            )
        X, y = validate_data(self, X, y, dtype=np.float32, reset=first)
        check_classification_targets(y)
        if first:
            self._set_classes(classes)
        return self._partial_fit(X, self._indices(y), len(self.classes_))

    def predict_proba(self, X):
        """Class probabilities, (rows, n_classes) float64, columns in classes_ order."""
        X = self._validated(X)  # first: NotFittedError before model_ is looked up
        return self.model_.predict_proba(X)

    def predict(self, X):
        """The most probable class of each row, as the labels fit was given."""
        X = self._validated(X)  # first: NotFittedError before model_ is looked up
        return self.classes_[np.argmax(self.model_.predict(X), axis=1)]


class NNBRegressor(RegressorMixin, _NNBEstimator):
    """A feed-forward network regressor with linear outputs, one per target.

    loss is "mse", "mae" or "huber". A 1-D y gives one output and a 1-D predict; a 2-D y
    (rows, k) gives k outputs and predict (rows, k). The targets are not rescaled: for targets
    far from unit scale, wrap it in sklearn.compose.TransformedTargetRegressor.
    """

    def __init__(
        self,
        hidden_layer_sizes=(64,),
        activation="relu",
        optimizer="adam",
        learning_rate=1e-3,
        epochs=50,
        batch_size=32,
        weight_decay=0.0,
        standardize=True,
        random_state=None,
        verbose=False,
        loss="mse",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.standardize = standardize
        self.random_state = random_state
        self.verbose = verbose
        self.loss = loss

    def _loss_name(self):
        return self.loss

    def _check_params(self):
        super()._check_params()
        if self.loss not in _REGRESSION_LOSSES:
            raise ValueError(f"loss must be one of {', '.join(map(repr, _REGRESSION_LOSSES))}, got {self.loss!r}")

    def _targets(self, y, first):
        """y as (rows, n_outputs) float32; the first call fixes n_outputs_ and y's rank."""
        one_d = y.ndim == 1
        y = np.asarray(y, dtype=np.float32).reshape(len(y), -1)
        if first:
            self._single_target = one_d
            self.n_outputs_ = y.shape[1]
        elif y.shape[1] != self.n_outputs_:
            name = type(self).__name__
            raise ValueError(f"y has {y.shape[1]} targets per row, but {name} was fitted with {self.n_outputs_}")
        return y

    def fit(self, X, y):
        """Trains a fresh network for `epochs` epochs on (X, y); returns self."""
        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float32, multi_output=True, y_numeric=True)
        targets = self._targets(y, first=True)
        return self._fit(X, targets, self.n_outputs_, int(self.epochs))

    def partial_fit(self, X, y):
        """One epoch on (X, y), continuing the last call's optimizer state; returns self."""
        self._check_params()
        first = not hasattr(self, "model_")
        X, y = validate_data(self, X, y, dtype=np.float32, multi_output=True, y_numeric=True, reset=first)
        return self._partial_fit(X, self._targets(y, first), self.n_outputs_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # a 2-D y trains one output per column
        return tags

    def predict(self, X):
        """(rows,) for a model fitted on a 1-D y, else (rows, n_outputs_); float64, as
        scikit-learn's regressors give (the network computes in float32)."""
        X = self._validated(X)  # first: NotFittedError before model_ is looked up
        out = self.model_.predict(X).astype(np.float64)
        return out[:, 0] if self._single_target else out


__all__ = ["NNBClassifier", "NNBRegressor"]
