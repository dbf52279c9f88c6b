"""librispeech_deepspeech_mini: a train step and eval per framework, PyTorch/JAX parity, padding that never
leaks into real frames, dropout as a model_fn argument, and a model that learns.

Parity copies the PyTorch weights into the Flax tree with ``torch_to_flax``, written out per layer kind (the
LSTM's four tensors per direction are only transposed: the Flax LSTM keeps torch's gate order and both of
its biases), and asserts float32 outputs within 1e-4 in eval and training mode, equal CTC losses, equal
batch-norm statistics after a step, equal parameter counts and types. The data module, WER and decoding
belong to librispeech_conformer_mini and are tested there. Small splits of 48 utterances keep JAX at one
eval shape.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pytest
from helpers import RNGS, adamw_steps_and_eval, assert_metrics_agree, assert_metrics_finite, tree_set
from test_librispeech_conformer_mini import assert_speech_batches, small_split
from test_librispeech_conformer_mini import small as small_speech_workload

from algoperf_workloads.librispeech_conformer_mini import data
from algoperf_workloads.librispeech_conformer_mini.workload import ctc_loss_reference, greedy_ctc_decode
from algoperf_workloads.librispeech_deepspeech_mini.workload import same_padding, subsampled_bins
from pytest_algoperf.spec import ForwardPassMode, ParameterType

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
jnp = jax.numpy

from algoperf_workloads.librispeech_deepspeech_mini import jax as ds_jax  # noqa: E402
from algoperf_workloads.librispeech_deepspeech_mini import pytorch as ds_torch  # noqa: E402

Models = dict[str, tuple[Any, Any]]  # per framework: (params, model_state) holding the same weights
CLASSES = {"pytorch": ds_torch.DeepspeechMiniWorkload, "jax": ds_jax.DeepspeechMiniWorkload}
# torch.nn.LSTM tensor -> (Flax leaf, transposed): weights [4H, in] become kernels [in, 4H].
LSTM_LEAVES = {
    "weight_ih_l0": ("input_kernel", True),
    "weight_hh_l0": ("recurrent_kernel", True),
    "bias_ih_l0": ("input_bias", False),
    "bias_hh_l0": ("recurrent_bias", False),
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small(workload_class: type) -> Any:
    """The workload on the 48 utterances per split of librispeech_conformer_mini's tests, so a train step
    and an eval take well under a second."""
    return small_speech_workload(workload_class, "librispeech_deepspeech_mini")


def torch_to_flax(model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(params, batch_stats)`` for Flax from a PyTorch DeepSpeech: same module paths; LSTM tensors as
    ``LSTM_LEAVES`` says; convolution kernels OIHW -> HWIO; Linear weight -> kernel (transposed);
    batch-norm buffers ``mean``/``var`` -> batch_stats; scales and biases as they are."""
    params: dict[str, Any] = {}
    stats: dict[str, Any] = {}
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        *path, leaf = name.split(".")
        value, tree = tensor.detach().cpu().numpy(), params
        if leaf in ("mean", "var"):
            tree = stats
        elif leaf in LSTM_LEAVES:
            leaf, transposed = LSTM_LEAVES[leaf]
            value = value.T if transposed else value
        elif leaf == "kernel":
            value = value.transpose(2, 3, 1, 0)
        elif leaf == "weight":
            leaf, value = "kernel", value.T
        tree_set(tree, [*path, leaf], jnp.asarray(value))
    return params, stats


def batch_of(
    split: data.SpeechSplit, stop: int, start: int = 0, frames: int = data.MAX_FRAMES
) -> dict[str, np.ndarray]:
    """Utterances ``start:stop`` of a split, their inputs cut to ``frames`` frames."""
    return {
        key: value[start:stop, :frames] if key.startswith("input") else value[start:stop]
        for key, value in split.arrays().items()
    }


def outputs(framework: str, workload: Any, params: Any, state: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Eval-mode ``(logits, logit_paddings)`` as numpy; JAX's forward is jitted (once per batch shape)."""
    batch = workload.batch_to_device(arrays)
    if framework == "pytorch":
        (logits, paddings), _ = workload.model_fn(params, batch, state, ForwardPassMode.EVAL, None, False)
        return logits.numpy(), paddings.numpy()
    return jax.device_get(jax_forward(workload, params, state, batch, ForwardPassMode.EVAL, False, 0.0)[0])


@partial(jax.jit, static_argnums=(0, 4, 5))
def jax_forward(
    workload: Any, params: Any, state: Any, batch: Any, mode: ForwardPassMode, update: bool, rate: Any
) -> Any:
    """``model_fn`` jitted: eager Flax would dispatch the LSTM scans op by op. The dropout key is fixed."""
    return workload.model_fn(params, batch, state, mode, jax.random.PRNGKey(0), update, rate)


@pytest.fixture(scope="module")
def workloads() -> dict[str, Any]:
    """One small workload per framework, shared so JAX's jitted eval compiles once."""
    return {framework: small(workload_class) for framework, workload_class in CLASSES.items()}


@pytest.fixture(scope="module")
def models(workloads: dict[str, Any]) -> Models:
    """A PyTorch model whose batch-norm statistics moved off their initial values (three training-mode
    forward passes), and the same weights and statistics as Flax variables."""
    model, _ = workloads["pytorch"].init_model_fn(RNGS["pytorch"](3))
    for start in (0, 16, 32):
        batch = workloads["pytorch"].batch_to_device(batch_of(small_split("train"), start + 16, start))
        workloads["pytorch"].model_fn(model, batch, None, ForwardPassMode.TRAIN, None, True, 0.0)
    return {"pytorch": (model, None), "jax": torch_to_flax(model)}


# ---- shapes ------------------------------------------------------------------------------------------


def test_same_padding_known_answers() -> None:
    """XLA's SAME rule: ceil(size / stride) outputs; for stride 2 an even size pads one frame at the end,
    an odd size one at each end; stride 1 pads one at each end (3x3 kernels)."""
    assert same_padding(116, 2) == (0, 1)
    assert same_padding(115, 2) == (1, 1)
    assert same_padding(58, 1) == (1, 1)
    assert same_padding(1, 2) == (1, 1)
    assert subsampled_bins() == 8  # 32 bins, frequency strides 2 and 2


@pytest.mark.parametrize("framework", ["pytorch", "jax"])
def test_output_frames_halve_the_input_frames(
    workloads: dict[str, Any], models: Models, framework: str
) -> None:
    """Time is subsampled x2 (ceil) and an output frame is padding exactly when its first input frame is:
    every utterance keeps at least one output frame per label, as CTC needs."""
    split = small_split("validation")
    logits, paddings = outputs(framework, workloads[framework], *models[framework], batch_of(split, 8))
    assert logits.shape == (8, data.MAX_FRAMES // 2, data.NUM_CLASSES)
    np.testing.assert_array_equal(paddings, split.input_paddings[:8, ::2])
    frames = (1.0 - split.input_paddings).sum(axis=1)
    np.testing.assert_array_equal((1.0 - paddings).sum(axis=1), np.ceil(frames[:8] / 2))
    assert ((1.0 - paddings).sum(axis=1) >= (1.0 - split.target_paddings[:8]).sum(axis=1)).all()


# ---- one train step and one eval per framework ------------------------------------------------------


@pytest.mark.parametrize("framework", ["pytorch", "jax"])
def test_train_steps_and_eval(workloads: dict[str, Any], framework: str) -> None:
    """Init, two AdamW steps (the first has learning rate 0: warmup starts there), then eval_model."""
    run = adamw_steps_and_eval(workloads[framework], framework)
    assert_speech_batches(run.batches, run.batch_size)
    assert_metrics_finite(run.metrics, ("ctc_loss", "wer"))
    assert run.metrics["validation/wer"] >= 0.9  # two steps from a random init recognise nothing yet
    assert run.metrics["train/ctc_loss"] != run.before["train/ctc_loss"]  # the second step changed the model


def test_pytorch_model_learns(workloads: dict[str, Any]) -> None:
    """Thirty AdamW steps on 16 fixed utterances cut their CTC loss per label fifty-fold (measured: ~500x)
    and greedy decoding then reads their transcripts back: the model can fit the task."""
    workload = workloads["pytorch"]
    model, _ = workload.init_model_fn(RNGS["pytorch"](5))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = workload.batch_to_device(batch_of(small_split("train"), 16))
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        logits, _ = workload.model_fn(model, batch, None, ForwardPassMode.TRAIN, None, True, 0.0)
        loss = workload.loss_fn(batch["targets"], logits)
        (loss["summed"] / loss["n_valid_examples"]).backward()
        optimizer.step()
        losses.append(float(loss["summed"].detach() / loss["n_valid_examples"]))
    assert losses[-1] < losses[0] / 50
    # Training mode without updates: batch statistics, as the running ones have averaged only 30 steps.
    (logits, paddings), _ = workload.model_fn(model, batch, None, ForwardPassMode.TRAIN, None, False, 0.0)
    decoded = greedy_ctc_decode(logits.detach().numpy(), paddings.numpy())
    assert [data.ids_to_text(ids) for ids in decoded] == list(small_split("train").transcripts[:16])


# ---- parity ------------------------------------------------------------------------------------------


def test_parameter_counts_shapes_and_types_agree(workloads: dict[str, Any], models: Models) -> None:
    torch_workload, jax_workload = workloads["pytorch"], workloads["jax"]
    model, _ = models["pytorch"]
    flax_params, flax_stats = models["jax"]
    jax_params, jax_stats = jax_workload.init_model_fn(jax.random.PRNGKey(0))
    assert jax.tree.map(jnp.shape, flax_params) == jax.tree.map(jnp.shape, jax_params)
    assert jax.tree.map(jnp.shape, flax_stats) == jax.tree.map(jnp.shape, jax_stats)
    assert sum(p.numel() for p in model.parameters()) == sum(x.size for x in jax.tree.leaves(jax_params))

    # Each PyTorch name, mapped as torch_to_flax maps it, carries the type of its Flax leaf.
    flax_leaf = {"weight": "kernel", **{name: leaf for name, (leaf, _) in LSTM_LEAVES.items()}}
    jax_types = {
        "/".join(str(key.key) for key in path): kind
        for path, kind in jax.tree_util.tree_leaves_with_path(jax_workload.model_params_types)
    }
    torch_types = {}
    for name, kind in torch_workload.model_params_types.items():
        *path, leaf = name.split(".")
        torch_types["/".join([*path, flax_leaf.get(leaf, leaf)])] = kind
    assert torch_types == jax_types
    kinds = list(torch_types.values())
    assert kinds.count(ParameterType.CONV_WEIGHT) == 2
    assert kinds.count(ParameterType.BATCH_NORM_SCALE) == kinds.count(ParameterType.BATCH_NORM_BIAS) == 3
    assert kinds.count(ParameterType.LAYER_NORM_SCALE) == kinds.count(ParameterType.LAYER_NORM_BIAS) == 1
    assert torch_workload.is_output_params("head.weight") and jax_workload.is_output_params("head")


def test_forward_and_loss_parity(workloads: dict[str, Any], models: Models) -> None:
    """Same weights and statistics, eval mode, float32: logits within 1e-4, the same paddings; CTC losses
    (per utterance, summed, label counts, with and without an utterance mask) agree with each other and with
    the float64 reference."""
    arrays = batch_of(small_split("validation"), 8)
    logits, paddings = outputs("pytorch", workloads["pytorch"], *models["pytorch"], arrays)
    jax_logits, jax_paddings = outputs("jax", workloads["jax"], *models["jax"], arrays)
    np.testing.assert_allclose(logits, jax_logits, atol=1e-4, rtol=0)
    np.testing.assert_array_equal(paddings, jax_paddings)

    targets = (arrays["targets"], arrays["target_paddings"])
    mask = np.zeros(8, np.float32)
    mask[::2] = 1.0
    for utterance_mask in (None, mask):
        losses = {}
        for framework, convert in (("pytorch", torch.from_numpy), ("jax", jnp.asarray)):
            losses[framework] = workloads[framework].loss_fn(
                tuple(convert(value) for value in targets),
                (convert(logits), convert(paddings)),
                None if utterance_mask is None else convert(utterance_mask),
            )
        for key in ("summed", "n_valid_examples"):
            assert float(losses["pytorch"][key]) == pytest.approx(float(losses["jax"][key]), rel=1e-5)
        per_example = losses["pytorch"]["per_example"].numpy()
        np.testing.assert_allclose(per_example, np.asarray(losses["jax"]["per_example"]), rtol=1e-5)
    assert float(losses["pytorch"]["n_valid_examples"]) == (1.0 - targets[1][::2]).sum()
    assert per_example[1] == 0.0 and per_example[0] > 0.0  # masked utterances contribute nothing
    for row in (0, 2, 4):
        real = paddings[row] == 0
        labels = arrays["targets"][row][arrays["target_paddings"][row] == 0]
        assert per_example[row] == pytest.approx(ctc_loss_reference(logits[row][real], labels), rel=1e-4)


def test_training_mode_and_batch_norm_statistics_parity(workloads: dict[str, Any], models: Models) -> None:
    """Training mode normalises by the batch's statistics over real frames and moves the running ones by
    BATCH_NORM_DECAY only with update_batch_norm; both frameworks agree on outputs and statistics."""
    torch_workload, jax_workload = workloads["pytorch"], workloads["jax"]
    model, _ = models["pytorch"]
    flax_params, flax_stats = models["jax"]
    arrays = batch_of(small_split("test"), 8)
    torch_batch, jax_batch = torch_workload.batch_to_device(arrays), jax_workload.batch_to_device(arrays)
    train = ForwardPassMode.TRAIN
    (jax_logits, _), unchanged = jax_forward(
        jax_workload, flax_params, flax_stats, jax_batch, train, False, 0.0
    )
    jax.tree.map(np.testing.assert_array_equal, unchanged, flax_stats)
    _, new_stats = jax_forward(jax_workload, flax_params, flax_stats, jax_batch, train, True, 0.0)
    frozen = torch_to_flax(model)[1]
    with torch.no_grad():
        (logits, _), _ = torch_workload.model_fn(model, torch_batch, None, train, None, False, 0.0)
        assert jax.tree.all(jax.tree.map(np.array_equal, torch_to_flax(model)[1], frozen))
        torch_workload.model_fn(model, torch_batch, None, train, None, True, 0.0)
    np.testing.assert_allclose(logits.detach().numpy(), np.asarray(jax_logits), atol=1e-4, rtol=0)
    moved = torch_to_flax(model)[1]
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), moved, new_stats)
    assert not jax.tree.all(jax.tree.map(np.array_equal, moved, frozen))
    model.load_state_dict({**model.state_dict(), **_torch_stats(frozen)})  # back, for the other tests


def _torch_stats(stats: dict[str, Any]) -> dict[str, Any]:
    """Flax batch_stats as PyTorch buffer names (module paths joined by dots)."""
    return {
        ".".join(str(key.key) for key in path): torch.from_numpy(np.array(value))
        for path, value in jax.tree_util.tree_leaves_with_path(stats)
    }


def test_eval_model_parity(workloads: dict[str, Any], models: Models) -> None:
    """The whole eval (both models, both CTC losses, the shared decoding and WER) agrees across frameworks."""
    torch_metrics = workloads["pytorch"].eval_model(500, *models["pytorch"], None, None, 0)
    jax_metrics = workloads["jax"].eval_model(500, *models["jax"], None, None, 0)
    assert_metrics_agree(torch_metrics, jax_metrics, 1e-4)


# ---- padding and dropout ---------------------------------------------------------------------------


@pytest.mark.parametrize("framework", ["pytorch", "jax"])
def test_padding_never_reaches_real_frames(workloads: dict[str, Any], models: Models, framework: str) -> None:
    """An utterance's logits at its real frames do not depend on what its padded frames hold, on how many
    there are (the backward LSTM must start at the last real frame), or on its batch-mates."""
    workload, (params, state) = workloads[framework], models[framework]
    split = small_split("test")
    frames = int((1.0 - split.input_paddings).sum(axis=1).max())
    arrays = batch_of(split, 8)
    reference, paddings = outputs(framework, workload, params, state, arrays)
    real = paddings == 0

    noisy = dict(arrays)
    noise = np.random.default_rng(0).normal(0.0, 3.0, arrays["inputs"].shape).astype(np.float32)
    noisy["inputs"] = arrays["inputs"] + noise * arrays["input_paddings"][:, :, None]
    np.testing.assert_allclose(
        outputs(framework, workload, params, state, noisy)[0][real], reference[real], atol=1e-5
    )

    cut = frames + frames % 2  # even, so the subsampled frames keep their alignment
    assert cut < data.MAX_FRAMES - 8  # the cut removes padding from every utterance
    short, short_paddings = outputs(framework, workload, params, state, batch_of(split, 8, frames=cut))
    np.testing.assert_array_equal(short_paddings, paddings[:, : cut // 2])
    np.testing.assert_allclose(
        short[real[:, : cut // 2]], reference[:, : cut // 2][real[:, : cut // 2]], atol=1e-5
    )

    others = batch_of(split, 16, 8)  # utterance 0 among seven others
    mates = {key: np.concatenate([value[:1], others[key][1:]]) for key, value in arrays.items()}
    among_others, _ = outputs(framework, workload, params, state, mates)
    np.testing.assert_allclose(among_others[0][real[0]], reference[0][real[0]], atol=1e-5)


def test_dropout_is_a_model_fn_argument(workloads: dict[str, Any], models: Models) -> None:
    """In training mode, rate 0 gives the deterministic output (in JAX also as a traced rate, as a jitted
    step would pass it) and a positive rate changes it; the frameworks agree at rate 0."""
    torch_workload, jax_workload = workloads["pytorch"], workloads["jax"]
    model, _ = models["pytorch"]
    arrays = batch_of(small_split("validation"), 8)
    torch_batch, jax_batch = torch_workload.batch_to_device(arrays), jax_workload.batch_to_device(arrays)

    def torch_forward(rate: float) -> np.ndarray:
        (logits, _), _ = torch_workload.model_fn(
            model, torch_batch, None, ForwardPassMode.TRAIN, None, False, rate
        )
        return logits.detach().numpy()

    def traced(rate: float) -> np.ndarray:  # the rate is an argument of the jitted function: traced
        logits = jax_forward(jax_workload, *models["jax"], jax_batch, ForwardPassMode.TRAIN, False, rate)
        return np.asarray(logits[0][0])

    deterministic = torch_forward(0.0)
    np.testing.assert_array_equal(torch_forward(0.0), deterministic)
    assert np.abs(torch_forward(0.5) - deterministic).max() > 1e-2
    np.testing.assert_allclose(traced(0.0), deterministic, atol=1e-4)
    assert np.abs(traced(0.5) - deterministic).max() > 1e-2
    model.eval()
