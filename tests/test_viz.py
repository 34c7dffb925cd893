"""Tests for lle_lib.viz: the static-page frame slider, image encoding and history plots."""
import io

import matplotlib
import numpy as np
import pytest
from PIL import Image

from lle_lib import viz

matplotlib.use("Agg")


def frames(count=3, size=(20, 30)):
    return [np.full((*size, 3), value, dtype=np.float32) for value in np.linspace(0.1, 0.9, count)]


def test_encode_image_round_trips_through_png():
    image = np.random.default_rng(0).random((7, 9, 3)).astype(np.float32)
    decoded = np.asarray(Image.open(io.BytesIO(viz.encode_image(image, "png")))) / 255
    assert decoded.shape == (7, 9, 3)
    assert np.abs(decoded - image).max() <= 0.5 / 255 + 1e-6


def test_frame_slider_links_the_slider_to_the_stack_in_the_browser():
    box = viz.frame_slider(frames(4), description="iteration")
    slider, stack = box.children
    assert (slider.min, slider.max, slider.value) == (0, 3, 0)
    assert len(stack.children) == 4 and stack.selected_index == 0
    # a jslink (runs in the browser, so it works in the static page), between exactly these two traits
    assert type(box.link).__name__ == "Link"
    assert box.link.source == (slider, "value") and box.link.target == (stack, "selected_index")
    shown = [np.asarray(Image.open(io.BytesIO(image.value))).mean() / 255 for image in stack.children]
    assert shown == pytest.approx(list(np.linspace(0.1, 0.9, 4)), abs=0.01)


def test_frame_slider_needs_two_frames():
    with pytest.raises(ValueError, match="at least two"):
        viz.frame_slider(frames(1))


def test_plot_history_draws_every_logged_series():
    history = [{"epoch": e, "train/loss": 1 / e, "train/colour": 0.1 / e, "val/psnr": 10 + e} for e in (1, 2, 3)]
    fig = viz.plot_history(history)
    left, right = fig.axes
    assert [line.get_label() for line in left.lines] == ["train/loss", "train/colour"]
    assert list(right.lines[0].get_ydata()) == [11, 12, 13]
    assert left.get_yscale() == "log"
    with pytest.raises(ValueError, match="empty"):
        viz.plot_history([])


def test_flattest_crop_finds_the_flat_patch():
    rng = np.random.default_rng(0)
    image = rng.random((80, 120, 3)).astype(np.float32)  # texture everywhere ...
    image[30:62, 70:102] = 0.4  # ... but one flat 32 x 32 patch
    rows, cols = viz.flattest_crop(image, 24)
    assert rows.stop - rows.start == 24 and cols.stop - cols.start == 24
    assert 30 <= rows.start and rows.stop <= 62 and 70 <= cols.start and cols.stop <= 102
    rows, cols = viz.flattest_crop(image, 500)  # clipped to the image's short side, still around the patch
    assert rows == slice(0, 80) and cols.stop - cols.start == 80 and cols.start <= 70 and cols.stop >= 102


def test_flattest_crop_can_prefer_the_darkest_flat_window():
    rng = np.random.default_rng(0)
    reference = rng.random((64, 160, 3)).astype(np.float32)
    reference[8:40, 8:40] = 0.5      # two flat patches of the reference ...
    reference[8:40, 110:142] = 0.5
    low = np.full_like(reference, 0.2)
    low[:, 100:] = 0.02              # ... of which the second is darker in the low image
    assert viz.flattest_crop(reference, 24, darkest_in=low)[1].start >= 100  # at the dark, flat patch
    assert viz.flattest_crop(reference, 24, darkest_in=1 - low)[1].stop <= 64  # at the other one
    with pytest.raises(ValueError, match="size"):
        viz.flattest_crop(reference, 24, darkest_in=low[:10])


def test_live_sliders_call_the_function_with_the_current_values_when_moved():
    import ipywidgets as widgets

    calls = []
    box = viz.live_sliders(lambda alpha, n: calls.append((alpha, n)),
                           alpha=widgets.FloatSlider(value=0.3, min=-1, max=1), n=widgets.IntSlider(value=8, max=8))
    assert calls == []  # nothing drawn into a widget while the notebook executes
    box.children[0].value = 0.5
    box.children[1].value = 2
    assert calls == [(0.5, 8), (0.5, 2)]
    assert isinstance(box.children[-1], widgets.Output)
    with pytest.raises(ValueError, match="at least one slider"):
        viz.live_sliders(print)


def test_largest_error_crop_finds_the_wrong_patch():
    target = np.full((120, 160, 3), 0.5)
    output = target.copy()
    output[70:94, 100:124] = 0.9                       # a 24x24 mistake
    output[10:14, 10:14] = 0.0                          # a smaller one elsewhere
    rows, cols = viz.largest_error_crop(output, target, 24)
    assert (rows, cols) == (slice(70, 94), slice(100, 124))
    rows, cols = viz.largest_error_crop(output, target, 500)       # clipped to the short side
    assert rows.stop - rows.start == 120 and cols.start <= 100 and cols.stop >= 124
    with pytest.raises(ValueError, match="differ"):
        viz.largest_error_crop(output, target[:60], 24)


def test_cut_docstrings_keeps_the_first_line_and_the_code():
    source = 'def f(x):\n    """Square x.\n\n    A long explanation\n    over lines.\n    """\n    return x * x\n'
    cut = viz.cut_docstrings(source)
    assert cut == 'def f(x):\n    """Square x. ..."""\n    return x * x\n'
    ns = {}
    exec(cut, ns)
    assert ns["f"](3) == 9


def test_cut_docstrings_works_on_an_indented_method_and_leaves_one_line_docstrings():
    source = '    def g(self):\n        """One line."""\n        return 1\n'
    assert viz.cut_docstrings(source) == source


def test_show_source_cuts_docstrings_unless_asked():
    short = viz.show_source(viz.frame_slider).data
    whole = viz.show_source(viz.frame_slider, docstrings=True).data
    assert "jslink" in whole and len(short.splitlines()) < len(whole.splitlines()) - 5
    assert "def frame_slider" in short


def test_data_note_says_which_pairs_the_page_ran_on():
    assert "ran on LOL" in viz.data_note("LOL eval15 (15 pairs)")
    assert "synthetic pairs" in viz.data_note("synthetic pairs from scikit-image photos")


def test_frame_slider_gives_each_frame_a_description():
    box = viz.frame_slider(frames(3), description="level", alt=["dark", "mid", "bright"])
    assert [image.tooltip for image in box.children[1].children] == ["dark", "mid", "bright"]
    with pytest.raises(ValueError, match="2 alt texts for 3 frames"):
        viz.frame_slider(frames(3), alt=["a", "b"])


def test_frame_slider_with_labels_shows_the_value_and_links_its_index():
    box = viz.frame_slider(frames(3), description="alpha", labels=["-1.0", "0.0", "1.0"])
    slider, stack = box.children
    assert slider.value == "-1.0"
    assert box.link.source == (slider, "index") and box.link.target == (stack, "selected_index")
    with pytest.raises(ValueError, match="distinct label per frame"):
        viz.frame_slider(frames(3), labels=["a", "a", "b"])


def test_show_images_title_size_grows_with_the_grid_unless_given():
    import matplotlib.pyplot as plt

    images = [np.zeros((10, 15, 3), np.float32)] * 8
    wide = viz.show_images(images, [str(i) for i in range(8)], ncols=8, size=2)
    narrow = viz.show_images(images[:2], ["a", "b"], ncols=2, size=2)
    given = viz.show_images(images, [str(i) for i in range(8)], ncols=8, size=2, fontsize=9)
    sizes = [fig.axes[0].title.get_fontsize() for fig in (wide, narrow, given)]
    assert sizes[0] > sizes[1] >= 10 and sizes[2] == 9
    assert wide.get_size_inches()[0] == 16 and sum(not ax.axison for ax in wide.axes) == 8
    plt.close("all")
