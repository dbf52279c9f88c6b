"""One accelerator per pytest-xdist worker (issue 18): GPUs are found without a framework
(CUDA_VISIBLE_DEVICES, ``nvidia-smi -L``, ``/proc/driver/nvidia/gpus``), worker k gets GPU k before PyTorch or
JAX starts CUDA, more workers than GPUs is refused unless sharing is asked for, and workers x threads may not
oversubscribe the cores. On this CPU-only machine the GPUs are described: by fake ``nvidia-smi`` output and
``/proc`` folders, and by ``CUDA_VISIBLE_DEVICES`` for whole sessions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny import BASE_ARGS, TINY_SUBMISSION, assert_usage_error, conftest_source, write_submission

from pytest_algoperf.hardware.gpus import (
    DeviceAssignmentError,
    Gpu,
    check_cpu_share,
    gpu_for_worker,
    machine_gpus,
    parse_nvidia_smi,
    pin_worker_gpu,
    read_proc_gpus,
    visible_gpus,
    worker_index,
)
from pytest_algoperf.hardware.selection import HardwareChoice, assign_accelerator, session_threads
from pytest_algoperf.threads import allowed_cpus

NVIDIA_SMI = """\
GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-aaaa1111-0000-0000-0000-000000000000)
GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-bbbb2222-0000-0000-0000-000000000000)
  MIG 3g.40gb     Device  0: (UUID: MIG-cccc3333-0000-0000-0000-000000000000)
GPU 2: NVIDIA L4 (UUID: GPU-dddd4444-0000-0000-0000-000000000000)
"""


def smi(output: str | None = NVIDIA_SMI):
    return lambda: output


def test_nvidia_smi_lists_each_gpu_with_its_model_and_uuid_and_skips_mig_lines() -> None:
    gpus = parse_nvidia_smi(NVIDIA_SMI)
    assert [(g.name, g.model) for g in gpus] == [
        ("0", "NVIDIA H100 80GB HBM3"),
        ("1", "NVIDIA H100 80GB HBM3"),
        ("2", "NVIDIA L4"),
    ]
    assert gpus[2].uuid == "GPU-dddd4444-0000-0000-0000-000000000000"


def test_without_nvidia_smi_the_drivers_proc_files_are_read_in_bus_order(tmp_path: Path) -> None:
    for bus, model in (("0000:c1:00.0", "NVIDIA H200"), ("0000:41:00.0", "NVIDIA H100 PCIe")):
        (tmp_path / bus).mkdir()
        (tmp_path / bus / "information").write_text(f"Model: \t\t {model}\nGPU UUID: \t GPU-{bus[5:7]}\n")
    assert read_proc_gpus(tmp_path) == [
        Gpu("0", "NVIDIA H100 PCIe", "GPU-41"),
        Gpu("1", "NVIDIA H200", "GPU-c1"),
    ]
    assert machine_gpus(smi(None), tmp_path) == read_proc_gpus(tmp_path)
    assert machine_gpus(smi(None), tmp_path / "absent") == []  # a machine without NVIDIA GPUs


def test_cuda_visible_devices_chooses_among_them_by_index_or_uuid() -> None:
    environ = {"CUDA_VISIBLE_DEVICES": "2,GPU-bbbb2222"}
    assert visible_gpus(environ, smi()) == [
        Gpu("2", "NVIDIA L4", "GPU-dddd4444-0000-0000-0000-000000000000"),
        Gpu("GPU-bbbb2222", "NVIDIA H100 80GB HBM3", "GPU-bbbb2222-0000-0000-0000-000000000000"),
    ]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, smi()) == []  # no GPU at all
    assert [g.name for g in visible_gpus({"CUDA_VISIBLE_DEVICES": "1,-1,0"}, smi())] == [
        "1"
    ]  # CUDA stops at -1
    assert [g.name for g in visible_gpus({}, smi())] == ["0", "1", "2"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "5,7"}, smi(None)) == [Gpu("5"), Gpu("7")]  # models unknown


def test_worker_k_gets_gpu_k_as_the_only_gpu_it_sees() -> None:
    gpus = visible_gpus({}, smi())
    assert worker_index("gw2") == 2
    for worker in range(3):
        environ: dict[str, str] = {}
        gpu = pin_worker_gpu(environ, gpus, worker, workers=3, share=False)
        assert environ == {"CUDA_VISIBLE_DEVICES": str(worker), "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
        assert visible_gpus(environ, smi()) == [gpu]
    chosen = {"CUDA_VISIBLE_DEVICES": "5,7"}  # a scheduler's choice: worker 1 gets its second GPU
    pin_worker_gpu(chosen, visible_gpus(chosen, smi(None)), 1, workers=2, share=False)
    assert chosen == {"CUDA_VISIBLE_DEVICES": "7"}  # the scheduler's numbering is left as it was


def test_more_workers_than_gpus_is_refused_unless_sharing_is_asked_for() -> None:
    gpus = [Gpu("5"), Gpu("7")]
    with pytest.raises(DeviceAssignmentError, match=r"-n 3 puts 3 pytest-xdist workers on 2 GPUs"):
        gpu_for_worker(gpus, 2, workers=3, share=False)
    assert [gpu_for_worker(gpus, k, workers=3, share=True).name for k in range(3)] == ["5", "7", "5"]
    for device, workers in (("cpu", 3), ("auto", 1)):  # --algoperf-device=cpu; a serial session (JAX: all)
        choice = HardwareChoice()
        assign_accelerator(choice, device, workers, None, False, {}, gpus)
        assert (choice.gpu, choice.visible, choice.gpu_per_worker) == (None, gpus, False)


def test_workers_times_threads_may_not_exceed_the_cpus_unless_sharing_is_asked_for() -> None:
    with pytest.raises(DeviceAssignmentError, match="3 benchmark processes x 1 CPU thread would need 3 CPUs"):
        check_cpu_share(3, 1, cpus=2, share=False)
    check_cpu_share(2, 2, cpus=4, share=False)
    with pytest.raises(DeviceAssignmentError, match="Use -n 2 or fewer"):
        check_cpu_share(3, 2, cpus=4, share=False)
    check_cpu_share(3, 1, cpus=2, share=True)
    assert session_threads(None, processes=2, offered={}, cpus=8) == 4
    assert session_threads(3, processes=2, offered={}, cpus=8) == 3  # asked for: checked, not shared out


# ---- whole sessions, GPUs described by CUDA_VISIBLE_DEVICES ----------------------------------------------

SEEN_BY_WORKERS = """

import os
import pytest
from pathlib import Path


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    worker = getattr(config, "workerinput", None)
    if worker is not None:  # what this worker's frameworks will see when they start CUDA
        seen = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
        Path(__file__).with_name(f"seen_{worker['workerid']}.txt").write_text(seen)
"""


def test_with_n_2_on_two_gpus_worker_k_sees_only_gpu_k_and_each_run_records_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("xdist")
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(conftest_source() + SEEN_BY_WORKERS)
    for name in ("tinysgd", "tinysgd2"):
        write_submission(pytester.path, name=name, source=TINY_SUBMISSION)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    submissions = [f"--algoperf-submission={n}" for n in ("tinysgd", "tinysgd2")]
    result = pytester.runpytest_subprocess(*BASE_ARGS, "-n", "2", "--algoperf-workloads=tiny", *submissions)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["algoperf: one GPU per pytest-xdist worker: worker k gets the k-th of 5, 7"])
    assert (pytester.path / "seen_gw0.txt").read_text() == "5"
    assert (pytester.path / "seen_gw1.txt").read_text() == "7"
    runs = json.loads((pytester.path / "out" / "results.json").read_text())["runs"]
    assert len(runs) == 2 and {run["cuda_visible_devices"] for run in runs} <= {"5", "7"}


def test_more_workers_than_gpus_stops_the_session_before_any_worker_starts(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("xdist")
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(conftest_source())
    write_submission(pytester.path)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    args = (*BASE_ARGS, "--algoperf-submission=tinysgd", "--algoperf-workloads=tiny")
    assert_usage_error(
        pytester.runpytest(*args, "-n", "3"),
        "-n 3 puts 3 pytest-xdist workers on 2 GPUs (CUDA_VISIBLE_DEVICES=5,7)",
        "--algoperf-share-devices",
    )
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU: the CPUs are what the workers share
    too_many = allowed_cpus() + 1
    assert_usage_error(
        pytester.runpytest(*args, "-n", str(too_many)),
        f"{too_many} benchmark processes x 1 CPU thread would need {too_many} CPUs",
    )
