"""The command line (`lle`, `python -m lle_lib`), driven as a user would, on files the tests make."""
import subprocess
import sys

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from lle_lib import cli, methods
from lle_lib.images import read_image
from lle_lib.weights import pretrained_path, read_card


@pytest.fixture(autouse=True)
def synthetic_data(monkeypatch):
    monkeypatch.delenv("LLE_DATA", raising=False)


@pytest.fixture
def photos(tmp_path):
    """A dark photo, and a folder with an odd-sized PNG, a grayscale PNG in a subfolder, an RGBA PNG and a broken
    file."""
    photo = skimage.data.astronaut()[::4, ::4]
    Image.fromarray((photo * 0.15).astype(np.uint8)).save(tmp_path / "photo.jpg")
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray((photo[:61, :47] * 0.1).astype(np.uint8)).save(folder / "odd.png")
    Image.fromarray((skimage.data.camera()[::8, ::8] * 0.2).astype(np.uint8)).save(folder / "sub" / "grey.png")
    rgba = np.dstack([photo * 0.1, np.full(photo.shape[:2], 255)]).astype(np.uint8)
    Image.fromarray(rgba).save(folder / "rgba.png")
    (folder / "broken.jpg").write_bytes(b"not an image")
    return tmp_path


def run(capsys, *argv):
    """``lle *argv`` in this process: (exit status, standard output, standard error)."""
    try:
        status = cli.main([str(arg) for arg in argv])
    except SystemExit as exit_:
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_list_prints_every_method_with_its_family_and_its_cards_figures(capsys):
    status, out, _ = run(capsys, "list")
    assert status == 0
    lines = {line.split()[0]: line for line in out.splitlines()[2:] if line.strip() and not line[0].isupper()}
    assert set(methods.available()) <= set(lines)
    kind = read_card(pretrained_path("kind"))
    assert f"{kind['test_psnr']}" in lines["kind"] and "paired" in lines["kind"] and "light" in lines["kind"]
    assert "classical" in lines["gamma"] and "GT-mean" in out


def test_python_dash_m_lle_lib_is_the_same_command_line():
    result = subprocess.run([sys.executable, "-m", "lle_lib", "list", "--family", "zero-reference"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "zero_dce_pp" in result.stdout and "gamma" not in result.stdout


def test_enhance_one_photo_to_a_file(photos, capsys):
    status, out, _ = run(capsys, "enhance", "zero_dce_pp", photos / "photo.jpg", "-o", photos / "out.png", "-q")
    assert status == 0 and "1 of 1" in out
    low, enhanced = read_image(photos / "photo.jpg"), read_image(photos / "out.png")
    assert enhanced.shape == low.shape and enhanced.mean() > low.mean() + 0.1


def test_enhance_a_folder_keeps_its_structure_converts_odd_inputs_and_reports_the_broken_one(photos, capsys):
    status, out, err = run(capsys, "enhance", "zero_dce_pp", photos / "photos", "-o", photos / "out", "-q")
    assert status == 1, "a file that could not be read makes the run fail, after the others are written"
    assert "3 of 4" in out and "broken.jpg" in err
    assert read_image(photos / "out" / "odd.png").shape == (61, 47, 3)
    assert read_image(photos / "out" / "sub" / "grey.png").shape == (64, 64, 3)
    assert (photos / "out" / "rgba.png").is_file()


def test_a_control_changes_the_output_and_is_refused_out_of_range(photos, capsys):
    for light in (2, 8):
        assert run(capsys, "enhance", "kind", photos / "photo.jpg", "--light", light, "-o",
                   photos / f"k{light}.png", "-q")[0] == 0
    assert read_image(photos / "k2.png").mean() < read_image(photos / "k8.png").mean()
    status, _, err = run(capsys, "enhance", "kind", photos / "photo.jpg", "--light", 300, "-o", photos / "x.png")
    assert status == 2 and "out of range (light: float in [0.5, 50]" in err
    assert not (photos / "x.png").exists()


def test_unknown_method_or_control_is_refused_listing_what_is_valid(photos, capsys):
    status, _, err = run(capsys, "enhance", "retinexformer", photos / "photo.jpg", "-o", photos / "x.png")
    assert status == 2 and "zero_dce_pp" in err and "gamma" in err
    status, _, err = run(capsys, "enhance", "gamma", photos / "photo.jpg", "--light", 3, "-o", photos / "x.png")
    assert status == 2 and "--light" in err and "gamma: float in [0.05, 3]" in err
    status, _, err = run(capsys, "enhance", "gamma", photos / "missing.jpg", "-o", photos / "x.png")
    assert status == 2 and "no such file" in err
    status, _, err = run(capsys, "enhance", "gamma", photos / "photos", "-o", photos / "one.png")
    assert status == 2 and "need an output folder" in err


def test_train_exports_weights_whose_card_list_reads_back_and_resumes(photos, capsys):
    run_dir, weights = photos / "runs" / "q", photos / "q.pt"
    # --device cpu: `lle train` defaults to auto (CUDA and AMP on a machine with a GPU); this test means the CPU
    tiny = ["--device", "cpu", "--crop", 32, "--train-items", 4, "--val-items", 2, "--batch-size", 2, "-q"]
    status, out, _ = run(capsys, "train", "zero_dce", "--preset", "quick", "--out", run_dir, "--epochs", 1, *tiny,
                         "--export", weights, "--early-stopping", 4, "--plateau-patience", 0)
    assert status == 0 and "exported" in out
    card = read_card(weights)
    assert card["lle_method"] == "zero_dce" and card["recipe"]["crop"] == 32 and card["epochs_trained"] == 1
    assert card["training_rules"] == {"early_stopping": 4, "plateau_patience": 0}
    assert "plateau/net" in torch.load(run_dir / "last.pt", weights_only=True)["schedulers"]
    status, out, _ = run(capsys, "list", "--weights", weights)
    assert status == 0 and str(weights) in out and f"{card['test_psnr']}" in out
    first = torch.load(run_dir / "last.pt", weights_only=True)["history"][0]
    assert run(capsys, "train", "zero_dce", "--preset", "quick", "--out", run_dir, "--epochs", 2, *tiny)[0] == 0
    history = torch.load(run_dir / "last.pt", weights_only=True)["history"]
    assert [record["epoch"] for record in history] == [1, 2] and history[0] == first     # resumed, not restarted
    assert run(capsys, "enhance", "zero_dce", photos / "photo.jpg", "--weights", weights, "-o",
               photos / "q.png", "-q")[0] == 0


def test_train_options_come_from_the_recipe_including_nested_fields(capsys):
    args = cli.build_parser().parse_args(["train", "kind", "--out", "x", "--restoration.learning-rate", "1e-5",
                                          "--prior-epochs", "3"])
    assert vars(args)["recipe:restoration.learning_rate"] == 1e-5 and vars(args)["recipe:prior_epochs"] == 3
    args = cli.build_parser().parse_args(["train", "pix2pix", "--out", "x", "--ema-decay", "none",
                                          "--no-precise-batchnorm", "--betas", "0.5", "0.9"])
    assert vars(args)["recipe:ema_decay"] is None and vars(args)["recipe:precise_batchnorm"] is False
    assert vars(args)["recipe:betas"] == [0.5, 0.9]
    status, _, err = run(capsys, "train", "zero_dce", "--out", "x", "--depth", 3)
    assert status == 2 and "--learning-rate" in err
    status, _, err = run(capsys, "train", "gamma", "--out", "x")
    assert status == 2 and "invalid choice" in err


def test_evaluate_prints_the_books_table_with_both_protocols_next_to_the_input(capsys):
    status, out, _ = run(capsys, "evaluate", "gamma", "clahe", "--split", "val", "--limit", 2, "-q")
    assert status == 0
    header, *rows = [line for line in out.splitlines() if line.strip()]
    assert "PSNR (dB)" in out and "PSNR GT-mean (dB)" in out and "synthetic val pairs" in out
    assert [row.split()[0] for row in rows[:4]] == ["method", "input", "gamma", "clahe"]
