"""The AlgoPerf contract: the workload abstract base class and the types a submission sees.

This module mirrors AlgoPerf's ``spec.py`` (ALGOPERF.md sections 1-2) as one readable abstract class. It is
framework-neutral: a workload subclass for PyTorch or JAX fills in the model, the loss and the input pipeline;
everything about targets, budgets and evaluation bookkeeping lives here once.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol


class LossType(enum.Enum):
    SOFTMAX_CROSS_ENTROPY = 0
    SIGMOID_CROSS_ENTROPY = 1
    MEAN_SQUARED_ERROR = 2
    CTC_LOSS = 3
    MEAN_ABSOLUTE_ERROR = 4


class ForwardPassMode(enum.Enum):
    TRAIN = 0
    EVAL = 1


class ParameterType(enum.Enum):
    WEIGHT = 0
    BIAS = 1
    CONV_WEIGHT = 2
    BATCH_NORM_SCALE = 3
    BATCH_NORM_BIAS = 4
    LAYER_NORM_SCALE = 5
    LAYER_NORM_BIAS = 6
    EMBEDDING = 7
    ATTENTION_Q = 8
    ATTENTION_K = 9
    ATTENTION_V = 10
    ATTENTION_OUT = 11
    ATTENTION_QKV = 12
    ATTENTION_KV = 13
    ATTENTION_BIAS = 14


class TrainingCompleteError(Exception):
    """Raised by a submission to end training early; one final evaluation follows."""


class ShapeTuple(tuple):
    """A parameter's shape, as a leaf of ``Workload.param_shapes`` (AlgoPerf's name and ``.shape_tuple``).

    A tuple subclass, so it compares, indexes and unpacks like the shape; JAX's tree utilities treat it as
    one leaf (only plain tuples and namedtuples are tree nodes), so ``jax.tree.map(f, workload.param_shapes)``
    calls ``f`` once per parameter, as AlgoPerf's submissions expect."""

    __slots__ = ()

    def __new__(cls, shape_tuple: Any) -> ShapeTuple:
        return super().__new__(cls, (int(size) for size in shape_tuple))

    @property
    def shape_tuple(self) -> tuple[int, ...]:
        return tuple(self)

    def __repr__(self) -> str:
        return f"ShapeTuple({tuple(self)})"


# Types the submission functions exchange with the harness, under AlgoPerf's names. They are framework
# objects (an nn.Module, a Flax pytree, an optax state ...), so the contract names them, not constrains them.
Tensor = Any
Shape = tuple[int, ...] | ShapeTuple
ParameterKey = str
ParameterContainer = Any
ParameterShapeTree = Any  # shaped like the parameters, ShapeTuple leaves
ParameterTypeTree = Any  # shaped like the parameters, ParameterType leaves
ModelAuxiliaryState = Any
ModelInitState = tuple[ParameterContainer, ModelAuxiliaryState]
OptimizerState = Any
Hyperparameters = Any
RandomState = Any
Timing = int
Steps = int
Batch = dict[str, Any]
Metrics = dict[str, float]
UpdateReturn = tuple[OptimizerState, ParameterContainer, ModelAuxiliaryState]
# The submission functions' types, as AlgoPerf's spec names them (see submission.REQUIRED_FUNCTIONS).
InitOptimizerFn = Callable[..., OptimizerState]
UpdateParamsFn = Callable[..., UpdateReturn]
PrepareForEvalFn = Callable[..., UpdateReturn]
DataSelectionFn = Callable[..., Batch]


class MetricsLogger(Protocol):
    """What ``Workload.metrics_logger`` offers a submission: AlgoPerf's ``append_scalar_metrics``."""

    def append_scalar_metrics(
        self,
        metrics: Mapping[str, Any],
        global_step: int,
        preemption_count: int | None = None,
        is_eval: bool = False,
    ) -> None: ...


class Workload(abc.ABC):
    """A benchmark task: data, model, loss, metric, validation/test targets and a time budget.

    Subclasses set the class attributes below and implement the abstract methods. ``name`` is the registry
    name (``mnist``, ``ogbg_mini_gelu`` ...); ``base_name`` is the base workload a variant belongs to.
    """

    name: str = ""
    base_name: str = ""
    # The hardware profile whose budget applies (``pytest_algoperf.hardware.profiles``); "" when the budget is
    # the workload's own, as with class attributes.
    hardware_profile: str = ""
    # Where a submission logs scalars (``append_scalar_metrics``, AlgoPerf's API); the harness attaches one
    # per run, whose rows land in results.json and the run's measurements.csv. None outside a run.
    metrics_logger: MetricsLogger | None = None

    def __init__(self, data_dir: str | None = None, device: str = "cpu") -> None:
        self.data_dir = data_dir  # real data files, for workloads that read them
        self.device = device  # where arrays live: "cpu" or "cuda"

    def attach_metrics_logger(self, metrics_logger: MetricsLogger | None) -> None:
        self.metrics_logger = metrics_logger

    # ---- targets and budget ------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def target_metric_name(self) -> str:
        """The validation/test metric compared with the targets, without its split prefix."""

    @property
    def target_metric_higher_is_better(self) -> bool:
        return True

    @property
    @abc.abstractmethod
    def validation_target_value(self) -> float: ...

    @property
    @abc.abstractmethod
    def test_target_value(self) -> float: ...

    @property
    @abc.abstractmethod
    def max_allowed_runtime_sec(self) -> float:
        """The external-tuning budget of submission time, in seconds."""

    @property
    @abc.abstractmethod
    def eval_period_time_sec(self) -> float: ...

    @property
    @abc.abstractmethod
    def step_hint(self) -> int:
        """How many steps the baseline can take within the budget; schedules may be sized by it."""

    def has_reached_validation_target(self, metrics: Mapping[str, float]) -> bool:
        return self._meets(metrics[f"validation/{self.target_metric_name}"], self.validation_target_value)

    def has_reached_test_target(self, metrics: Mapping[str, float]) -> bool:
        return self._meets(metrics[f"test/{self.target_metric_name}"], self.test_target_value)

    def _meets(self, value: float, target: float) -> bool:
        # NaN compares False both ways, so a diverged run never meets a target.
        return value >= target if self.target_metric_higher_is_better else value <= target

    # ---- data --------------------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def loss_type(self) -> LossType: ...

    @property
    @abc.abstractmethod
    def num_train_examples(self) -> int: ...

    @property
    @abc.abstractmethod
    def num_eval_train_examples(self) -> int: ...

    @property
    @abc.abstractmethod
    def num_validation_examples(self) -> int: ...

    @property
    @abc.abstractmethod
    def num_test_examples(self) -> int: ...

    @property
    @abc.abstractmethod
    def eval_batch_size(self) -> int: ...

    @property
    def train_mean(self) -> Any:
        return 0.0

    @property
    def train_stddev(self) -> Any:
        return 1.0

    @abc.abstractmethod
    def build_input_queue(
        self, data_rng: RandomState, split: str, data_dir: str | None, global_batch_size: int
    ) -> Iterator[Batch]:
        """An endless iterator of training batches (or one pass over an eval split)."""

    # ---- model -------------------------------------------------------------------------------------
    @abc.abstractmethod
    def init_model_fn(self, rng: RandomState) -> tuple[ParameterContainer, ModelAuxiliaryState]: ...

    @abc.abstractmethod
    def model_fn(
        self,
        params: ParameterContainer,
        augmented_and_preprocessed_input_batch: Batch,
        model_state: ModelAuxiliaryState,
        mode: ForwardPassMode,
        rng: RandomState,
        update_batch_norm: bool,
        dropout_rate: float | None = None,
    ) -> tuple[Any, ModelAuxiliaryState]:
        """Return ``(logits, new_model_state)``."""

    @abc.abstractmethod
    def loss_fn(
        self, label_batch: Any, logits_batch: Any, mask_batch: Any = None, label_smoothing: float = 0.0
    ) -> dict[str, Any]:
        """Return ``{'summed': ..., 'n_valid_examples': ..., 'per_example': ...}``."""

    @property
    @abc.abstractmethod
    def param_shapes(self) -> ParameterShapeTree:
        """The parameters' shapes, a tree shaped like them with :class:`ShapeTuple` leaves."""

    @property
    @abc.abstractmethod
    def model_params_types(self) -> Any:
        """A tree, shaped like the parameters, of :class:`ParameterType` values."""

    def is_output_params(self, param_name: str) -> bool:
        return False

    def output_activation_fn(self, logits_batch: Any, framework: str) -> Any:
        """Logits to probabilities as ``loss_type`` implies (AlgoPerf's helper): softmax for softmax
        cross-entropy and CTC, sigmoid for sigmoid cross-entropy, identity for regression losses."""
        if framework not in ("pytorch", "jax"):
            raise ValueError(f"framework must be 'pytorch' or 'jax', not {framework!r}")
        if self.loss_type in (LossType.MEAN_SQUARED_ERROR, LossType.MEAN_ABSOLUTE_ERROR):
            return logits_batch
        sigmoid = self.loss_type == LossType.SIGMOID_CROSS_ENTROPY
        if framework == "pytorch":
            import torch

            return torch.sigmoid(logits_batch) if sigmoid else torch.softmax(logits_batch, dim=-1)
        import jax

        return jax.nn.sigmoid(logits_batch) if sigmoid else jax.nn.softmax(logits_batch, axis=-1)

    # ---- evaluation --------------------------------------------------------------------------------
    @abc.abstractmethod
    def eval_model(
        self,
        global_batch_size: int,
        params: ParameterContainer,
        model_state: ModelAuxiliaryState,
        rng: RandomState,
        data_dir: str | None,
        global_step: int,
    ) -> Metrics:
        """Evaluate the ``train`` subset, ``validation`` and ``test``; keys are ``<split>/<metric>``."""
