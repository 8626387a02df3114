"""The front door: what `make help` advertises reaches the command, and GPU=1/0 switches builds."""

from __future__ import annotations

import re
import subprocess

import pytest

from conftest import ROOT


def _make_n(*args: str) -> str:
    out = subprocess.run(["make", "-n", "--no-print-directory", *args], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return out.stdout


def _advertised() -> list[tuple[str, str]]:
    """(target, VARIABLE) for each VARIABLE= in the usage part of a `## make` help line."""
    pairs = []
    for line in (ROOT / "Makefile").read_text().splitlines():
        match = re.match(r"##\s+make (\S+)(.*)", line)
        if match:
            usage = re.split(r"\s{3,}", match.group(2).strip())[0]
            pairs += [(match.group(1), v) for v in dict.fromkeys(re.findall(r"\b([A-Z_]+)=",
                                                                              usage))]
    return pairs


ADVERTISED = [p for p in _advertised() if p[1] != "GPU"]  # GPU picks the install, tested below


def test_help_advertises_variables():
    assert ("psnr-time", "SET") in ADVERTISED and ("tflite", "RUN") in ADVERTISED
    assert len(ADVERTISED) > 30


REQUIRED = {"upscale": "IMAGE", "evaluate": "MODEL"}  # make stops without these


@pytest.mark.parametrize("target,variable", ADVERTISED)
def test_every_advertised_variable_reaches_the_command(target, variable):
    value = f"given_{variable.lower()}"
    needed = [f"{REQUIRED[target]}=needed"] if REQUIRED.get(target, variable) != variable else []
    assert value in _make_n(target, f"{variable}={value}", *needed), (
        f"make {target} {variable}=... is advertised by `make help` but never used")


def _venv(tmp_path, dist: str):
    """A venv that holds `dist` (tensorflow_cpu or tensorflow), installed by make."""
    venv = tmp_path / "venv"
    site = venv / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (site / f"{dist}-2.21.0.dist-info").mkdir()
    (venv / f".installed-{'cpu' if dist == 'tensorflow_cpu' else 'gpu'}").touch()
    return venv


def test_gpu_install_replaces_the_cpu_build(tmp_path):
    venv = _venv(tmp_path, "tensorflow_cpu")
    assert "Nothing to be done" in _make_n("install", f"VENV={venv}")  # up to date
    out = _make_n("install", f"VENV={venv}", "GPU=1")
    assert "pip uninstall -q -y tensorflow-cpu" in out and '".[gpu,dev]"' in out
    assert out.strip().endswith(f"touch {venv}/.installed-gpu")


def test_gpu_venv_stays_gpu_unless_told(tmp_path):
    venv = _venv(tmp_path, "tensorflow")
    assert "Nothing to be done" in _make_n("install", f"VENV={venv}")
    out = _make_n("install", f"VENV={venv}", "GPU=0")
    assert "pip uninstall -q -y tensorflow\n" in out and '".[cpu,dev]"' in out


def test_new_venv_gets_the_cpu_build(tmp_path):
    out = _make_n("install", f"VENV={tmp_path / 'fresh'}")
    assert '".[cpu,dev]"' in out and "tensorflow-cpu" not in out


def test_train_on_named_records_builds_none():
    out = _make_n("train", "RECORDS=tfrecords/mine/x3")
    assert "--records=tfrecords/mine/x3 " in out and "make_records" not in out


def test_train_refuses_records_and_data_together():
    out = subprocess.run(["make", "-n", "train", "RECORDS=tfrecords/mine/x3", "DATA=photos"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode != 0 and "RECORDS=tfrecords/mine/x3" in out.stderr


@pytest.mark.parametrize("target", ["train", "train-jax"])
def test_training_refuses_args_it_would_drop(target):
    """ARGS feed make records; with no records to build they would be lost without a word."""
    out = subprocess.run(["make", "-n", target, "RECORDS=tfrecords/mine/x3", "ARGS=--seed=1"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode != 0 and 'TRAIN_ARGS="--seed=1"' in out.stderr


def test_train_passes_args_to_the_records_it_builds():
    out = _make_n("train", "DATA=photos", "ARGS=--downscale_copies")
    assert "make_records" in out and "--downscale_copies" in out


def test_clean_keeps_what_took_hours():
    """make clean leaves records, runs and models; only make clean-runs removes the first two."""
    clean, runs_too = _make_n("clean"), _make_n("clean-runs")
    assert not re.search(r"\b(tfrecords|runs|saved_models)\b", clean)
    assert "rm -rf tfrecords runs" in runs_too and "saved_models" not in runs_too


@pytest.mark.parametrize("target,says", [
    ("upscale", "IMAGE=photo.png names the image"),
    ("evaluate", "no run runs/nope to evaluate; MODEL=saved_models/srcnn_x3 measures")])
def test_a_missing_required_variable_is_named(target, says):
    out = subprocess.run(["make", "-n", target, "RUN=runs/nope"], cwd=ROOT, capture_output=True,
                         text=True)
    assert out.returncode != 0 and says in out.stderr
