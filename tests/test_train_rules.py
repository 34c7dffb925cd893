"""The trainer's validation-driven rules, on the tiny task of ddp_worker.py with scripted validation values:
ReduceLROnPlateau (``plateau_patience``), early stopping (``early_stopping``), their exact resume, a schedule
added to a run that had none, and every registered recipe taking both rules from the run."""
from __future__ import annotations

import pytest
import torch

from ddp_worker import BrightenPairs, BrightenTask
from lle_lib import methods
from lle_lib.config import RunContext
from lle_lib.train import TrainConfig, Trainer


pytestmark = pytest.mark.usefixtures("one_thread")   # conftest.py


class Scripted(BrightenTask):
    """Trains as BrightenTask, but validation reports ``values[epoch - 1]`` as its PSNR."""

    def __init__(self, values, **kwargs):
        super().__init__(**kwargs)
        self.values = values

    def validation_step(self, batch, trainer):
        return {"psnr": torch.full((len(batch["low"]),), float(self.values[trainer.epoch - 1]))}


def scripted_trainer(values, out_dir=None, **settings) -> Trainer:
    config = TrainConfig(**{"epochs": len(values), "batch_size": 4, "progress": False, "device": "cpu",
                            "monitor": "val/psnr", "out_dir": out_dir, **settings})
    return Trainer(Scripted(values), BrightenPairs(8), config, val_dataset=BrightenPairs(2, seed=1))


def test_plateau_halves_the_rate_after_more_than_patience_flat_validations():
    values = [10, 11, 11, 11, 12, 12, 12, 12]
    trainer = scripted_trainer(values, plateau_patience=1)
    history = trainer.fit()
    # by hand: epochs 3 and 4 fail to beat 11 (2 > patience 1) -> halve; 5 improves; 6, 7 fail -> halve again
    assert [record["lr_net"] for record in history] == [1e-2] * 3 + [5e-3] * 3 + [2.5e-3] * 2
    assert trainer.optimizers["net"].param_groups[0]["lr"] == pytest.approx(2.5e-3)


def test_plateau_in_min_mode_follows_a_falling_value():
    trainer = scripted_trainer([5, 4, 4, 4], plateau_patience=1, monitor_mode="min", plateau_factor=0.1)
    assert [record["lr_net"] for record in trainer.fit()] == pytest.approx([1e-2, 1e-2, 1e-2, 1e-3])


def test_without_rules_the_rate_stays_and_every_epoch_runs():
    trainer = scripted_trainer([10, 9, 8, 7, 6])
    history = trainer.fit()
    assert len(history) == 5 and {record["lr_net"] for record in history} == {1e-2}
    assert not trainer.stopped_early


def test_early_stopping_ends_once_the_best_is_patience_validations_old(tmp_path):
    values = [10, 12, 11, 11, 11, 13, 14]
    trainer = scripted_trainer(values, out_dir=tmp_path, early_stopping=3, checkpoint_every=100)
    history = trainer.fit()
    assert [record["epoch"] for record in history] == [1, 2, 3, 4, 5]   # best at 2; 3, 4, 5 do not beat it
    assert trainer.stopped_early and trainer.validations_without_improvement() == 3
    # the stop is saved even off the checkpoint schedule, and a resumed run stays stopped
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert last["epoch"] == 5 and best["epoch"] == 2
    again = scripted_trainer(values, out_dir=tmp_path, early_stopping=3)
    assert [record["epoch"] for record in again.fit()] == [1, 2, 3, 4, 5]


def test_early_stopping_counts_validations_not_epochs_and_ignores_the_warm_up():
    # validated every 2 epochs (2, 4, 6, ...); epochs before select_from=3 never count as the best
    values = [0, 99, 0, 10, 0, 9, 0, 9, 0, 11, 0, 9]
    trainer = scripted_trainer(values, early_stopping=2, val_every=2, select_from=3)
    history = trainer.fit()
    # the 99 of epoch 2 is warm-up; best 10 at epoch 4; epochs 6 and 8 fail: stop after epoch 8
    assert history[-1]["epoch"] == 8
    assert trainer.best == 10


def test_ties_do_not_count_as_improvement():
    trainer = scripted_trainer([10, 10, 10, 10], early_stopping=2)
    assert len(trainer.fit()) == 3


def test_a_resumed_plateau_run_repeats_the_uninterrupted_one(tmp_path):
    values = [10, 11, 11, 11, 12, 12, 12, 12]
    straight = scripted_trainer(values, plateau_patience=1)
    straight.fit()
    scripted_trainer(values[:3], out_dir=tmp_path, plateau_patience=1).fit()
    resumed = scripted_trainer(values, out_dir=tmp_path, plateau_patience=1)
    resumed.fit()
    assert [r["lr_net"] for r in resumed.history] == [r["lr_net"] for r in straight.history]
    for name, tensor in straight.unwrap("net").state_dict().items():
        assert torch.equal(tensor, resumed.unwrap("net").state_dict()[name]), name


def test_a_schedule_added_on_resume_continues_as_if_it_had_run_from_the_start(tmp_path):
    """2 epochs without a schedule, resumed to 4 with LambdaLR(1 / (1 + epoch)): the rate of epoch 3 onwards is
    the scheduled one (the first two epochs ran at the constant rate, which is the point of extending a run)."""
    def trainer(schedule, epochs):
        return Trainer(BrightenTask(schedule=schedule), BrightenPairs(8),
                       TrainConfig(epochs=epochs, batch_size=4, progress=False, device="cpu", out_dir=tmp_path))

    trainer(False, 2).fit()
    extended = trainer(True, 4)
    with pytest.warns(UserWarning, match="no state for scheduler 'net'"):
        history = extended.fit()
    assert [record["lr_net"] for record in history] == pytest.approx([1e-2, 1e-2, 1e-2 / 4, 1e-2 / 5])
    assert extended.schedulers["net"].last_epoch == 4


@pytest.mark.parametrize("settings, message", [
    (dict(early_stopping=2), "set monitor"),
    (dict(plateau_patience=1), "set monitor"),
    (dict(monitor="val/psnr", early_stopping=0), "early_stopping"),
    (dict(monitor="val/psnr", plateau_patience=-1), "plateau_patience"),
    (dict(monitor="val/psnr", plateau_patience=1, plateau_factor=1.5), "plateau_factor"),
])
def test_bad_rules_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(epochs=2, batch_size=1, **settings)


def test_run_options_win_over_the_recipe_settings():
    run = RunContext(seed=3, device="cpu", progress=False, early_stopping=4)
    config = run.train_config(epochs=9, batch_size=2, monitor="val/psnr", early_stopping=1, plateau_patience=2)
    assert (config.seed, config.device, config.progress) == (3, "cpu", False)
    assert (config.early_stopping, config.plateau_patience) == (4, 2)


@pytest.mark.parametrize("name", [name for name in methods.available() if methods.get(name).learned])
def test_every_recipe_takes_both_rules_from_the_run(name):
    method = methods.learned(name)
    run = RunContext(device="cpu", progress=False, early_stopping=3, plateau_patience=1)
    trainers = list(method.phase_trainers(method.recipe_named("quick"), run))
    assert trainers
    for _, trainer in trainers:
        assert (trainer.config.early_stopping, trainer.config.plateau_patience) == (3, 1)
        assert all(f"plateau/{optimizer}" in trainer.schedulers for optimizer in trainer.optimizers)
