"""pix2pix through the shared trainer: alternating updates touch the intended network only, the NaN guard, a tiny
end-to-end run on synthetic pairs, export with a card."""
from __future__ import annotations

import copy
import json
import warnings
from dataclasses import replace

import pytest
import torch

from lle_lib.config import RunContext
from lle_lib.recipes import pix2pix as recipes
from lle_lib.train import NonFiniteLossError, TrainConfig, Trainer, recalibrate_batchnorm

TINY = replace(recipes.PRESETS["quick"], generator_width=4, generator_depth=4, discriminator_width=4, crop=32,
               batch_size=2, epochs=1, decay_epochs=0, train_items=4, val_items=2)
#: The tests build their batches and expected tensors on the CPU, so they train there too, GPU or not ("auto"
#: would move the networks to CUDA and switch AMP on).
CPU = RunContext(device="cpu", progress=False)


def cpu_config(**settings) -> TrainConfig:
    """A :class:`TrainConfig` on the CPU, whatever the machine has (see :data:`CPU`)."""
    return TrainConfig(device="cpu", **settings)


def pairs(n=4, size=32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [{"low": (low := torch.rand(3, size, size, generator=generator) * 0.3), "high": (low * 3).clamp(0, 1),
             "name": str(i)} for i in range(n)]


def snapshot(module):
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def changed(module, before):
    return {name for name, p in module.named_parameters() if not torch.equal(p.detach(), before[name])}


def test_one_discriminator_step_and_one_generator_step_change_only_their_own_network():
    trainer = Trainer(recipes.Pix2PixTask(TINY), pairs(), cpu_config(epochs=1, batch_size=2, progress=False))
    generator, discriminator = trainer.unwrap("generator"), trainer.unwrap("discriminator")
    updates = []
    original_optimize = trainer.optimize

    def recording_optimize(loss, name):
        before = {"generator": snapshot(generator), "discriminator": snapshot(discriminator)}
        original_optimize(loss, name)
        updates.append((name, changed(generator, before["generator"]),
                        changed(discriminator, before["discriminator"])))

    trainer.optimize = recording_optimize
    for module in (generator, discriminator):
        module.train()
    batch = torch.utils.data.default_collate(pairs(2))
    logged = trainer.task.training_step(batch, trainer)
    assert [name for name, _, _ in updates] == ["discriminator", "generator"]
    (_, g_changed_by_d, d_changed_by_d), (_, g_changed_by_g, d_changed_by_g) = updates
    assert not g_changed_by_d and d_changed_by_d == {n for n, _ in discriminator.named_parameters()}
    assert not d_changed_by_g and g_changed_by_g == {n for n, _ in generator.named_parameters()}
    assert set(logged) == {"d_loss", "g_loss", "g_adversarial", "l1"}


def test_the_generator_loss_weighs_l1_by_lambda_and_the_gan_term_by_its_weight():
    batch = torch.utils.data.default_collate(pairs(2))

    def first_g_loss(recipe):
        trainer = Trainer(recipes.Pix2PixTask(recipe), pairs(), cpu_config(epochs=1, batch_size=2, progress=False))
        return trainer.task.training_step(batch, trainer)

    plain = first_g_loss(TINY)
    assert plain["g_loss"].item() == pytest.approx(plain["g_adversarial"].item() + 115 * plain["l1"].item(), rel=1e-5)
    l1_only = first_g_loss(replace(TINY, adversarial_weight=0.0, l1_weight=10.0))
    assert l1_only["g_loss"].item() == pytest.approx(10 * l1_only["l1"].item(), rel=1e-5)


def test_a_nan_stops_training_and_the_last_good_checkpoint_survives(tmp_path):
    class Poisoned(recipes.Pix2PixTask):
        def training_step(self, batch, trainer):
            if trainer.epoch == 2:
                batch = {**batch, "high": batch["high"] * float("nan")}
            return super().training_step(batch, trainer)

    trainer = Trainer(Poisoned(TINY), pairs(), cpu_config(epochs=3, batch_size=2, out_dir=tmp_path, progress=False))
    with pytest.raises(NonFiniteLossError, match="generator|discriminator"):
        trainer.fit()
    checkpoint = torch.load(tmp_path / "last.pt", weights_only=True)
    assert checkpoint["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in checkpoint["modules"]["generator"].values() if v.is_floating_point())
    # and training resumes from it once the cause is gone
    resumed = Trainer(recipes.Pix2PixTask(TINY), pairs(),
                      cpu_config(epochs=2, batch_size=2, out_dir=tmp_path, progress=False))
    history = resumed.fit()
    assert [record["epoch"] for record in history] == [1, 2]


def test_a_tiny_run_trains_validates_and_exports_a_generator_with_a_card(tmp_path, monkeypatch):
    monkeypatch.delenv("LLE_DATA", raising=False)
    recipe = replace(TINY, epochs=2, train_items=8)
    trainer = recipes.make_trainer(recipe, CPU, out_dir=tmp_path / "run")
    history = trainer.fit()
    assert len(history) == 2 and all("val/psnr" in record for record in history)
    assert all(record["train/d_loss"] > 0 for record in history)
    card = recipes.export_weights(tmp_path / "run", recipe, tmp_path / "g.pt", CPU)
    assert card["method"].startswith("pix2pix") and card["epochs_trained"] == 2
    assert "test_psnr" in card and json.loads((tmp_path / "g.json").read_text())["sha256"] == card["sha256"]
    # the card keeps the curves of the run, one entry per epoch, matching the trainer's history
    assert [entry["epoch"] for entry in card["history"]] == [record["epoch"] for record in history]
    assert card["history"][-1]["val/psnr"] == pytest.approx(history[-1]["val/psnr"], abs=1e-4)
    assert card["history"][0]["train/d_loss"] == pytest.approx(history[0]["train/d_loss"], abs=1e-4)
    state = torch.load(tmp_path / "g.pt", weights_only=True)
    assert not any(key.startswith("net.") for key in state)          # the generator only, no discriminator
    generator = recipe.build_generator()
    generator.load_state_dict(state)

    # stored as float16: half the bytes, and the card scores the rounded weights that ship, not the run's
    scored = []
    real_enhance = recipes.enhance_pix2pix
    monkeypatch.setattr(recipes, "enhance_pix2pix", lambda net, image: (
        scored.append({name: value.clone() for name, value in net.state_dict().items()}), real_enhance(net, image))[1])
    card16 = recipes.export_weights(tmp_path / "run", recipe, tmp_path / "g16.pt", CPU, dtype=torch.float16)
    assert card16["stored_dtype"] == "float16" and "stored_dtype" not in card
    assert (tmp_path / "g16.pt").stat().st_size < 0.6 * (tmp_path / "g.pt").stat().st_size
    state16 = torch.load(tmp_path / "g16.pt", weights_only=True)
    rounded = {name: value.half().float() if value.is_floating_point() else value for name, value in state.items()}
    assert all(torch.equal(state16[name].float() if value.is_floating_point() else state16[name], value)
               for name, value in rounded.items())
    assert scored and all(torch.equal(weights[name], rounded[name]) for weights in scored for name in rounded)


def batchnorm_statistics(module):
    return {name: buffer.clone() for name, buffer in module.named_buffers() if "running" in name}


@pytest.mark.parametrize("precise", [True, False])
def test_precise_batchnorm_recomputes_the_statistics_of_the_final_weights_before_validation(precise):
    data = pairs(6)
    recipe = replace(TINY, precise_batchnorm=precise)
    trainer = Trainer(recipes.Pix2PixTask(recipe), data, cpu_config(epochs=1, batch_size=2, shuffle=False,
                                                                     progress=False), val_dataset=data[:2])
    trainer.fit()
    generator = trainer.unwrap("generator")
    kept = batchnorm_statistics(generator)
    # the same weights, their statistics measured afresh over all training inputs, in the same batches (in
    # training mode each layer normalises by its batch, so the later layers' statistics depend on the grouping)
    reference = copy.deepcopy(generator)
    recalibrate_batchnorm(reference, [torch.stack([item["low"] for item in data[i:i + 2]]) for i in (0, 2, 4)])
    expected = batchnorm_statistics(reference)
    matches = [torch.allclose(kept[name], expected[name], rtol=1e-4, atol=1e-6) for name in kept]
    assert all(matches) if precise else not any(matches)


def test_the_learning_rates_of_both_networks_decay_linearly_over_the_last_epochs():
    recipe = replace(TINY, epochs=4, decay_epochs=2)
    trainer = Trainer(recipes.Pix2PixTask(recipe), pairs(), cpu_config(epochs=3, batch_size=2, progress=False))
    seen = []
    step = trainer.task.training_step

    def recording_step(batch, trainer_):
        seen.append({name: optimizer.param_groups[0]["lr"] for name, optimizer in trainer_.optimizers.items()})
        return step(batch, trainer_)

    trainer.task.training_step = recording_step
    trainer.fit()
    # 2 steps per epoch; epochs 1 and 2 at the base rates, epoch 3 at 1 - 1/3 of them
    for epoch, factor in ((0, 1.0), (1, 1.0), (2, 2 / 3)):
        for at_step in seen[2 * epoch:2 * epoch + 2]:
            assert at_step["generator"] == pytest.approx(recipe.generator_lr * factor)
            assert at_step["discriminator"] == pytest.approx(recipe.discriminator_lr * factor)


def test_the_weight_average_follows_every_generator_step_and_is_what_validation_scores_and_export_ships(tmp_path):
    data = pairs(6)
    recipe = replace(TINY, ema_decay=0.5)
    trainer = Trainer(recipes.Pix2PixTask(recipe), data, cpu_config(epochs=1, batch_size=2, shuffle=False,
                                                                     progress=False, out_dir=tmp_path / "run",
                                                                     monitor="val/psnr"), val_dataset=data[:2])
    assert set(trainer.optimizers) == {"generator", "discriminator"}       # the average has no optimizer
    generator, average = trainer.unwrap("generator"), trainer.unwrap("generator_ema")
    start = snapshot(generator)
    assert snapshot(average).keys() == start.keys()
    iterates = []
    step = trainer.task.training_step

    def recording_step(batch, trainer_):
        values = step(batch, trainer_)
        iterates.append(snapshot(generator))
        return values

    trainer.task.training_step = recording_step
    history = trainer.fit()
    # three steps with decay 1/2: avg = start/8 + w1/8 + w2/4 + w3/2
    assert len(iterates) == 3
    for name, value in snapshot(average).items():
        expected = start[name] / 8 + iterates[0][name] / 8 + iterates[1][name] / 4 + iterates[2][name] / 2
        torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
    assert not any(p.requires_grad for p in average.parameters())
    # validation scores both; the monitored value is the average's, and the export ships the average
    assert {"val/psnr", "val/psnr_raw", "val/ssim", "val/ssim_raw"} <= set(history[-1])
    assert history[-1]["val/psnr"] != history[-1]["val/psnr_raw"]
    recipes.export_weights(tmp_path / "run", recipe, tmp_path / "g.pt", CPU)
    shipped = torch.load(tmp_path / "g.pt", weights_only=True)
    for name, value in average.state_dict().items():
        assert torch.equal(shipped[name], value), name


def test_a_weight_average_with_decay_zero_is_the_generator_itself():
    data = pairs(4)
    trainer = Trainer(recipes.Pix2PixTask(replace(TINY, ema_decay=0.0)), data,
                      cpu_config(epochs=1, batch_size=2, shuffle=False, progress=False), val_dataset=data[:2])
    record = trainer.fit()[-1]
    for name, value in trainer.unwrap("generator").state_dict().items():
        assert torch.equal(trainer.unwrap("generator_ema").state_dict()[name], value), name
    assert record["val/psnr"] == pytest.approx(record["val/psnr_raw"], abs=1e-6)


def test_warmup_epochs_train_the_generator_by_l1_alone():
    data = pairs(4)
    recipe = replace(TINY, epochs=3, warmup_epochs=2, decay_epochs=1, ema_decay=0.5, generator_lr=1e-2,
                     discriminator_lr=1e-2)
    trainer = Trainer(recipes.Pix2PixTask(recipe), data, cpu_config(epochs=3, batch_size=2, progress=False),
                      val_dataset=data[:2])
    discriminator = trainer.unwrap("discriminator")
    seen = []
    step = trainer.task.training_step

    def recording_step(batch, trainer_):
        d_before, g_before = snapshot(discriminator), snapshot(trainer_.unwrap("generator"))
        values = step(batch, trainer_)
        seen.append((trainer_.epoch, set(values), bool(changed(discriminator, d_before)),
                     bool(changed(trainer_.unwrap("generator"), g_before))))
        return values

    trainer.task.training_step = recording_step
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = trainer.fit()
    assert not [w for w in caught if "lr_scheduler" in str(w.message)]   # the idle discriminator's schedule is quiet
    for epoch, logged, d_moved, g_moved in seen:
        assert g_moved
        if epoch <= 2:   # warm-up: L1 only, the discriminator neither logged nor stepped
            assert logged == {"l1"} and not d_moved
        else:
            assert logged == {"d_loss", "g_loss", "g_adversarial", "l1"} and d_moved
    assert {epoch for epoch, *_ in seen} == {1, 2, 3}
    assert all("val/psnr" in record for record in history)


def test_a_warmup_run_selects_its_best_epoch_after_the_warmup(tmp_path):
    recipe = replace(TINY, epochs=3, warmup_epochs=2)
    trainer = recipes.make_trainer(recipe, CPU, out_dir=tmp_path / "run")
    assert trainer.config.select_from == 3
    history = trainer.fit()
    assert torch.load(tmp_path / "run" / "best.pt", weights_only=True)["epoch"] == 3
    assert len(history) == 3


@pytest.mark.parametrize("warmup", [-1, 3])
def test_a_warmup_must_leave_the_gan_at_least_one_epoch(warmup):
    with pytest.raises(ValueError, match="warmup_epochs"):
        replace(TINY, epochs=3, warmup_epochs=warmup)


@pytest.mark.distributed
def test_the_gan_trains_under_torchrun_and_both_processes_agree(tmp_path, torchrun):
    """Two CPU processes (Gloo): each D step and G step is averaged over both, so their networks stay identical."""
    torchrun("pix2pix_ddp_worker.py", tmp_path, timeout=180)
    reports = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [report["world_size"] for report in reports] == [2, 2]
    # epoch 1 was the L1 warm-up (the discriminator wrapped in DDP but idle), epoch 2 the GAN
    assert ["d_loss" in "".join(record) for record in reports[0]["history"]] == [False, True]
    assert reports[0]["wrappers"] == {"generator": "DistributedDataParallel", "discriminator": "DistributedDataParallel",
                                      "generator_ema": "UNetGenerator"}
    states = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)]
    models = {"generator": TINY.build_generator(), "discriminator": TINY.build_discriminator()}
    for network, model in models.items():
        # the weights agree exactly
        for name, _ in model.named_parameters():
            assert torch.equal(states[0][network][name], states[1][network][name]), (network, name)
    # the generator's BatchNorm statistics were re-estimated on each process's share of the training crops before
    # the last validation (precise_batchnorm) and then averaged over the processes: they agree too
    assert TINY.precise_batchnorm
    for name in batchnorm_statistics(models["generator"]):
        assert torch.equal(states[0]["generator"][name], states[1]["generator"][name]), name
    # the weight average is computed by each process from identical weights: it agrees without communication
    for name, value in states[0]["generator_ema"].items():
        assert torch.equal(value, states[1]["generator_ema"][name]), name
    assert any(not torch.equal(value, states[0]["generator"][name]) for name, value in states[0]["generator_ema"].items())
    start = recipes.Pix2PixTask(TINY).modules()["generator"].state_dict()
    assert any(not torch.equal(start[name], states[0]["generator"][name]) for name in start)
