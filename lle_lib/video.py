"""Enhancing videos frame by frame, with the sound kept and the flicker smoothed.

``lle enhance zero_dce_pp clip.mp4 -o out.mp4`` calls :func:`enhance_video`: every frame is decoded, enhanced by
the method (``lle_lib.methods``), and encoded again at the same frame rate and with the same timestamps; the audio
packets are copied into the new file untouched (no re-encoding, so the sound is bit for bit the original's).

**Why PyAV.** Two packages bring FFmpeg to Python without a system ``ffmpeg``: ``imageio-ffmpeg`` ships the
``ffmpeg`` *program* and talks to it through pipes; PyAV (``av``) ships FFmpeg's *libraries* and calls them in the
same process. The book uses PyAV because it hands us decoded frames with their timestamps and lets us copy audio
packets from one file into another directly (with a pipe to a program, audio needs a second pass or a second
``ffmpeg`` command), and nothing has to be parsed from a program's output. Licences: PyAV's own code is
BSD-3-Clause; the FFmpeg libraries inside its wheels are built as LGPL version 3 (``--enable-version3``), and the
wheels also carry the x264 and x265 encoders as separate shared libraries, which are GPL-2.0-or-later. Using them
on your own machine is unaffected; if you *redistribute* a program together with this wheel, the GPL's terms apply
to those encoders (``imageio-ffmpeg``'s ``ffmpeg`` program is a GPL build too). The book depends on the wheel; it
does not redistribute it.

**Flicker.** A network enhances each frame on its own. Sensor noise differs from frame to frame, so a method's
whole-image quantities (Zero-DCE++'s curve map estimated on a shrunk frame, the reference-guided network's
content code) and the output's overall brightness wobble even when the scene is still: the video flickers.
:class:`TemporalSmoother` smooths, with an exponential moving average over frames, (1) every whole-image
quantity a method computes once per image (the tensors of its ``Tiling.prepare``), and (2) the output's mean
brightness, as a gain. :func:`flicker` measures what is left: the standard deviation of the frames' mean
brightness on a static scene.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

#: File extensions that ``lle enhance`` treats as videos (lower case, with the dot).
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm")

#: What :func:`enhance_video` writes: containers that hold H.264.
OUTPUT_EXTENSIONS: tuple[str, ...] = (".mp4", ".mov", ".m4v", ".mkv")

#: The default weight of the newest frame in the moving averages: about the last 1 / 0.3 = 3 frames count (a
#: tenth of a second at 30 fps), which removes frame-to-frame wobble but still follows a light switched on.
DEFAULT_SMOOTHING = 0.3


class VideoError(OSError):
    """A video could not be read or written; the message names the file and the reason."""


def is_video(path: str | os.PathLike) -> bool:
    """Whether ``path`` has a video extension (:data:`VIDEO_EXTENSIONS`, any case)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


# ----------------------------------------------------------------------------------------------------------------
# Temporal smoothing
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class TemporalSmoother:
    """Exponential moving averages across frames: ``s_t = (1 - a) s_{t-1} + a x_t``, ``a`` = ``weight`` (1: no
    smoothing). ``values`` smooths a dict of a method's whole-image quantities (tensors and arrays; other entries
    pass through), ``brightness`` the output's mean brightness, returned as a gain to apply to the frame."""

    weight: float = DEFAULT_SMOOTHING
    state: dict[str, Any] = field(default_factory=dict)
    mean: float | None = None

    def __post_init__(self):
        if not 0 < self.weight <= 1:
            raise ValueError(f"the smoothing weight must be in (0, 1] (1: none), not {self.weight!r}")

    def values(self, values: dict[str, Any]) -> dict[str, Any]:
        smoothed = {}
        for key, value in values.items():
            previous = self.state.get(key)
            if isinstance(value, (torch.Tensor, np.ndarray)) and previous is not None \
                    and previous.shape == value.shape:
                value = previous * (1 - self.weight) + value * self.weight
            if isinstance(value, (torch.Tensor, np.ndarray)):
                self.state[key] = value
            smoothed[key] = value
        return smoothed

    def brightness_gain(self, frame_mean: float) -> float:
        """The gain that brings a frame of mean brightness ``frame_mean`` to the smoothed mean."""
        self.mean = frame_mean if self.mean is None else (1 - self.weight) * self.mean + self.weight * frame_mean
        return self.mean / frame_mean if frame_mean > 1e-6 else 1.0


def frame_enhancer(method, *, smoothing: float | None = DEFAULT_SMOOTHING, weights=None, device: str = "cpu",
                   **controls) -> Callable[[np.ndarray], np.ndarray]:
    """A function that enhances the frames of one video in order, keeping what the smoothing needs between calls.

    ``smoothing`` is the weight of the newest frame in the moving averages (:class:`TemporalSmoother`); None or 1
    turns smoothing off (each frame enhanced on its own, exactly as ``methods.enhance`` would)."""
    from . import methods

    method = methods.get(method)
    smoother = None if smoothing in (None, 1, 1.0) else TemporalSmoother(float(smoothing))
    if method.learned:
        network, card = methods.load(method, weights, device=device)
        values = method.checked_controls(controls, method.card_defaults(card))
    else:
        network, values = None, method.checked_controls(controls)

    def enhance(frame: np.ndarray) -> np.ndarray:
        if smoother is not None and method.learned:
            output = methods.enhance_prepared(method, network, frame, values, transform=smoother.values)
        else:
            output = methods.enhance(method, frame, **({"network": network} if method.learned else {}), **values)
        if smoother is None:
            return output
        gain = smoother.brightness_gain(float(output.mean()))
        return np.clip(output * gain, 0, 1, out=output) if gain != 1.0 else output

    return enhance


def flicker(frames) -> float:
    """The standard deviation of the frames' mean brightness: 0 for a steady video. On a static scene every bit
    of it is flicker."""
    means = [float(np.mean(frame)) for frame in frames]
    return float(np.std(means))


def static_noisy_frames(image: np.ndarray, frames: int, noise: float, seed: int = 0):
    """``frames`` copies of ``image`` (a still scene), each with fresh Gaussian sensor noise of standard deviation
    ``noise``, clipped to [0, 1]: what a camera on a tripod records in the dark. A generator of float32 frames."""
    rng = np.random.default_rng(seed)
    for _ in range(frames):
        yield np.clip(image + rng.normal(0, noise, image.shape), 0, 1).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------------------------


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def _video_codec() -> str:
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def write_test_clip(path: str | os.PathLike, image: np.ndarray, *, frames: int = 25, fps: int = 25,
                    noise: float = 0.01, audio: bool = True, seed: int = 0) -> Path:
    """Write a short clip of a still scene with sensor noise (:func:`static_noisy_frames`) and, with ``audio``, a
    440 Hz tone as AAC: the test video of the tests, the benchmark and the chapter (no download needed)."""
    import av

    path = Path(path)
    height, width = image.shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(_video_codec(), rate=fps)
        stream.width, stream.height, stream.pix_fmt = width - width % 2, height - height % 2, "yuv420p"
        sound = container.add_stream("aac", rate=44100, layout="mono") if audio else None
        for index, frame in enumerate(static_noisy_frames(image, frames, noise, seed)):
            encoded = av.VideoFrame.from_ndarray(_to_uint8(frame[:stream.height, :stream.width]), format="rgb24")
            encoded.pts = index
            for packet in stream.encode(encoded):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if sound is not None:
            total, size, start = int(44100 * frames / fps), 1024, 0
            while start < total:
                tone = 0.2 * np.sin(2 * np.pi * 440 * np.arange(start, start + size) / 44100)
                chunk = av.AudioFrame.from_ndarray(tone.astype(np.float32)[None], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 44100, start
                for packet in sound.encode(chunk):
                    container.mux(packet)
                start += size
            for packet in sound.encode():
                container.mux(packet)
    return path


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` reads from a video's header."""

    width: int
    height: int
    fps: Fraction | None
    frames: int
    audio_streams: int
    seconds: float | None


def probe(path: str | os.PathLike) -> VideoInfo:
    """Size, frame rate, frame count (0 when the container does not say), audio streams and duration of a video."""
    import av

    path = Path(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            seconds = container.duration / 1e6 if container.duration else None
            return VideoInfo(stream.codec_context.width, stream.codec_context.height, stream.average_rate,
                             stream.frames, len(container.streams.audio), seconds)
    except av.FFmpegError as error:
        raise VideoError(f"{path}: not a video FFmpeg can read ({error})") from error


def enhance_video(method, source: str | os.PathLike, target: str | os.PathLike, *,
                  smoothing: float | None = DEFAULT_SMOOTHING, progress: bool = True, weights=None,
                  device: str = "cpu", **controls) -> VideoInfo:
    """Enhance every frame of the video ``source`` with ``method`` into ``target`` (MP4 with H.264, or MPEG-4 Part 2
    when the wheel lacks x264); returns what :func:`probe` reads from the result.

    The frame rate and every frame's timestamp are kept, the audio streams are copied packet by packet (not
    re-encoded), and ``smoothing`` averages the method's whole-image quantities and the brightness over frames
    (:class:`TemporalSmoother`; None: none). A frame of odd width or height loses its last column or row (H.264's
    4:2:0 colour needs even sizes). ``controls`` are the method's, as for ``methods.enhance``."""
    import av

    from .progress import progress_bar

    source, target = Path(source), Path(target)
    if target.suffix.lower() not in OUTPUT_EXTENSIONS:
        raise VideoError(f"{target}: write the enhanced video as {', '.join(OUTPUT_EXTENSIONS)} (H.264 inside)")
    info = probe(source)
    if source.resolve() == target.resolve():
        raise VideoError(f"{target}: the output would overwrite the input")
    enhance = frame_enhancer(method, smoothing=smoothing, weights=weights, device=device, **controls)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.stem + ".partial" + target.suffix)
    try:
        with av.open(str(source)) as reader, av.open(str(partial), "w", format=_container_format(target)) as writer:
            video = reader.streams.video[0]
            video.thread_type = "AUTO"
            width, height = info.width - info.width % 2, info.height - info.height % 2
            out_video = writer.add_stream(_video_codec(), rate=video.average_rate or 25)
            out_video.width, out_video.height, out_video.pix_fmt = width, height, "yuv420p"
            out_audio = {stream.index: writer.add_stream_from_template(stream) for stream in reader.streams.audio}
            bar = progress_bar(total=info.frames or None, desc=f"{getattr(method, 'name', method)}", unit="frame",
                               disable=not progress)
            with bar:
                for packet in reader.demux(video, *reader.streams.audio):
                    if packet.stream.index in out_audio:
                        if packet.dts is not None:
                            packet.stream = out_audio[packet.stream.index]
                            writer.mux(packet)
                        continue
                    for frame in packet.decode():
                        rgb = frame.to_ndarray(format="rgb24")[:height, :width].astype(np.float32) / 255
                        encoded = av.VideoFrame.from_ndarray(_to_uint8(enhance(rgb)), format="rgb24")
                        encoded.pts, encoded.time_base = frame.pts, frame.time_base
                        for out_packet in out_video.encode(encoded):
                            writer.mux(out_packet)
                        bar.update(1)
            for out_packet in out_video.encode():
                writer.mux(out_packet)
    except av.FFmpegError as error:
        partial.unlink(missing_ok=True)
        raise VideoError(f"{source}: could not be enhanced into {target} ({error})") from error
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return probe(target)


def _container_format(target: Path) -> str | None:
    """The container FFmpeg should write for ``target``'s extension (None: guessed from it)."""
    return {".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}.get(target.suffix.lower())


def read_frames(path: str | os.PathLike, limit: int | None = None) -> list[np.ndarray]:
    """The frames of a video as float32 ``(H, W, 3)`` images in [0, 1] (the first ``limit`` only, if given)."""
    import av

    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24").astype(np.float32) / 255)
            if limit is not None and len(frames) >= limit:
                break
    return frames
