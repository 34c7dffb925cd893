"""Tests of lle_lib.train on a tiny task: a 2-layer conv net learning to brighten 16 x 16 synthetic images.

The task and dataset live in ddp_worker.py, which the distributed test also runs under torchrun.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ddp_worker import (BATCH_PER_PROCESS, EPOCHS, TRAIN_ITEMS, VAL_ITEMS, BrightenPairs, BrightenTask, datasets,
                        tiny_net)
from lle_lib.images import read_image
from lle_lib.train import (NonFiniteLossError, Task, TrainConfig, Trainer, WeightAverage, linear_decay,
                           recalibrate_batchnorm, update_ema)


pytestmark = pytest.mark.usefixtures("one_thread")   # conftest.py


def config(**overrides) -> TrainConfig:
    """These tests mean the CPU (their tensors, exact comparisons, float32): never "auto", which picks CUDA and
    AMP when there is a GPU."""
    settings = dict(epochs=2, batch_size=4, progress=False, device="cpu")
    settings.update(overrides)
    return TrainConfig(**settings)


def parameters(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def without_seconds(history: list[dict]) -> list[dict]:
    return [{key: value for key, value in record.items() if key != "seconds"} for record in history]


def test_loss_falls():
    trainer = Trainer(BrightenTask(), BrightenPairs(32), config(epochs=5))
    history = trainer.fit()
    losses = [record["train/loss"] for record in history]
    assert [record["epoch"] for record in history] == [1, 2, 3, 4, 5]
    assert all(later < earlier for earlier, later in zip(losses, losses[1:]))
    assert losses[-1] < 0.6 * losses[0]
    assert len(trainer.step_history) == 5 * 32 // 4
    assert [entry["step"] for entry in trainer.step_history] == list(range(1, 41))


def test_resume_repeats_the_uninterrupted_run_exactly(tmp_path):
    """2 epochs, a new Trainer resuming from last.pt to 4 epochs == 4 epochs in one go: bit for bit.

    The dataset draws random flips, scales and noise from PyTorch's, Python's and NumPy's global generators, and
    a LambdaLR schedule changes the learning rate every epoch, so all of these must be restored or reseeded.
    """
    def run(out_dir, epochs):
        trainer = Trainer(BrightenTask(schedule=True), BrightenPairs(20, augment=True),
                          config(epochs=epochs, batch_size=3, out_dir=out_dir, monitor="val/psnr"),
                          val_dataset=BrightenPairs(5, seed=1))
        trainer.fit(resume=True)
        return trainer

    straight = run(tmp_path / "straight", 4)
    run(tmp_path / "resumed", 2)
    resumed = run(tmp_path / "resumed", 4)

    assert resumed.epoch == straight.epoch == 4
    for name, tensor in straight.unwrap("net").state_dict().items():
        assert torch.equal(tensor, resumed.unwrap("net").state_dict()[name]), name
    assert without_seconds(resumed.history) == without_seconds(straight.history)
    assert resumed.step_history == straight.step_history
    assert resumed.optimizers["net"].param_groups[0]["lr"] == pytest.approx(1e-2 / 5)
    assert resumed.best == straight.best


class RecordOrder(BrightenTask):
    def __init__(self):
        super().__init__()
        self.names = []

    def training_step(self, batch, trainer):
        self.names.extend(batch["name"])
        return super().training_step(batch, trainer)


def item_order(seed: int, epochs: int = 2, shuffle: bool = True) -> list[list[str]]:
    task = RecordOrder()
    Trainer(task, BrightenPairs(10), config(epochs=epochs, seed=seed, shuffle=shuffle)).fit()
    return [task.names[i:i + 10] for i in range(0, len(task.names), 10)]


def test_each_epoch_order_depends_only_on_seed_and_epoch():
    first, second = item_order(seed=0)
    assert sorted(first) == sorted(second) == [f"{i:03d}" for i in range(10)]
    assert first != second  # reshuffled every epoch
    assert item_order(seed=0) == [first, second]
    assert item_order(seed=1) != [first, second]
    assert item_order(seed=0, shuffle=False) == [sorted(first)] * 2


def test_resume_with_nothing_left_to_do_trains_nothing(tmp_path):
    first = Trainer(BrightenTask(), BrightenPairs(8), config(out_dir=tmp_path))
    first.fit()
    again = Trainer(BrightenTask(), BrightenPairs(8), config(out_dir=tmp_path))
    history = again.fit()
    assert without_seconds(history) == without_seconds(first.history)
    for name, tensor in first.unwrap("net").state_dict().items():
        assert torch.equal(tensor, again.unwrap("net").state_dict()[name])


class TwoNetsStepOne(Task):
    """Two modules with an optimizer each; the loss involves both, but only ``a`` is stepped."""

    def modules(self):
        return {"a": tiny_net(), "b": tiny_net()}

    def configure_optimizers(self, modules):
        return {name: torch.optim.Adam(module.parameters(), lr=1e-2) for name, module in modules.items()}

    def training_step(self, batch, trainer):
        output = trainer.modules["b"](trainer.modules["a"](batch["low"]))
        loss = F.l1_loss(output, batch["high"])
        trainer.optimize(loss, "a")
        return {"loss": loss}


def test_only_the_optimizer_that_is_stepped_changes_its_module():
    trainer = Trainer(TwoNetsStepOne(), BrightenPairs(8), config(epochs=1))
    before = {name: parameters(trainer.unwrap(name)) for name in ("a", "b")}
    trainer.fit()
    after = {name: parameters(trainer.unwrap(name)) for name in ("a", "b")}
    assert all(torch.equal(before["b"][key], after["b"][key]) for key in before["b"])
    assert all(not torch.equal(before["a"][key], after["a"][key]) for key in before["a"])


def test_unknown_optimizer_name_is_a_clear_error():
    class Typo(BrightenTask):
        def training_step(self, batch, trainer):
            trainer.optimize(trainer.modules["net"](batch["low"]).mean(), "nett")

    with pytest.raises(KeyError, match="nett.*'net'"):
        Trainer(Typo(), BrightenPairs(4), config(epochs=1)).fit()


class OneBigStep(Task):
    """One SGD step (learning rate 1) on a loss with a gradient far larger than 0.1."""

    def modules(self):
        return {"net": tiny_net()}

    def configure_optimizers(self, modules):
        return {"net": torch.optim.SGD(modules["net"].parameters(), lr=1.0)}

    def training_step(self, batch, trainer):
        loss = 1000 * F.l1_loss(trainer.modules["net"](batch["low"]), batch["high"])
        trainer.optimize(loss, "net")
        return {"loss": loss}


@pytest.mark.parametrize("clip", [None, 0.1])
def test_grad_clip_bounds_the_update(clip):
    # amp=False: under float16 the loss of 1000 x L1 overflows, the gradient scaler skips the step and nothing
    # moves; this test is about clipping a float32 gradient, not about mixed precision
    trainer = Trainer(OneBigStep(), BrightenPairs(4), config(epochs=1, batch_size=4, grad_clip=clip, amp=False))
    before = torch.cat([p.detach().flatten().clone() for p in trainer.unwrap("net").parameters()])
    trainer.fit()
    after = torch.cat([p.detach().flatten() for p in trainer.unwrap("net").parameters()])
    change = float((after - before).norm())
    if clip is None:
        assert change > 10  # the unclipped update is huge: clipping below has work to do
    else:
        assert change == pytest.approx(0.1, rel=1e-4)  # lr 1 x a gradient of norm exactly 0.1


class NaNAtEpoch3(BrightenTask):
    def training_step(self, batch, trainer):
        output = trainer.modules["net"](batch["low"])
        loss = F.l1_loss(output, batch["high"])
        if trainer.epoch == 3:
            loss = loss * float("nan")
        trainer.optimize(loss, "net")
        return {"loss": loss}


def test_nan_loss_raises_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = Trainer(NaNAtEpoch3(), BrightenPairs(8), config(epochs=4, out_dir=tmp_path))
    with pytest.raises(NonFiniteLossError, match=r"epoch 3, step 5: the loss for optimizer 'net' is nan"):
        trainer.fit()
    checkpoint = torch.load(tmp_path / "last.pt", weights_only=True)  # plain containers only
    assert checkpoint["epoch"] == 2 and checkpoint["global_step"] == 4
    assert [record["epoch"] for record in checkpoint["history"]] == [1, 2]
    assert all(torch.isfinite(tensor).all() for tensor in checkpoint["modules"]["net"].values())
    assert sorted(path.name for path in tmp_path.iterdir()) == ["last.pt"]  # no temporary file left behind


def test_non_finite_logged_value_is_named():
    class InfiniteLog(BrightenTask):
        def training_step(self, batch, trainer):
            return {**super().training_step(batch, trainer), "ratio": float("inf")}

    with pytest.raises(NonFiniteLossError, match=r"epoch 1, step 1: non-finite values \{'ratio': inf\}"):
        Trainer(InfiniteLog(), BrightenPairs(4), config(epochs=1)).fit()


class ConstantImages(torch.utils.data.Dataset):
    """Item ``i`` is an image filled with ``i / 10``."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        image = torch.full((3, 16, 16), index / 10)
        return {"low": image, "high": image}


class MeanBrightness(BrightenTask):
    def validation_step(self, batch, trainer):
        per_item = batch["low"].mean(dim=(1, 2, 3))
        return {"batch_mean": per_item.mean(), "per_item": per_item, "count": len(per_item)}


def test_validation_means_are_exact_over_uneven_batches():
    # 7 items in batches of 3, 3 and 1. The mean of 0.0, 0.1, ..., 0.6 is 0.3; the mean of the batch means would
    # be (0.1 + 0.4 + 0.6) / 3 = 0.367.
    trainer = Trainer(MeanBrightness(), BrightenPairs(6), config(epochs=1, batch_size=3),
                      val_dataset=ConstantImages(7))
    (record,) = trainer.fit()
    assert record["val/batch_mean"] == pytest.approx(0.3, abs=1e-6)
    assert record["val/per_item"] == pytest.approx(0.3, abs=1e-6)
    assert record["val/count"] == pytest.approx((3 * 3 + 3 * 3 + 1 * 1) / 7)  # batch values weighted by size


class ScriptedScore(BrightenTask):
    """A validation score that follows a script by epoch: 1, 3, 2, 5, 4."""

    SCRIPT = [1.0, 3.0, 2.0, 5.0, 4.0]

    def validation_step(self, batch, trainer):
        return {"score": self.SCRIPT[trainer.epoch - 1]}


def best_epoch(out_dir: Path) -> int:
    return torch.load(out_dir / "best.pt", weights_only=True)["epoch"]


def test_best_checkpoint_follows_the_monitor_across_resume(tmp_path):
    def fit(epochs, mode="max", out_dir=tmp_path / "max"):
        trainer = Trainer(ScriptedScore(), BrightenPairs(4), config(epochs=epochs, out_dir=out_dir,
                          monitor="val/score", monitor_mode=mode), val_dataset=BrightenPairs(2))
        trainer.fit()
        return trainer

    assert fit(2).best == 3.0 and best_epoch(tmp_path / "max") == 2
    assert fit(3).best == 3.0 and best_epoch(tmp_path / "max") == 2  # epoch 3 (score 2) is worse than epoch 2
    assert fit(5).best == 5.0 and best_epoch(tmp_path / "max") == 4
    assert fit(5, mode="min", out_dir=tmp_path / "min").best == 1.0 and best_epoch(tmp_path / "min") == 1


def test_best_checkpoint_only_on_validation_epochs(tmp_path):
    trainer = Trainer(ScriptedScore(), BrightenPairs(4),
                      config(epochs=5, val_every=2, out_dir=tmp_path, monitor="val/score"),
                      val_dataset=BrightenPairs(2))
    history = trainer.fit()
    assert ["val/score" in record for record in history] == [False, True, False, True, True]  # and the last
    assert best_epoch(tmp_path) == 4


def test_epochs_before_select_from_are_validated_but_never_become_best(tmp_path):
    # scores 1, 3, 2, 5, 4: from epoch 3 on, the best is 5 at epoch 4 ...
    trainer = Trainer(ScriptedScore(), BrightenPairs(4),
                      config(epochs=5, out_dir=tmp_path / "a", monitor="val/score", select_from=3),
                      val_dataset=BrightenPairs(2))
    history = trainer.fit()
    assert [record["val/score"] for record in history] == ScriptedScore.SCRIPT
    assert trainer.best == 5.0 and best_epoch(tmp_path / "a") == 4
    # ... and with only epochs 1-3 run, epoch 3 (score 2) is chosen over epoch 2 (score 3)
    trainer = Trainer(ScriptedScore(), BrightenPairs(4),
                      config(epochs=3, out_dir=tmp_path / "b", monitor="val/score", select_from=3),
                      val_dataset=BrightenPairs(2))
    trainer.fit()
    assert trainer.best == 2.0 and best_epoch(tmp_path / "b") == 3


@pytest.mark.parametrize("select_from", [0, 6])
def test_select_from_must_be_an_epoch_of_the_run(select_from):
    with pytest.raises(ValueError, match="select_from"):
        config(epochs=5, select_from=select_from)


def test_a_misspelt_monitor_is_an_error():
    trainer = Trainer(BrightenTask(), BrightenPairs(4), config(epochs=1, monitor="val/psnrr"),
                      val_dataset=BrightenPairs(2))
    with pytest.raises(KeyError, match="val/psnrr.*val/psnr"):
        trainer.fit()


def test_samples_kept_in_memory_and_saved_as_png_grids(tmp_path):
    trainer = Trainer(BrightenTask(), BrightenPairs(8), config(epochs=2, sample_every=1, out_dir=tmp_path),
                      val_dataset=BrightenPairs(3, seed=1))
    trainer.fit()
    assert sorted(trainer.sample_images) == [1, 2]
    assert trainer.sample_images[2]["output"].shape == (3, 3, 16, 16)  # the 3 validation items
    grid = read_image(tmp_path / "samples" / "epoch002_output.png")
    assert grid.shape == (16 + 2 * 2, 3 * 16 + 4 * 2, 3)  # make_grid: one row, 2-pixel padding
    expected = trainer.sample_images[2]["output"][1].permute(1, 2, 0).numpy()
    assert abs(grid[2:18, 20:36] - expected).max() <= 0.5 / 255 + 1e-6  # the second image, to 8-bit rounding


def test_out_dir_none_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trainer = Trainer(BrightenTask(), BrightenPairs(8), config(epochs=2, sample_every=1, monitor="val/psnr"),
                      val_dataset=BrightenPairs(3, seed=1))
    trainer.fit()
    assert list(tmp_path.iterdir()) == []
    assert trainer.best is not None and 1 in trainer.sample_images


def test_amp_true_without_cuda_is_refused():
    # device="cpu" asked for explicitly: refused on a machine with a GPU too
    with pytest.raises(ValueError, match="amp=True needs a CUDA device"):
        Trainer(BrightenTask(), BrightenPairs(4), config(amp=True, device="cpu"))


@pytest.mark.distributed
@pytest.mark.parametrize("batches", [False, True], ids=["item_by_item", "paired_batches"])
def test_ddp_on_two_cpu_processes_equals_one_process_with_double_batch(tmp_path, torchrun, batches):
    """torchrun, 2 processes x batch 4 (Gloo) == 1 process x batch 8: the same items per step, the same gradients.

    DistributedSampler deals out one shuffled permutation, so the two processes' batches of step k together are
    the single process's batch k; the L1 loss is a mean over equal-sized halves, so DDP's average of the two
    gradients equals the single process's gradient, up to float rounding.
    """
    torchrun("ddp_worker.py", tmp_path, *(["batches"] if batches else []), timeout=120)

    reports = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [report["world_size"] for report in reports] == [2, 2]
    assert [report["wrapper"] for report in reports] == ["DistributedDataParallel"] * 2
    weights = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)]
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), name
    assert (tmp_path / "run_rank0" / "last.pt").is_file()
    assert not (tmp_path / "run_rank1").exists()

    double_batch = config(epochs=EPOCHS, batch_size=2 * BATCH_PER_PROCESS)
    train, validation = datasets(batches)
    single = Trainer(BrightenTask(), train, double_batch, val_dataset=validation)
    history = single.fit()
    for name, tensor in single.unwrap("net").state_dict().items():
        torch.testing.assert_close(weights[0][name], tensor, atol=1e-5, rtol=0)
    for distributed, alone in zip(reports[0]["history"], history):
        for key in ("train/loss", "val/l1", "val/psnr"):  # validation split 4 + 3 over the processes, still exact
            assert distributed[key] == pytest.approx(alone[key], abs=1e-5), key


def test_linear_decay_is_constant_then_falls_by_equal_steps():
    # 6 epochs, the last 3 decaying: factors 1, 1, 1, then 1 - 1/4, 1 - 2/4, 1 - 3/4 (never reaching 0 while training)
    factor = linear_decay(6, 3)
    assert [factor(finished) for finished in range(6)] == [1.0, 1.0, 1.0, 0.75, 0.5, 0.25]
    assert [linear_decay(2, 0)(finished) for finished in range(2)] == [1.0, 1.0]
    with pytest.raises(ValueError, match="decay_epochs"):
        linear_decay(2, 3)


def test_recalibrated_batchnorm_holds_the_exact_statistics_of_the_inputs():
    net = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False), nn.BatchNorm2d(2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([1.0, -2.0]).view(2, 1, 1, 1))
        net[1].running_mean.fill_(5.0)                   # stale statistics from "earlier weights"
        net[1].running_var.fill_(9.0)
    weights = parameters(net)
    generator = torch.Generator().manual_seed(0)
    batches = [torch.rand(4, 1, 3, 3, generator=generator) + shift for shift in (0.0, 1.0, 2.0)]
    net.eval()
    assert recalibrate_batchnorm(net, batches) == 3
    # channel 0 sees x, channel 1 sees -2x: the mean of the three batch means, and of their unbiased variances
    mean = torch.stack([batch.mean() for batch in batches]).mean()
    variance = torch.stack([batch.var() for batch in batches]).mean()
    assert torch.allclose(net[1].running_mean, torch.stack([mean, -2 * mean]), atol=1e-6)
    assert torch.allclose(net[1].running_var, torch.stack([variance, 4 * variance]), atol=1e-6)
    assert not net.training and net[1].momentum == 0.1            # mode and momentum restored
    after = parameters(net)
    assert all(torch.equal(after[name], weights[name]) for name in ("0.weight", "1.weight", "1.bias"))


def test_recalibrating_needs_inputs_and_skips_networks_without_batchnorm():
    with pytest.raises(ValueError, match="at least one"):
        recalibrate_batchnorm(nn.BatchNorm2d(2), [])
    assert recalibrate_batchnorm(nn.Conv2d(1, 1, 1), [torch.zeros(1, 1, 2, 2)]) == 0


def test_a_moving_average_step_mixes_the_weights_by_the_decay_and_copies_the_buffers():
    average, current = nn.BatchNorm1d(2), nn.BatchNorm1d(2)
    with torch.no_grad():
        average.weight.copy_(torch.tensor([1.0, 2.0])); average.bias.copy_(torch.tensor([0.0, 0.0]))
        current.weight.copy_(torch.tensor([3.0, -2.0])); current.bias.copy_(torch.tensor([10.0, 1.0]))
        current.running_mean.copy_(torch.tensor([7.0, 8.0]))
    update_ema(average, current, decay=0.75)
    # 0.75 * kept + 0.25 * current
    assert torch.allclose(average.weight, torch.tensor([1.5, 1.0]))
    assert torch.allclose(average.bias, torch.tensor([2.5, 0.25]))
    assert torch.equal(average.running_mean, torch.tensor([7.0, 8.0]))          # buffers copied, not averaged
    assert torch.equal(current.weight, torch.tensor([3.0, -2.0]))               # the model itself is untouched
    update_ema(average, current, decay=0.0)                                     # decay 0: a plain copy
    assert torch.equal(average.weight, current.weight) and torch.equal(average.bias, current.bias)
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="decay"):
            update_ema(average, current, decay=bad)
    with pytest.raises(ValueError, match="same architecture"):
        update_ema(average, nn.Linear(2, 2), decay=0.5)                          # another architecture


class AveragedBrightenTask(BrightenTask):
    """The tiny task with a weight average of its net, held as a task of the library holds one."""

    def __init__(self, decay):
        super().__init__()
        self.average = WeightAverage("net", decay)

    def modules(self):
        net = tiny_net()
        return {"net": net, **self.average.modules(net)}

    def training_step(self, batch, trainer):
        logged = super().training_step(batch, trainer)
        self.average.follow(trainer)
        return logged


def test_a_weight_average_is_a_frozen_copy_that_follows_the_net_by_the_decay():
    recorded = {}

    class Recording(AveragedBrightenTask):
        def training_step(self, batch, trainer):
            recorded["before"] = parameters(trainer.unwrap("net"))
            logged = super().training_step(batch, trainer)
            recorded["after"] = parameters(trainer.unwrap("net"))
            return logged

    trainer = Trainer(Recording(decay=0.75), BrightenPairs(4), config(epochs=1))   # one step
    average = trainer.unwrap("net_ema")
    assert set(trainer.modules) == {"net", "net_ema"} and set(trainer.optimizers) == {"net"}
    assert not any(parameter.requires_grad for parameter in average.parameters())
    start = parameters(average)
    assert all(torch.equal(start[name], value) for name, value in parameters(trainer.unwrap("net")).items())
    trainer.fit()
    before, after = recorded["before"], recorded["after"]
    assert any(not torch.equal(before[name], after[name]) for name in before)          # the net moved
    for name, value in average.state_dict().items():            # theta_avg <- 0.75 theta_avg + 0.25 theta
        assert torch.allclose(value, 0.75 * before[name] + 0.25 * after[name], atol=1e-7), name
    assert WeightAverage("net", 0.75).scored() == {"": "net_ema", "_raw": "net"}
    assert WeightAverage("net", 0.75).evaluated == "net_ema"


def test_without_a_decay_a_weight_average_adds_nothing():
    average = WeightAverage("net", None)
    assert average.modules(tiny_net()) == {} and average.scored() == {"": "net"} and average.evaluated == "net"
    trainer = Trainer(AveragedBrightenTask(decay=None), BrightenPairs(4), config(epochs=1))
    trainer.fit()                                                  # follow() has no average to move
    assert set(trainer.modules) == {"net"}
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        WeightAverage("net", 1.0)
