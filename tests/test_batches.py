"""PairedBatches: each pair decoded once, batches cut in one piece, augmentation that depends only on (key, item).

Also the trainer's side of it (exact resume, validation) and the device rules of mixed precision and DDP; the
tests that need a GPU are skipped without one.
"""
from __future__ import annotations


import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from lle_lib.data import PairedBatches, PairedFolderDataset, SyntheticPairs, load_paired_batches
from lle_lib.data.batches import as_float, as_stored, crop_and_flip, memory_budget_mb
from lle_lib.train import Task, TrainConfig, Trainer, autocast_dtype, epoch_seed, process_device

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def write_pairs(folder, count=6, size=(20, 28)):
    """``count`` random 8-bit pairs of ``size`` (height, width) in folder/low and folder/high, high = 255 - low."""
    rng = np.random.default_rng(0)
    for role in ("low", "high"):
        (folder / role).mkdir(parents=True)
    for index in range(count):
        low = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        Image.fromarray(low).save(folder / "low" / f"{index}.png")
        Image.fromarray(255 - low).save(folder / "high" / f"{index}.png")
    return PairedFolderDataset(folder)


class CountingReads(torch.utils.data.Dataset):
    """A dataset that counts how often each item is read."""

    def __init__(self, base):
        self.base, self.reads = base, {}

    def __len__(self):
        return len(self.base)

    def __getitem__(self, index):
        self.reads[index] = self.reads.get(index, 0) + 1
        return self.base[index]


@pytest.fixture
def pairs(tmp_path):
    return write_pairs(tmp_path)


def test_the_low_and_high_windows_stay_aligned_through_crops_and_flips(pairs):
    batches = PairedBatches(pairs, crop=(8, 12), flip=True)
    for key in range(20):
        batch = batches.batch(range(len(pairs)), key=key)
        assert batch["low"].shape == (len(pairs), 3, 8, 12)
        torch.testing.assert_close(batch["high"], 1 - batch["low"], rtol=0, atol=1e-6)


def test_each_item_is_the_window_that_its_key_and_index_draw(pairs):
    batches = PairedBatches(pairs, crop=(8, 12), flip=True)
    batch = batches.batch([4, 1, 3], key=77)
    for row, index in enumerate([4, 1, 3]):
        top, left, mirrored = crop_and_flip((20, 28), (8, 12), True, 77, index)
        window = pairs[index]["low"][:, top:top + 8, left:left + 12]
        assert torch.equal(batch["low"][row], window.flip(-1) if mirrored else window)
    assert batch["name"] == ["4", "1", "3"]


def test_an_item_looks_the_same_whatever_batch_it_falls_in(pairs):
    batches = PairedBatches(pairs, crop=8, flip=True)
    whole = batches.batch([0, 1, 2, 3, 4, 5], key=5)
    halves = [batches.batch([0, 1, 2], key=5), batches.batch([3, 4, 5], key=5)]
    reordered = batches.batch([5, 4, 3, 2, 1, 0], key=5)
    assert torch.equal(whole["low"], torch.cat([half["low"] for half in halves]))
    assert torch.equal(whole["low"], reordered["low"].flip(0))


def test_keys_draw_different_windows_and_no_key_gives_whole_images(pairs):
    batches = PairedBatches(pairs, crop=8, flip=True)
    assert not torch.equal(batches.batch([0, 1], key=1)["low"], batches.batch([0, 1], key=2)["low"])
    whole = batches.batch([0, 1])
    assert whole["low"].shape == (2, 3, 20, 28)
    assert torch.equal(whole["low"][1], pairs[1]["low"])


def test_windows_cover_the_image_and_half_the_items_are_mirrored():
    draws = [crop_and_flip((20, 28), (8, 12), True, key, 0) for key in range(2000)]
    tops, lefts, mirrored = zip(*draws)
    assert set(tops) == set(range(13)) and set(lefts) == set(range(17))
    assert 0.45 < np.mean(mirrored) < 0.55
    assert not any(crop_and_flip((20, 28), None, False, key, 0)[2] for key in range(50))


def test_each_pair_is_decoded_once(pairs):
    counting = CountingReads(pairs)
    batches = PairedBatches(counting, crop=8, flip=True)
    for key in range(5):
        batches.batch(range(len(pairs)), key=key)
    assert counting.reads == {index: 1 for index in range(len(pairs))}
    assert batches.stored_bytes == len(pairs) * 2 * 3 * 20 * 28       # uint8: one byte a sample


def test_past_the_memory_cap_items_are_decoded_again_with_one_warning_and_the_same_batches(pairs):
    counting = CountingReads(pairs)
    two_items = 2 * 2 * 3 * 20 * 28 / 2**20
    capped = PairedBatches(counting, crop=8, flip=True, memory_mb=two_items)
    with pytest.warns(UserWarning, match="LLE_DATA_MEMORY_MB") as caught:
        first = capped.batch(range(len(pairs)), key=3)
        second = capped.batch(range(len(pairs)), key=3)
    assert len(caught) == 1
    assert capped.stored_bytes <= two_items * 2**20
    assert counting.reads[0] == 1 and counting.reads[5] == 2
    assert torch.equal(first["low"], second["low"])
    assert torch.equal(first["low"], PairedBatches(pairs, crop=8, flip=True).batch(range(len(pairs)), key=3)["low"])


def test_the_memory_cap_reads_the_environment(monkeypatch):
    monkeypatch.setenv("LLE_DATA_MEMORY_MB", "12.5")
    assert memory_budget_mb() == 12.5
    assert memory_budget_mb(3) == 3
    monkeypatch.setenv("LLE_DATA_MEMORY_MB", "lots")
    with pytest.raises(ValueError, match="LLE_DATA_MEMORY_MB"):
        memory_budget_mb()


def test_only_exact_8_bit_images_are_stored_as_uint8():
    exact = torch.arange(256, dtype=torch.float32).reshape(1, 16, 16) / 255
    stored = as_stored(exact)
    assert stored.dtype == torch.uint8 and torch.equal(as_float(stored), exact)
    inexact = exact.clone()
    inexact[0, 0, 1] += 1e-3
    assert as_stored(inexact).dtype == torch.float32


def test_synthetic_pairs_are_stored_exactly():
    synthetic = SyntheticPairs("train", size=32, n=3)
    batches = PairedBatches(synthetic)
    assert batches.decoded(0)["low"].dtype == torch.uint8
    assert torch.equal(batches.batch([0, 2])["low"], torch.stack([synthetic[0]["low"], synthetic[2]["low"]]))


def test_clear_errors_for_a_crop_too_big_and_for_unequal_whole_images(tmp_path):
    small = write_pairs(tmp_path / "a", count=2, size=(6, 6))
    with pytest.raises(ValueError, match="smaller than the 8x8 crop"):
        PairedBatches(small, crop=8).batch([0], key=1)
    mixed = write_pairs(tmp_path / "b", count=1, size=(6, 6))
    write_pairs(tmp_path / "c", count=2, size=(6, 9))
    both = torch.utils.data.ConcatDataset([mixed, PairedFolderDataset(tmp_path / "c")])
    with pytest.raises(ValueError, match="different sizes"):
        PairedBatches(both).batch([0, 1])
    assert PairedBatches(both, crop=5).batch([0, 1], key=1)["low"].shape == (2, 3, 5, 5)


def test_first_items_keep_the_augmentation(pairs):
    batches = PairedBatches(pairs, crop=8, flip=True)
    first = batches.first(3)
    assert len(first) == 3 and first.crop == (8, 8) and first.flip
    assert torch.equal(first.batch([0, 2], key=9)["low"], batches.batch([0, 2], key=9)["low"])
    assert batches.first(None) is batches


def test_indexing_gives_one_float_item_like_the_item_transforms(pairs):
    item = PairedBatches(pairs, crop=8, flip=True)[2]
    assert item["low"].shape == (3, 8, 8) and item["low"].dtype == torch.float32
    torch.testing.assert_close(item["high"], 1 - item["low"], rtol=0, atol=1e-6)


def test_training_splits_without_lol_are_synthetic_batches(monkeypatch):
    monkeypatch.delenv("LLE_DATA", raising=False)
    train = load_paired_batches("train", size=32)
    val = load_paired_batches("val")
    assert train.flip and not val.flip and train.crop is None
    assert train.source.startswith("synthetic train pairs") and "flips" in train.source
    assert val.batch([0])["low"].shape == (1, 3, 128, 128)


# --- the trainer over PairedBatches ----------------------------------------------------------------------------

class Brighten(Task):
    def modules(self):
        return {"net": nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1))}

    def configure_optimizers(self, modules):
        return {"net": torch.optim.Adam(modules["net"].parameters(), lr=1e-2)}

    def training_step(self, batch, trainer):
        loss = F.l1_loss(trainer.modules["net"](batch["low"]), batch["high"])
        trainer.optimize(loss, "net")
        return {"loss": loss}

    def validation_step(self, batch, trainer):
        return {"l1": (trainer.modules["net"](batch["low"]) - batch["high"]).abs().mean(dim=(1, 2, 3))}


def brighten_trainer(pairs, epochs, out_dir=None, device="cpu", **settings):
    config = TrainConfig(epochs=epochs, batch_size=4, device=device, out_dir=out_dir, progress=False, **settings)
    return Trainer(Brighten(), PairedBatches(pairs, crop=8, flip=True), config,
                   val_dataset=PairedBatches(pairs))


def test_a_resumed_run_over_batches_repeats_the_uninterrupted_one(pairs, tmp_path):
    whole = brighten_trainer(pairs, 3)
    whole.fit()
    brighten_trainer(pairs, 2, out_dir=tmp_path).fit()
    resumed = brighten_trainer(pairs, 3, out_dir=tmp_path)
    resumed.fit()
    for a, b in zip(whole.unwrap("net").parameters(), resumed.unwrap("net").parameters()):
        assert torch.equal(a, b)
    assert [r["val/l1"] for r in whole.history] == [r["val/l1"] for r in resumed.history]


def test_the_trainer_draws_each_epochs_windows_from_the_seed_and_epoch(pairs):
    trainer = brighten_trainer(pairs, 1, seed=4)
    trainer.fit()
    assert trainer.train_loader.key == epoch_seed(4, 1)
    seen = []
    trainer.task.training_step = lambda batch, trainer_: seen.append(batch["low"]) or {"loss": 0.0}
    trainer._train_one_epoch(2)
    order = list(trainer.sampler)
    expected = PairedBatches(pairs, crop=8, flip=True).batch(order[:4], key=epoch_seed(4, 2))
    assert torch.equal(seen[0], expected["low"])


def test_validation_over_batches_scores_every_item_once(pairs):
    trainer = brighten_trainer(pairs, 1)
    record = trainer._validate()
    net = trainer.unwrap("net").eval()
    with torch.no_grad():
        errors = [(net(pairs[i]["low"][None]) - pairs[i]["high"][None]).abs().mean() for i in range(len(pairs))]
    assert record["val/l1"] == pytest.approx(float(torch.stack(errors).mean()), rel=1e-5)


# --- devices: mixed precision and DDP ---------------------------------------------------------------------------

def test_ddp_runs_one_process_per_gpu_and_says_what_to_do_when_there_are_too_few():
    cuda = torch.device("cuda")
    assert process_device(cuda, 1, 2, gpu_count=2) == torch.device("cuda", 1)
    with pytest.raises(RuntimeError, match=r"2 processes .* 1 GPU.*--nproc_per_node=1.*device='cpu'"):
        process_device(cuda, 1, 2, gpu_count=1)
    assert process_device(torch.device("cpu"), 1, 4, gpu_count=0) == torch.device("cpu")


def test_the_cpu_trains_in_full_precision_whatever_amp_says(pairs):
    trainer = brighten_trainer(pairs, 1, amp="auto")
    assert not trainer.amp and trainer.amp_dtype is None
    assert not any(scaler.is_enabled() for scaler in trainer.scalers.values())


@pytest.mark.parametrize("channels_last", [False, True])
def test_channels_last_gives_the_same_training_on_the_cpu(pairs, channels_last):
    plain = brighten_trainer(pairs, 1)
    plain.fit()
    nhwc = brighten_trainer(pairs, 1, channels_last=channels_last)
    nhwc.fit()
    for a, b in zip(plain.unwrap("net").parameters(), nhwc.unwrap("net").parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@needs_cuda
def test_batches_cut_on_the_gpu_equal_those_cut_on_the_cpu(pairs):
    on_cpu = PairedBatches(pairs, crop=8, flip=True).batch(range(len(pairs)), key=11)
    gpu = PairedBatches(pairs, crop=8, flip=True).keep_on("cuda")
    on_gpu = gpu.batch(range(len(pairs)), key=11)
    assert on_gpu["low"].is_cuda and gpu.decoded(0)["low"].is_cuda
    assert torch.equal(on_gpu["low"].cpu(), on_cpu["low"]) and torch.equal(on_gpu["high"].cpu(), on_cpu["high"])


@needs_cuda
def test_a_mixed_precision_step_on_the_gpu_moves_the_parameters(pairs):
    trainer = brighten_trainer(pairs, 1, device="cuda", amp=True)
    expected = torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
    assert trainer.amp_dtype == expected == autocast_dtype(trainer.device)
    assert all(scaler.is_enabled() == (expected == torch.float16) for scaler in trainer.scalers.values())
    before = [p.detach().clone() for p in trainer.unwrap("net").parameters()]
    trainer.fit()
    assert all(not torch.equal(a, b) for a, b in zip(before, trainer.unwrap("net").parameters()))
    assert trainer.train_loader.dataset.device.type == "cuda"


@needs_cuda
def test_two_processes_on_one_gpu_stop_with_a_clear_message(monkeypatch, pairs):
    if torch.cuda.device_count() > 1:
        pytest.skip("the machine has more than one GPU")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(RuntimeError, match="--nproc_per_node=1"):
        brighten_trainer(pairs, 1, device="auto")
