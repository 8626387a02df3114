"""Training loop: learning, resume, kill -9 recovery, NaN guard, distribution strategies."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from srcnn_tf import chains, runs, weights
from srcnn_tf import train as train_lib
from srcnn_tf.model import ModelConfig, build_srcnn, conv_layers

from conftest import ROOT, tiny_records

SMALL = ModelConfig(preset="9-1-5", n1=16, n2=8)


@pytest.fixture(scope="module")
def record_dir(tmp_path_factory):
    return tiny_records(tmp_path_factory.mktemp("data"), 4, (90, 96), seed=10, num_shards=2,
                        stride=10, val_fraction=0.25)


def _config(record_dir, run_dir, **kw):
    base = dict(record_dir=record_dir, run_dir=str(run_dir), model=SMALL, batch_size=16,
                max_steps=20, val_every=10, checkpoint_every=10, log_every=5, progress=False,
                seed=0, deterministic=True)
    base.update(kw)
    return train_lib.TrainConfig(**base)


def _losses(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_a_few_steps_lower_the_loss(record_dir, tmp_path):
    summary = train_lib.train(_config(record_dir, tmp_path / "run", max_steps=60,
                                      learning_rate=3e-3))
    events = _losses(tmp_path / "run")
    assert events[-1]["loss"] < 0.7 * events[0]["loss"]
    assert summary["steps"] == 60 and np.isfinite(summary["best_val_psnr"])
    val = [e["val_psnr"] for e in events if "val_psnr" in e]
    assert len(val) == 6 and val[-1] > val[0] and summary["best_val_psnr"] == max(val)
    for name in ("config.json", "summary.json", "best", "checkpoints", "tb"):
        assert (tmp_path / "run" / name).exists()
    last, _, _ = runs.load_model(str(tmp_path / "run"), "latest")
    served = build_srcnn(SMALL, dtype="float32")  # no weight average: the model itself
    runs.restore_served(served, runs.RunDir(str(tmp_path / "run")).checkpoint("latest"))
    for s, w in zip(served.weights, last.weights):
        np.testing.assert_array_equal(s.numpy(), w.numpy())


def test_the_last_checkpoint_and_summary_come_before_the_batches_are_dropped(
        record_dir, tmp_path, monkeypatch):
    """Dropping tf.data's iterator can block for tens of seconds (its autotuning thread): the
    run's results are written first, with the minutes of the steps alone."""
    events = []

    class Batches:  # the distributed dataset's iterator, noting when it is dropped
        def __init__(self, it):
            self.it = it

        def __iter__(self):
            return self

        def __next__(self):
            return next(self.it)

        def __del__(self):
            events.append("dropped")

    trainer = train_lib.Trainer(_config(record_dir, tmp_path / "run"), "")
    distribute = trainer.strategy.experimental_distribute_dataset
    monkeypatch.setattr(trainer.strategy, "experimental_distribute_dataset",
                        lambda ds: Batches(iter(distribute(ds))))
    save, write_summary = trainer.save, trainer.run_dir.write_summary
    monkeypatch.setattr(trainer, "save", lambda *a: (save(*a), events.append("saved")))
    monkeypatch.setattr(trainer.run_dir, "write_summary",
                        lambda *a: (write_summary(*a), events.append("summary")))
    trainer.run()
    assert events[-3:] == ["saved", "summary", "dropped"]


def test_tensorboard_gets_the_scalars(record_dir, tmp_path):
    from tensorboard.backend.event_processing import event_accumulator

    train_lib.train(_config(record_dir, tmp_path / "run", max_steps=12, val_every=4,
                            log_every=2))
    (path,) = (tmp_path / "run" / "tb").glob("events.out.tfevents.*")
    acc = event_accumulator.EventAccumulator(str(path), size_guidance={"tensors": 0})
    acc.Reload()
    steps = {tag: [e.step for e in acc.Tensors(tag)] for tag in acc.Tags()["tensors"]}
    assert steps["val_psnr"] == [4, 8, 12] and len(steps["loss"]) == 6
    assert "val_bicubic_psnr" in steps and "minutes" in steps


def test_a_minute_budget_ends_the_cosine_at_the_budget(record_dir, tmp_path):
    """With --max_minutes the schedule decays over the minutes, not over the (far larger) step
    budget: each step's rate is the cosine at the clock just before it (between the clock at
    the previous log and at its own), ending near the floor (1 % of the base), however slowly
    a loaded machine steps."""
    budget = 0.25
    cfg = _config(record_dir, tmp_path / "run", max_steps=10**6, max_minutes=budget,
                  learning_rate=1e-3, schedule="cosine", log_every=1, val_every=10**6)
    summary = train_lib.train(cfg)
    assert summary["steps"] < 10**6
    events = _losses(str(tmp_path / "run"))
    cosine = lambda m: 1e-3 * (0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * min(m / budget, 1))))  # noqa
    assert len(events) >= 3 and events[-1]["lr"] < 1e-4, events[-1]
    steps = [e["step"] for e in events]
    assert steps == sorted(set(steps))  # the last step logged once,
    assert "val_psnr" in events[-1]  # and validated
    for before, e in zip(events, events[1:]):
        assert cosine(e["minutes"]) - 1e-8 <= e["lr"] <= cosine(before["minutes"]) + 1e-8, e


def test_resume_restores_step_and_weights(record_dir, tmp_path):
    run = tmp_path / "run"
    train_lib.train(_config(record_dir, run, max_steps=10, schedule="constant"))
    model_a, _, _ = runs.load_model(str(run), "latest")
    first = json.loads((run / "summary.json").read_text())
    # nothing left to do:
    again = train_lib.train(_config(record_dir, run, max_steps=10, schedule="constant"))
    assert again["steps"] == 10 and again == first
    json.loads((run / "summary.json").read_text(), parse_constant=_no_nan)  # still strict JSON
    for line in (run / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=_no_nan)
    model_b, _, _ = runs.load_model(str(run), "latest")
    for a, b in zip(model_a.weights, model_b.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Continuing to 20 steps in two sessions equals 20 steps in one (deterministic data; a
    # constant schedule, since the cosine's horizon is max_steps).
    train_lib.train(_config(record_dir, run, max_steps=20, schedule="constant"))
    straight = tmp_path / "straight"
    train_lib.train(_config(record_dir, straight, max_steps=20, schedule="constant"))
    model_c, _, _ = runs.load_model(str(run), "latest")
    model_d, _, _ = runs.load_model(str(straight), "latest")
    for c, d in zip(model_c.weights, model_d.weights):
        np.testing.assert_allclose(c.numpy(), d.numpy(), rtol=1e-4, atol=1e-6)
    assert [e["step"] for e in _losses(run)] == [e["step"] for e in _losses(straight)]


def _average_in(checkpoint: str) -> list[np.ndarray]:
    twin = build_srcnn(SMALL, dtype="float32")
    tf.train.Checkpoint(average=twin).read(checkpoint).expect_partial()
    return [w.numpy() for w in twin.weights]


def test_a_weight_average_is_validated_kept_and_resumed(record_dir, tmp_path):
    """With ema_decay the best checkpoint (what export and warm starts read) holds the average,
    not the last iterate; both PSNRs are logged; a resumed run's average equals a straight one's."""
    run, straight = tmp_path / "run", tmp_path / "straight"
    kw = dict(schedule="constant", learning_rate=3e-3, ema_decay=0.9, val_every=20)
    train_lib.train(_config(record_dir, run, max_steps=10, **kw))
    train_lib.train(_config(record_dir, run, max_steps=20, **kw))
    train_lib.train(_config(record_dir, straight, max_steps=20, **kw))
    (val,) = [e for e in _losses(run) if "val_psnr" in e and e["step"] == 20]
    assert np.isfinite(val["val_psnr_raw"]) and val["val_psnr"] != val["val_psnr_raw"]
    best, _, _ = runs.load_model(str(run), "best")
    last, _, _ = runs.load_model(str(run), "latest")
    average = _average_in(runs.RunDir(str(run)).checkpoint("latest"))
    for b, a, w in zip(best.weights, average, last.weights):
        np.testing.assert_array_equal(b.numpy(), a)
        assert not np.allclose(a, w.numpy())
    served = build_srcnn(SMALL, dtype="float32")  # what a time-to-quality curve reads
    runs.restore_served(served, runs.RunDir(str(run)).checkpoint("latest"))
    for s, a in zip(served.weights, average):
        np.testing.assert_array_equal(s.numpy(), a)
    for a, b in zip(average, _average_in(runs.RunDir(str(straight)).checkpoint("latest"))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    stage = chains.run_chain("run", runs.RunDir(str(run)).config(), 20, {})[-1]
    assert stage["ema_decay"] == 0.9  # an export's chain says its weights are an average
    with pytest.raises(ValueError, match="ema_decay"):
        train_lib.train(_config(record_dir, tmp_path / "bad", ema_decay=1.0))


def test_mixed_precision_validates_in_float32(record_dir, tmp_path):
    """A bfloat16 run's val_psnr and best/ are the float32 numbers an export measures, not its
    bfloat16 inference's (which differ by up to 0.01 dB on a trained model)."""
    from srcnn_tf import evaluate, predictors

    run = tmp_path / "run"
    summary = train_lib.train(_config(record_dir, run, mixed_precision="mixed_bfloat16",
                                      ema_decay=0.9, learning_rate=3e-3))
    assert json.loads((run / "config.json").read_text())["precision"] == "mixed_bfloat16"
    model, cfg, _ = runs.load_model(str(run), "best")
    (result,) = evaluate.evaluate_records(
        {"best": lambda s: predictors.keras_predictor(model, cfg)}, record_dir)
    assert result.psnr == pytest.approx(summary["best_val_psnr"], abs=1e-5)
    raw = [e["val_psnr_raw"] for e in _losses(run) if "val_psnr_raw" in e]
    last, _, _ = runs.load_model(str(run), "latest")
    (result,) = evaluate.evaluate_records(
        {"last": lambda s: predictors.keras_predictor(last, cfg)}, record_dir)
    assert result.psnr == pytest.approx(raw[-1], abs=1e-5)


def _no_nan(token: str):
    raise AssertionError(f"{token} is not JSON")


def test_warm_start_from_a_run_or_an_export_and_its_chain(record_dir, tmp_path):
    from srcnn_tf import export

    first = tmp_path / "first"
    train_lib.train(_config(record_dir, first, max_steps=10))
    source, _, _ = runs.load_model(str(first), "best")
    exported = export.export_run(str(first), str(tmp_path / "models"))
    bundled = str(tmp_path / "srcnn_x3-1.npz")  # the weights file make jax-bundle writes
    info = runs.describe_init(exported)
    weights.write_weights(bundled, [layer.get_weights() for layer in conv_layers(source)],
                          {k: v for k, v in info.items() if k != "checkpoint"})
    assert runs.describe_init(bundled)["chain"] == info["chain"]
    for init in (str(first), exported, bundled):
        run = tmp_path / f"warm_{os.path.basename(init)}"
        cfg = _config(record_dir, run, max_steps=1, learning_rate=1e-12, schedule="constant")
        train_lib.train(dataclasses.replace(cfg, init_from=init))
        warmed, _, _ = runs.load_model(str(run), "latest")
        for a, b in zip(source.weights, warmed.weights):  # one step at lr ~0: the same weights
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
        init_record = json.loads((run / "config.json").read_text())["init"]
        assert init_record["chain"][0]["model"] == "first" and init_record["chain"][0]["steps"]
    meta = json.loads(open(os.path.join(export.export_run(str(run), str(tmp_path / "models")),
                                        "metadata.json")).read())
    assert [s["model"] for s in meta["training_chain"]] == ["first", run.name]
    assert meta["training_chain"][-1]["init_from"] == "srcnn_x3/1"
    assert [s["batch_size"] for s in meta["training_chain"]] == [cfg.batch_size] * 2
    last = meta["training_chain"][-1]  # the stage's recipe travels with its weights
    assert (last["learning_rate"], last["schedule"], last["warmup_steps"]) == (
        1e-12, "constant", cfg.warmup_steps) and last["precision"] in ("float32", "mixed_bfloat16")
    newest = runs.describe_init(str(tmp_path / "models" / "srcnn_x3"))  # a model folder
    assert newest["label"] == "srcnn_x3/2" and newest["chain"] == meta["training_chain"]
    with pytest.raises(FileNotFoundError, match="neither an exported version folder"):
        runs.describe_init(str(tmp_path / "models"))
    anonymous = str(tmp_path / "anonymous.npz")  # weights that do not say what they are
    weights.write_weights(anonymous, [layer.get_weights() for layer in conv_layers(source)])
    with pytest.raises(ValueError, match="anonymous.npz does not say what its weights are"):
        runs.describe_init(anonymous)
    # What upscale/tflite resolve a user's model folder or version folder to.
    assert runs.resolve_export(str(tmp_path / "models" / "srcnn_x3"), "--model") == \
        str(tmp_path / "models" / "srcnn_x3" / "2")
    assert runs.resolve_export(str(tmp_path / "models" / "srcnn_x3" / "1"), "--model") == \
        str(tmp_path / "models" / "srcnn_x3" / "1")
    for bad, says in ((tmp_path / "models", "is neither"),
                      (run, "is a training run, not an exported version: export it first")):
        with pytest.raises(FileNotFoundError, match=f"--model_dir: {bad} {says}"):
            runs.resolve_export(str(bad), "--model_dir")
    other = dataclasses.replace(_config(record_dir, tmp_path / "bad"), init_from=str(first),
                                model=ModelConfig(preset="9-5-5", n1=16, n2=8))
    with pytest.raises(ValueError, match="init_from"):
        train_lib.train(other)


def test_a_warm_up_keeps_a_warm_start_near_its_weights(record_dir, tmp_path):
    """Adam's first update is about lr * sign(g) for every weight; a warm-up over N steps
    scales it by 1/N."""
    first = tmp_path / "first"
    train_lib.train(_config(record_dir, first, max_steps=10))
    source, _, _ = runs.load_model(str(first), "best")
    moved = {}
    for warmup in (0, 1000):
        run = tmp_path / f"warm{warmup}"
        train_lib.train(_config(record_dir, run, max_steps=1, learning_rate=1e-3,
                                schedule="constant", lr_multipliers=(1.0, 1.0, 1.0),
                                warmup_steps=warmup, init_from=str(first)))
        warmed, _, _ = runs.load_model(str(run), "latest")
        moved[warmup] = max(float(np.abs(a.numpy() - b.numpy()).max())
                            for a, b in zip(source.weights, warmed.weights))
    assert moved[0] == pytest.approx(1e-3, rel=0.05)
    assert moved[1000] == pytest.approx(1e-6, rel=0.05)
    with pytest.raises(ValueError, match="warmup_steps"):
        train_lib.train(_config(record_dir, tmp_path / "bad", warmup_steps=-1))


def test_a_warm_start_validates_its_weights_first_and_keeps_them_when_training_loses(
        record_dir, tmp_path, caplog):
    first = tmp_path / "first"
    start_psnr = train_lib.train(_config(record_dir, first, max_steps=10))["best_val_psnr"]
    source, _, _ = runs.load_model(str(first), "best")
    run = tmp_path / "ruined"  # lr 0.3: every step makes it worse
    summary = train_lib.train(_config(record_dir, run, max_steps=10, learning_rate=0.3,
                                      schedule="constant", init_from=str(first)))
    events = _losses(run)
    assert events[0]["step"] == 0 and "loss" not in events[0]
    assert events[0]["val_psnr"] == pytest.approx(start_psnr, abs=1e-6)
    assert all(e["val_psnr"] < start_psnr for e in events[1:] if "val_psnr" in e)
    assert summary["best_step"] == 0 and summary["best_val_psnr"] == events[0]["val_psnr"]
    best, _, _ = runs.load_model(str(run), "best")
    for a, b in zip(source.weights, best.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    from srcnn_tf import export

    with caplog.at_level(logging.WARNING, logger="srcnn_tf.export"):
        path = export.export_run(str(run), str(tmp_path / "models"))
    assert "ruined: no step beat the weights it started from (first)" in caplog.text
    meta = json.loads(open(os.path.join(path, "metadata.json")).read())
    assert meta["best_step"] == 0 and meta["training_chain"][-1]["steps"] == 0
    train_lib.train(_config(record_dir, run, max_steps=20, learning_rate=0.3,
                            schedule="constant", init_from=str(first)))  # resumed: no new step 0
    assert [e["step"] for e in _losses(run)].count(0) == 1


def test_a_start_from_another_factor_is_said(record_dir, tmp_path, caplog):
    first = tmp_path / "x3"
    train_lib.train(_config(record_dir, first, max_steps=1))
    x2 = tiny_records(tmp_path / "x2data", 2, (90, 96), seed=11, num_shards=1, scale=2,
                      val_fraction=0.5)
    with caplog.at_level(logging.WARNING, logger="srcnn_tf.train"):
        train_lib.train(_config(x2, tmp_path / "x2", max_steps=1, init_from=str(first)))
    assert "x3 was trained for x3; these records are x2: a start from another factor" in \
        caplog.text


def test_make_train_keeps_the_records_a_user_built(tmp_path):
    """`make train` without DATA trains on the records that are there; it builds default
    records only when none exist (dry runs of make: nothing is executed)."""
    def dry(*args):
        return subprocess.run(["make", "-n", "train", f"OUT={tmp_path}", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=60).stdout

    assert "pipelines.make_records" in dry()  # none yet: the default photographs
    (tmp_path / "x3").mkdir()
    (tmp_path / "x3" / "manifest.json").write_text("{}")
    out = dry()
    assert "make_records" not in out and "records SCALE" not in out and "pipelines.train" in out
    assert "training on the existing records" in out
    assert "--input_dir=mine" in subprocess.run(
        ["make", "-n", "--no-print-directory", "records", f"OUT={tmp_path}", "DATA=mine"],
        cwd=ROOT, capture_output=True, text=True, timeout=60).stdout


def test_nan_loss_stops_with_a_clear_message(record_dir, tmp_path):
    cfg = _config(record_dir, tmp_path / "run", optimizer="sgd", learning_rate=1e4,
                  schedule="constant", max_steps=200, checkpoint_every=1)
    with pytest.raises(FloatingPointError, match="loss became"):
        train_lib.train(cfg)
    model, _, _ = runs.load_model(str(tmp_path / "run"), "latest")
    assert all(np.isfinite(w.numpy()).all() for w in model.weights)


def test_records_that_do_not_fit_are_rejected(record_dir, tmp_path):
    with pytest.raises(ValueError, match="label_size"):
        train_lib.train(_config(record_dir, tmp_path / "r", model=ModelConfig(padding="same")))
    with pytest.raises(ValueError, match="x3"):
        train_lib.train(_config(record_dir, tmp_path / "r", scale=2))


def _train_cmd(record_dir, run_dir, *extra):
    return [sys.executable, "-m", "pipelines.train", f"--records={record_dir}",
            f"--run_dir={run_dir}", "--model=9-1-5", "--n1=16", "--n2=8", "--batch_size=16",
            "--noprogress", "--deterministic", *extra]


def test_sigkill_after_a_checkpoint_then_rerun_resumes(record_dir, tmp_path):
    run = tmp_path / "run"
    cmd = _train_cmd(record_dir, run, "--max_steps=100000", "--checkpoint_every=5",
                     "--val_every=1000", "--log_every=5")
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not tf.train.latest_checkpoint(str(run / "checkpoints")):
        time.sleep(0.2)
    time.sleep(0.5)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    last = tf.train.latest_checkpoint(str(run / "checkpoints"))
    assert last is not None
    done = int(last.rsplit("-", 1)[1])
    target = done + 7
    r = subprocess.run(_train_cmd(record_dir, run, f"--max_steps={target}", "--checkpoint_every=5",
                                  "--val_every=1000", "--log_every=5"),
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed from" in r.stderr and f"at step {done}" in r.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == target
    steps = [e["step"] for e in _losses(run)]
    assert steps == sorted(steps) and len(steps) == len(set(steps))


def test_pipeline_rejects_bad_flags(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pipelines.train", "--records=x",
                        f"--run_dir={tmp_path}", "--model=9-4-5"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode != 0 and "--model" in r.stderr
    r = subprocess.run([sys.executable, "-m", "pipelines.train", f"--records={tmp_path}/none",
                        f"--run_dir={tmp_path}/run"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode != 0 and "make records" in r.stderr
    r = subprocess.run([sys.executable, "-m", "pipelines.train", "--records=x",
                        f"--run_dir={tmp_path}/run", f"--init_from={tmp_path}/gone.npz"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and f"--init_from={tmp_path}/gone.npz" in r.stderr \
        and "a weights file (.npz)" in r.stderr


MIRRORED = """
import sys, json, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from srcnn_tf import train
from srcnn_tf.model import ModelConfig, build_srcnn
s = train.train(train.TrainConfig(record_dir=sys.argv[1], run_dir=sys.argv[2],
    model=ModelConfig(preset="9-1-5", n1=16, n2=8), batch_size=16, max_steps=6, val_every=3,
    checkpoint_every=3, progress=False, devices=("/cpu:0", "/cpu:1"),
    ema_decay=float(sys.argv[3])))
cfg = json.load(open(sys.argv[2] + "/config.json"))
print("REPLICAS", cfg["replicas"], "STEPS", s["steps"], "PSNR", s["best_val_psnr"])
"""


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_mirrored_strategy_over_two_logical_cpus(record_dir, tmp_path, ema_decay):
    r = subprocess.run([sys.executable, "-c", MIRRORED, record_dir, str(tmp_path / "run"),
                        str(ema_decay)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "REPLICAS 2 STEPS 6" in r.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_multi_worker_mirrored_two_local_workers(record_dir, tmp_path):
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for i in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster,
                                                     "task": {"type": "worker", "index": i}}))
        procs.append(subprocess.Popen(
            _train_cmd(record_dir, tmp_path / "run", "--max_steps=6", "--val_every=3",
                       "--checkpoint_every=3", "--log_every=3", "--nodeterministic"),
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=400) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["replicas"] == 2
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 6


def _flags_config(fields, *flags_given):
    """The named TrainConfig fields as `pipelines.train` resolves them from the flags."""
    code = ("import sys; from absl import flags; from pipelines import train as t; "
            "flags.FLAGS(['train', '--records=none', '--run_dir=none', *sys.argv[1:]]); "
            f"c = t.config_from_flags(); print(*(getattr(c, f) for f in {fields!r}))")
    r = subprocess.run([sys.executable, "-c", code, *flags_given], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.split()


def _budget(*flags_given):
    return _flags_config(("epochs", "max_minutes", "max_steps"), *flags_given)


def test_default_budget_is_minutes_unless_a_budget_is_given():
    assert _budget() == ["1000", "15.0", "0"]  # the measured 15-minute recipe
    assert _budget("--epochs=7") == ["7", "0.0", "0"]
    assert _budget("--max_steps=50") == ["120", "0.0", "50"]
    assert _budget("--max_minutes=3") == ["120", "3.0", "0"]
    assert _budget("--max_minutes=0") == ["120", "0.0", "0"]


def test_the_fast_recipe_augments_and_the_paper_recipe_does_not():
    """Flips/rotations are part of the measured default ("Time to quality"); the flag wins."""
    assert train_lib.make_config("r", "run").augment
    assert not train_lib.make_config("r", "run", "paper").augment
    assert not train_lib.make_config("r", "run", augment=False).augment
    assert _flags_config(("augment", "optimizer")) == ["True", "adam"]
    assert _flags_config(("augment",), "--noaugment") == ["False"]
    assert _flags_config(("augment", "optimizer"), "--recipe=paper") == ["False", "sgd"]
    assert _flags_config(("augment",), "--recipe=paper", "--augment") == ["True"]
