"""Videos: frame by frame with the sound kept (lle_lib.video, `lle enhance METHOD clip.mp4`), and the flicker."""
from __future__ import annotations

import numpy as np
import pytest
import skimage.data

av = pytest.importorskip("av", reason="PyAV (the `av` package) is needed for videos")

from lle_lib import cli, methods, video  # noqa: E402


def dark_scene(height: int = 96, width: int = 128) -> np.ndarray:
    photo = skimage.data.coffee()[:height * 3:3, :width * 3:3].astype(np.float32) / 255
    return np.ascontiguousarray(photo * 0.15)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 12-frame 128x96 clip at 24 fps of a still dark scene with sensor noise, and a tone as AAC audio."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    return video.write_test_clip(path, dark_scene(), frames=12, fps=24, noise=0.01)


def audio_packets(path):
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return [(packet.pts, bytes(packet)) for packet in container.demux(stream) if packet.dts is not None]


def test_a_video_keeps_its_frames_rate_timestamps_and_sound(clip, tmp_path):
    out = tmp_path / "out.mp4"
    info = video.enhance_video("gamma", clip, out, progress=False, smoothing=None, gamma=0.5)
    source = video.probe(clip)
    assert (info.width, info.height, info.fps, info.frames) == (128, 96, source.fps, 12)
    assert info.audio_streams == 1
    assert audio_packets(out) == audio_packets(clip)             # copied packet by packet, not re-encoded
    with av.open(str(clip)) as a, av.open(str(out)) as b:
        assert [f.pts for f in a.decode(video=0)] == [f.pts for f in b.decode(video=0)]
    # each frame is the method's output for the decoded frame (up to H.264's loss)
    first_in, first_out = video.read_frames(clip, 1)[0], video.read_frames(out, 1)[0]
    expected = methods.enhance("gamma", first_in, gamma=0.5)
    assert np.abs(first_out - expected).mean() < 0.02
    assert first_out.mean() > first_in.mean() + 0.1


def test_smoothing_reduces_the_flicker_of_a_still_noisy_scene():
    frames = list(video.static_noisy_frames(dark_scene(), 40, noise=0.02, seed=1))
    flicker = {}
    for smoothing in (None, 0.3):
        enhance = video.frame_enhancer("zero_dce_pp", smoothing=smoothing)
        flicker[smoothing] = video.flicker([enhance(frame) for frame in frames])
    assert flicker[0.3] < 0.7 * flicker[None]        # an average of about 3 frames: sqrt(0.3 / 1.7) = 0.42 in theory
    # without smoothing a frame is exactly what methods.enhance gives
    plain = video.frame_enhancer("zero_dce_pp", smoothing=None)
    np.testing.assert_array_equal(plain(frames[0]), methods.enhance("zero_dce_pp", frames[0]))


def test_the_smoother_averages_tensors_and_gains():
    smoother = video.TemporalSmoother(0.5)
    first = smoother.values({"map": np.ones(3), "size": (4, 5)})
    second = smoother.values({"map": np.zeros(3), "size": (4, 5)})
    np.testing.assert_allclose(second["map"], 0.5) and np.testing.assert_allclose(first["map"], 1.0)
    assert second["size"] == (4, 5)
    assert smoother.brightness_gain(0.4) == pytest.approx(1.0)
    assert smoother.brightness_gain(0.2) == pytest.approx(0.3 / 0.2)
    with pytest.raises(ValueError, match="smoothing weight"):
        video.TemporalSmoother(0.0)
    assert video.flicker([np.full((2, 2, 3), v) for v in (0.2, 0.4)]) == pytest.approx(0.1)


def test_bad_videos_and_outputs_are_refused_clearly(clip, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 50)
    with pytest.raises(video.VideoError, match="broken.mp4"):
        video.enhance_video("gamma", broken, tmp_path / "x.mp4", progress=False)
    with pytest.raises(video.VideoError, match="write the enhanced video as"):
        video.enhance_video("gamma", clip, tmp_path / "x.gif", progress=False)
    with pytest.raises(video.VideoError, match="overwrite"):
        video.enhance_video("gamma", clip, clip, progress=False)
    assert not (tmp_path / "x.mp4").exists() and not list(tmp_path.glob("*.partial*"))


def test_the_command_line_enhances_a_clip_and_a_mixed_folder(clip, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LLE_DATA", raising=False)
    status = cli.main(["enhance", "gamma", str(clip), "-o", str(tmp_path / "one.mp4"), "-q"])
    assert status == 0 and video.probe(tmp_path / "one.mp4").frames == 12
    folder = tmp_path / "media"
    (folder / "trip").mkdir(parents=True)
    (folder / "trip" / "clip.mov").write_bytes(clip.read_bytes())
    (folder / ".hidden.mp4").write_bytes(clip.read_bytes())
    (folder / "broken.mp4").write_bytes(b"nothing")
    from lle_lib import write_image

    write_image(folder / "trip" / "photo.png", dark_scene())
    capsys.readouterr()
    status = cli.main(["enhance", "gamma", str(folder), "-o", str(tmp_path / "out"), "-q"])
    out, err = capsys.readouterr()
    assert status == 1 and "broken.mp4" in err
    assert "2 of 2 image(s) and" not in out and "of 1 image(s) and 2 video(s)" in out and "1 skipped" in out
    assert (tmp_path / "out" / "trip" / "clip.mp4").is_file() and (tmp_path / "out" / "trip" / "photo.png").is_file()
    assert not (tmp_path / "out" / ".hidden.mp4").exists()
