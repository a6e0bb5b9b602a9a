"""Audio codecs (tokenizers): waveform <-> a flat sequence of integer token ids.

    codec = load_codec("codec2", mode=700, tokens_per_frame=4)
    ids = codec.encode(wav, 16000, where="se-train-00001")   # list[int], each in [0, codec.vocab_size)
    wav16k, n_invalid = codec.decode(ids)                     # float32 16 kHz in [-1, 1]

Token layout (every codec here): the codec emits frames of ``tokens_per_frame`` codes; the flat
sequence is frame-major (frame 0's positions 0..K-1, then frame 1's, ...) and position ``k`` of a
frame owns its own id range ``[offset_k, offset_k + size_k)`` (offsets are the running sum of the
sizes), so ``vocab_size = sum(sizes)`` and an id tells its position (:class:`FrameLayout`).

Decoding an LM's output (:meth:`FrameLayout.codes`): ids are read left to right; an id outside
``[0, vocab_size)`` is dropped; an id of the expected position is kept; an id of position 0 where
another position was expected drops the unfinished frame and starts a new one (resynchronisation);
any other id in the wrong position is dropped. An incomplete trailing frame is dropped.
``n_invalid`` = ids not used in a decoded frame. No complete frame -> an empty waveform (callers
treat it as unscorable).

Entries of :data:`CODECS`:

* ``codec2``: the classical Codec 2 speech codec (Rowe, 2009-; libcodec2 bundled in ``pycodec2``),
  8 kHz. Modes (option ``mode``): 700 (700C, 28 bits per 40 ms frame, the default), 1300 (52 bits /
  40 ms), 1600 (64 / 40 ms), 2400 (48 / 20 ms), 3200 (64 / 20 ms). Each frame's bits (MSB first,
  as libcodec2 packs them) are split into ``tokens_per_frame`` groups (default 4) as evenly as
  possible, the first groups taking the extra bits: 700C x 4 -> 7+7+7+7 bits, ids 0..511, 100
  tokens/s. 16 kHz in is resampled to 8 kHz (soxr, HQ), decoded 8 kHz out back to 16 kHz.
  Deterministic: every call uses fresh encoder / decoder states, and the decoder's global random
  phase generator is reset before each decode (:class:`_Codec2Rng`). Codec 2 delays its output
  (:data:`CODEC2_DELAY`, measured here by log-mel cross-correlation on espeak speech: ~30 ms for
  700C, ~20 ms for the others); ``encode`` pads the tail by that much and ``decode`` drops it from
  the start, so a round trip is time-aligned with its input (PESQ / STOI / SI-SDR against a clean
  reference need that) and covers all of it: 16 kHz length = 2 * (frames * samples_per_frame - delay).
* ``encodec`` (Defossez et al. 2022, arXiv 2210.13438; ``facebook/encodec_24khz``), ``dac``
  (Kumar et al. 2023, arXiv 2306.06546; ``descript/dac_16khz``), ``xcodec2`` (X-Codec 2.0 of Llasa,
  Ye et al. 2025, arXiv 2502.04128; the transformers conversion ``HKUSTAudio/xcodec2-hf``): loaded
  through transformers (EncodecModel, DacModel, Xcodec2Model) from option ``path`` (a local folder
  or a hub id; ``local_files_only`` when ``HF_HUB_OFFLINE=1``). One frame = the residual codebooks
  of one time step (EnCodec, DAC) or the single FSQ code (X-Codec 2, 65536 ids, 50 tokens/s).
  transformers' Xcodec2FeatureExtractor needs torchaudio (no CPU wheel here): without it
  ``xcodec2`` is a :class:`CodecError` naming the package; EnCodec and DAC need only torch.
* ``snac`` (Siuzdak et al. 2024, arXiv 2410.14411; ``hubertsiuzdak/snac_24khz``) through the
  ``snac`` package; one frame = 7 codes of the three scales in the order Orpheus-TTS uses
  (c0[t], c1[2t], c2[4t], c2[4t+1], c1[2t+1], c2[4t+2], c2[4t+3]). Not exercised here (the package
  is not installed): a missing package is a :class:`CodecError` naming it.
* ``bicodec`` (BiCodec of Spark-TTS, the codec UniSE predicts; Yan et al. 2025, arXiv 2510.20441)
  and ``simcodec`` (GenSE's single-quantizer codec; Yao et al. 2025, arXiv 2502.02942): their code
  ships in no package; the entries raise a :class:`CodecError` saying how to plug one in.

Bad input (``encode``), each a defined outcome:

* not 1-D (multi-channel): :class:`CodecError`; audio files are downmixed upstream by
  :func:`speechrl.audio.io.load_audio`, an array here must already be mono;
* NaN / infinite samples, no samples, non-float samples (e.g. raw int16 PCM), audio shorter than
  one codec frame: :class:`CodecError`;
* digital silence (every sample rounds to 0 in 16-bit PCM): :class:`CodecError` "digital silence":
  Codec 2 would encode it, but a tokenized target of pure silence is a data bug;
* clipped audio (>= :data:`CLIP_WARN_SAMPLES` samples at full scale, :func:`count_clipped`):
  encoded after clipping to [-1, 1], with a logged warning naming ``where`` (the tokenize stage
  counts such examples in its stats);
* any sample rate ``sr`` is resampled to the codec's rate; a file whose rate differs from
  ``data.sample_rate`` is refused before this by ``load_audio`` (tokenize counts it as a bad sample).
"""

from __future__ import annotations

import bisect
import inspect
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from speechrl.audio.io import resample
from speechrl.registry import Registry

log = logging.getLogger("speechrl.audio.codecs")

OUT_SR = 16000  # every decode returns 16 kHz
CLIP_WARN_SAMPLES = 10  # this many full-scale samples make an input "clipped"
MAX_GROUP_BITS = 16  # a codec2 position holds at most 2^16 ids (an LM embedding table, not 2^28)


class CodecError(ValueError):
    """Unusable audio or ids, or a codec that cannot be loaded; the message names ``where``."""


@runtime_checkable
class AudioCodec(Protocol):
    name: str
    sample_rate: int  # the codec's native rate (Hz)
    vocab_size: int  # ids are 0..vocab_size-1
    tokens_per_second: float
    tokens_per_frame: int

    def encode(self, wav: np.ndarray, sr: int, where: str = "") -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> tuple[np.ndarray, int]: ...

    def info(self) -> dict[str, Any]: ...


CODECS: Registry[Callable[..., AudioCodec]] = Registry("audio codec")


def load_codec(name: str, **options: Any) -> AudioCodec:
    """The codec ``name`` built with ``options``; an unknown name lists the valid ones (KeyError),
    an unknown option lists the codec's options (:class:`CodecError`)."""
    factory = CODECS.get(name)
    params = inspect.signature(factory).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(options) - set(params))
        if unknown:
            raise CodecError(f"codec '{name}': unknown option(s) {', '.join(unknown)}; valid: {', '.join(params) or 'none'}")
    return factory(**options)


# ------------------------------------------------------------------------------- shared helpers
@dataclass(frozen=True)
class FrameLayout:
    """Position ``k`` of a frame uses ids ``[offsets[k], offsets[k] + sizes[k])``."""

    sizes: tuple[int, ...]

    @property
    def offsets(self) -> tuple[int, ...]:
        return tuple(int(x) for x in np.concatenate([[0], np.cumsum(self.sizes)[:-1]]))

    @property
    def vocab_size(self) -> int:
        return int(sum(self.sizes))

    def ids(self, codes: np.ndarray) -> list[int]:
        """(frames, positions) codes, each ``0 <= code < sizes[k]`` -> flat frame-major ids."""
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or codes.shape[1] != len(self.sizes):
            raise ValueError(f"codes must have shape (frames, {len(self.sizes)}), got {codes.shape}")
        if ((codes < 0) | (codes >= np.asarray(self.sizes))).any():
            raise ValueError("a code is outside its position's range")
        return (codes + np.asarray(self.offsets)).reshape(-1).tolist()

    def codes(self, ids: Sequence[Any]) -> tuple[np.ndarray, int]:
        """Flat ids -> ((frames, positions) codes, n_invalid), by the rules in the module docstring."""
        k, offs, ends = len(self.sizes), self.offsets, [o + s for o, s in zip(self.offsets, self.sizes)]
        frames: list[list[int]] = []
        cur: list[int] = []
        for raw in ids:
            i = _as_int(raw)
            if i is None or not 0 <= i < self.vocab_size:
                continue
            pos = bisect.bisect_right(ends, i)
            if pos == len(cur):
                cur.append(i - offs[pos])
            elif pos == 0:
                cur = [i]  # resynchronise: the unfinished frame is dropped
            else:
                continue
            if len(cur) == k:
                frames.append(cur)
                cur = []
        out = np.asarray(frames, dtype=np.int64).reshape(len(frames), k)
        return out, len(ids) - out.size


def _as_int(x: Any) -> int | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)) and float(x).is_integer():
        return int(x)
    return None


def _split_bits(total: int, parts: int) -> list[int]:
    """``total`` bits in ``parts`` groups as evenly as possible, the first groups one bit larger."""
    base, extra = divmod(total, parts)
    return [base + (1 if k < extra else 0) for k in range(parts)]


def count_clipped(wav: np.ndarray) -> int:
    """Samples at or beyond full scale (|x| >= 1 - 1/32768, i.e. int16 +-32767 or beyond)."""
    return int(np.count_nonzero(np.abs(np.asarray(wav)) >= 1.0 - 1.0 / 32768))


def check_wave(wav: Any, sr: Any, min_seconds: float, where: str) -> np.ndarray:
    """Validate one encoder input; returns it as float32 mono clipped to [-1, 1] (see module docstring)."""
    where = where or "audio"
    wav = np.asarray(wav)
    if wav.ndim != 1:
        raise CodecError(f"{where}: audio must be mono, shape (samples,), got shape {wav.shape} "
                         "(downmix first, e.g. wav.mean(axis=<channel axis>); files are downmixed by load_audio)")
    if not isinstance(sr, (int, np.integer)) or isinstance(sr, bool) or sr <= 0:
        raise CodecError(f"{where}: sample rate must be a positive integer (Hz), got {sr!r}")
    if wav.size == 0:
        raise CodecError(f"{where}: audio is empty (0 samples)")
    if not np.issubdtype(wav.dtype, np.floating):
        raise CodecError(f"{where}: audio must be float samples in [-1, 1], got dtype {wav.dtype} (16-bit PCM: divide by 32768)")
    wav = wav.astype(np.float32)
    if not np.isfinite(wav).all():
        raise CodecError(f"{where}: audio contains NaN or infinite samples")
    seconds = wav.size / sr
    if seconds < min_seconds:
        raise CodecError(f"{where}: audio is {seconds * 1000:.1f} ms, shorter than one codec frame ({min_seconds * 1000:.0f} ms)")
    if not (np.abs(wav) >= 0.5 / 32768).any():
        raise CodecError(f"{where}: digital silence (every sample rounds to 0 in 16-bit PCM); a silent target is a data bug")
    n_clip = count_clipped(wav)
    if n_clip >= CLIP_WARN_SAMPLES:
        log.warning("%s: clipped audio, %d samples at full scale (peak %.3g); encoded after clipping to [-1, 1]",
                    where, n_clip, float(np.abs(wav).max()))
    return np.clip(wav, -1.0, 1.0)


def _to_pcm16(wav: np.ndarray) -> np.ndarray:
    return np.clip(np.round(wav * 32768.0), -32768, 32767).astype(np.int16)


def _finish(wav: np.ndarray, sr: int) -> np.ndarray:
    """Any decoded waveform -> 16 kHz float32 in [-1, 1]."""
    if np.size(wav) == 0:
        return np.zeros(0, dtype=np.float32)
    out = resample(np.asarray(wav, dtype=np.float32).reshape(-1), sr, OUT_SR)
    return np.clip(np.nan_to_num(out, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0).astype(np.float32)


def _info(codec: Any, options: dict[str, Any]) -> dict[str, Any]:
    """What identifies the token ids (codec.json): not where the codec ran (``device``)."""
    options = {k: v for k, v in options.items() if k != "device"}
    return {"name": codec.name, "options": options, "vocab_size": codec.vocab_size, "sample_rate": codec.sample_rate,
            "tokens_per_second": codec.tokens_per_second, "tokens_per_frame": codec.tokens_per_frame,
            "group_sizes": list(codec.layout.sizes)}


# ------------------------------------------------------------------------------- codec2
def _elf_symbols(path: str, names: set[str]) -> dict[str, int]:
    """File addresses of the named symbols in an ELF64 little-endian shared object (.symtab and .dynsym)."""
    import struct

    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return {}
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    found: dict[str, int] = {}
    for _name, kind, _flags, _addr, off, size, link, _info, _align, entsize in sections:
        if kind not in (2, 11) or not entsize:  # SHT_SYMTAB, SHT_DYNSYM
            continue
        stroff = sections[link][4]
        for j in range(size // entsize):
            st_name, _i, _o, _shndx, value, _size = struct.unpack_from("<IBBHQQ", data, off + j * entsize)
            end = data.index(b"\0", stroff + st_name)
            name = data[stroff + st_name:end].decode("ascii", "replace")
            if name in names and value:
                found.setdefault(name, value)
    return found


class _Codec2Rng:
    """libcodec2's decoder draws phases from a process-global LCG (``codec2_rand``, state ``next``, seeded 1), so
    the same bits decode differently call after call. This finds that state (the library's symbol table, checked
    against one ``codec2_rand`` step) and resets it to 1 before each decode: decoding is then a pure function of
    the ids, in any process. Where the symbol cannot be found (a stripped build) decoding stays random, with a
    warning."""

    def __init__(self) -> None:
        import ctypes
        import threading

        self.lock = threading.Lock()
        self.state: Any = None
        try:
            path = next(line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines() if "libcodec2" in line)
            syms = _elf_symbols(path, {"next", "codec2_rand"})
            lib = ctypes.CDLL(path)
            addr = ctypes.cast(lib.codec2_rand, ctypes.c_void_p).value - syms["codec2_rand"] + syms["next"]
            state = ctypes.c_uint64.from_address(addr)
            before = state.value
            after = (before * 1103515245 + 12345) % (1 << 64)
            if lib.codec2_rand() == (after // 65536) % 32768 and state.value == after:
                self.state = state
        except (OSError, StopIteration, KeyError, ValueError, TypeError):
            pass
        if self.state is None:
            log.warning("codec2: could not locate libcodec2's random state; decoding is not repeatable (phases differ per call)")

    def reset(self) -> None:
        if self.state is not None:
            self.state.value = 1


_RNG: _Codec2Rng | None = None


def _codec2_rng() -> _Codec2Rng:
    global _RNG
    if _RNG is None:
        _RNG = _Codec2Rng()
    return _RNG


CODEC2_MODES = (700, 1300, 1600, 2400, 3200)
CODEC2_DELAY = {700: 236, 1300: 160, 1600: 164, 2400: 168, 3200: 164}  # output delay, samples at 8 kHz


class Codec2Codec:
    """Codec 2 through pycodec2; see the module docstring for the token layout."""

    name = "codec2"
    sample_rate = 8000

    def __init__(self, mode: int = 700, tokens_per_frame: int = 4) -> None:
        import pycodec2

        if mode not in CODEC2_MODES:
            raise CodecError(f"codec2: mode {mode!r} is not supported; valid: {', '.join(map(str, CODEC2_MODES))} (bit/s; 700 = 700C)")
        probe = pycodec2.Codec2(mode)
        self.mode = int(mode)
        self.samples_per_frame = probe.samples_per_frame()  # at 8 kHz
        self.bits_per_frame = probe.bits_per_frame()
        self.bytes_per_frame = probe.bytes_per_frame()
        if not isinstance(tokens_per_frame, int) or isinstance(tokens_per_frame, bool) or not 1 <= tokens_per_frame <= self.bits_per_frame:
            raise CodecError(f"codec2: tokens_per_frame must be an integer in 1..{self.bits_per_frame} (bits per frame of mode {mode}), got {tokens_per_frame!r}")
        self.bits = _split_bits(self.bits_per_frame, tokens_per_frame)
        if max(self.bits) > MAX_GROUP_BITS:
            raise CodecError(f"codec2: tokens_per_frame={tokens_per_frame} gives {max(self.bits)}-bit tokens (> {MAX_GROUP_BITS}); "
                             f"use tokens_per_frame >= {math.ceil(self.bits_per_frame / MAX_GROUP_BITS)}")
        self.layout = FrameLayout(tuple(1 << b for b in self.bits))
        self.tokens_per_frame = tokens_per_frame
        self.vocab_size = self.layout.vocab_size
        self.frame_seconds = self.samples_per_frame / self.sample_rate
        self.tokens_per_second = tokens_per_frame / self.frame_seconds
        self._weights = [1 << np.arange(b - 1, -1, -1) for b in self.bits]  # MSB first

    def info(self) -> dict[str, Any]:
        return _info(self, {"mode": self.mode, "tokens_per_frame": self.tokens_per_frame})

    def encode(self, wav: np.ndarray, sr: int, where: str = "") -> list[int]:
        """Mono float waveform at ``sr`` Hz -> ids (``tokens_per_frame`` per 20/40 ms frame; the
        tail is zero-padded by the codec delay and up to a whole frame)."""
        import pycodec2

        wav = check_wave(wav, sr, self.frame_seconds, where)
        pcm = _to_pcm16(resample(wav, int(sr), self.sample_rate))
        n, delay = self.samples_per_frame, CODEC2_DELAY[self.mode]
        pcm = np.pad(pcm, (0, -(len(pcm) + delay) % n + delay))
        enc = pycodec2.Codec2(self.mode)  # fresh state: deterministic
        # pycodec2's encode/decode handle ONE frame per call (libcodec2 API), whatever the buffer size
        packed = np.frombuffer(b"".join(enc.encode(np.ascontiguousarray(pcm[i:i + n])) for i in range(0, len(pcm), n)), dtype=np.uint8)
        bits = np.unpackbits(packed.reshape(-1, self.bytes_per_frame), axis=1)[:, :self.bits_per_frame]
        edges = np.cumsum([0, *self.bits])
        codes = np.stack([bits[:, a:b] @ w for a, b, w in zip(edges[:-1], edges[1:], self._weights)], axis=1)
        return self.layout.ids(codes)

    def decode(self, ids: Sequence[int]) -> tuple[np.ndarray, int]:
        """Ids -> (16 kHz float32 waveform in [-1, 1], ids dropped); see :meth:`FrameLayout.codes`."""
        import pycodec2

        codes, n_invalid = self.layout.codes(ids)
        if len(codes) == 0:
            return np.zeros(0, dtype=np.float32), n_invalid
        bits = np.concatenate([((codes[:, [k]] >> np.arange(b - 1, -1, -1)) & 1) for k, b in enumerate(self.bits)], axis=1)
        packed = np.packbits(bits.astype(np.uint8), axis=1)  # zero-pads each frame to bytes_per_frame
        rng = _codec2_rng()
        with rng.lock:
            rng.reset()
            dec = pycodec2.Codec2(self.mode)
            pcm = np.concatenate([dec.decode(row.tobytes()) for row in packed])[CODEC2_DELAY[self.mode]:]
        return _finish(pcm.astype(np.float32) / 32768.0, self.sample_rate), n_invalid


@CODECS.register("codec2")
def codec2(mode: int = 700, tokens_per_frame: int = 4) -> AudioCodec:
    return Codec2Codec(mode=mode, tokens_per_frame=tokens_per_frame)


# ------------------------------------------------------------------------------- neural codecs (transformers)
def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _weights_error(name: str, path: str, hub_id: str, err: BaseException) -> CodecError:
    first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
    return CodecError(
        f"codec '{name}': cannot load weights from path={path!r} ({type(err).__name__}: {first}). "
        f"Download them on a machine with network access: `huggingface-cli download {hub_id} --local-dir <DIR>` "
        f"and set the codec option path=<DIR> (config: tokenize.path)")


def _from_pretrained(name: str, cls: Any, path: str | None, hub_id: str) -> Any:
    """``cls.from_pretrained(path)``, ``path`` a local folder or a hub id (``None``: ``hub_id``); clear errors."""
    path = path or hub_id
    local = Path(path).expanduser()
    looks_local = path.startswith((".", "/", "~")) or local.exists()
    if looks_local and not local.is_dir():
        raise _weights_error(name, path, hub_id, FileNotFoundError(f"no folder {local}"))
    try:
        return cls.from_pretrained(str(local) if looks_local else path, local_files_only=_offline() or looks_local)
    except ImportError as e:  # e.g. Xcodec2FeatureExtractor needs torchaudio
        detail = " ".join(str(e).split())[:300]
        raise CodecError(f"codec '{name}': {getattr(cls, '__name__', cls)} needs a package that is not installed: {detail}") from None
    except (OSError, ValueError) as e:
        raise _weights_error(name, path, hub_id, e) from None


class _TorchCodec:
    """Shared encode/decode plumbing of the neural codecs: subclasses give ``_codes`` and ``_wave``."""

    name = ""
    layout: FrameLayout
    options: dict[str, Any]

    def _setup(self, model: Any, sample_rate: int, frame_rate: float, sizes: Sequence[int]) -> None:
        import torch

        self.model = model.eval()
        self.device = torch.device(self.options.get("device") or "cpu")
        self.model.to(self.device)
        self.sample_rate = int(sample_rate)
        self.layout = FrameLayout(tuple(int(s) for s in sizes))
        self.vocab_size = self.layout.vocab_size
        self.tokens_per_frame = len(sizes)
        self.tokens_per_second = float(frame_rate) * len(sizes)
        self.min_seconds = 1.0 / float(frame_rate)

    def info(self) -> dict[str, Any]:
        return _info(self, self.options)

    def encode(self, wav: np.ndarray, sr: int, where: str = "") -> list[int]:
        import torch

        wav = check_wave(wav, sr, self.min_seconds, where)
        x = resample(wav, int(sr), self.sample_rate)
        with torch.inference_mode():
            codes = self._codes(x)  # (frames, positions)
        return self.layout.ids(codes)

    def decode(self, ids: Sequence[int]) -> tuple[np.ndarray, int]:
        import torch

        codes, n_invalid = self.layout.codes(ids)
        if len(codes) == 0:
            return np.zeros(0, dtype=np.float32), n_invalid
        with torch.inference_mode():
            wave = self._wave(torch.as_tensor(codes, dtype=torch.long, device=self.device))
        return _finish(wave, self.sample_rate), n_invalid

    def _tensor(self, x: np.ndarray) -> Any:
        import torch

        return torch.as_tensor(x, dtype=torch.float32, device=self.device).view(1, 1, -1)


class EncodecCodec(_TorchCodec):
    name = "encodec"

    def __init__(self, path: str | None = "facebook/encodec_24khz", bandwidth: float = 6.0, device: str = "cpu") -> None:
        from transformers import EncodecModel

        self.options = {"path": path, "bandwidth": bandwidth, "device": device}
        model = _from_pretrained(self.name, EncodecModel, path, "facebook/encodec_24khz")
        cfg = model.config
        if cfg.audio_channels != 1 or cfg.chunk_length is not None or cfg.normalize:
            raise CodecError(f"codec 'encodec': {path} is a stereo / chunked / normalised model (e.g. encodec_48khz); "
                             "only mono unchunked models such as facebook/encodec_24khz are supported")
        if float(bandwidth) not in [float(b) for b in cfg.target_bandwidths]:
            raise CodecError(f"codec 'encodec': bandwidth {bandwidth} is not one of the model's {cfg.target_bandwidths} (kbit/s)")
        self.bandwidth = float(bandwidth)
        n_q = model.quantizer.get_num_quantizers_for_bandwidth(self.bandwidth)
        self._setup(model, cfg.sampling_rate, cfg.frame_rate, [cfg.codebook_size] * n_q)

    def _codes(self, x: np.ndarray) -> np.ndarray:
        out = self.model.encode(self._tensor(x), bandwidth=self.bandwidth)
        return out.audio_codes[0, 0].T.cpu().numpy()  # (1, 1, n_q, T) -> (T, n_q)

    def _wave(self, codes: Any) -> np.ndarray:
        return self.model.decode(codes.T[None, None], [None])[0].reshape(-1).cpu().numpy()


class DacCodec(_TorchCodec):
    name = "dac"

    def __init__(self, path: str | None = "descript/dac_16khz", n_quantizers: int | None = None, device: str = "cpu") -> None:
        from transformers import DacModel

        self.options = {"path": path, "n_quantizers": n_quantizers, "device": device}
        model = _from_pretrained(self.name, DacModel, path, "descript/dac_16khz")
        cfg = model.config
        n_q = cfg.n_codebooks if n_quantizers is None else int(n_quantizers)
        if not 1 <= n_q <= cfg.n_codebooks:
            raise CodecError(f"codec 'dac': n_quantizers must be in 1..{cfg.n_codebooks}, got {n_quantizers!r}")
        self.n_q = n_q
        self._setup(model, cfg.sampling_rate, cfg.sampling_rate / cfg.hop_length, [cfg.codebook_size] * n_q)

    def _codes(self, x: np.ndarray) -> np.ndarray:
        return self.model.encode(self._tensor(x), n_quantizers=self.n_q).audio_codes[0, :self.n_q].T.cpu().numpy()

    def _wave(self, codes: Any) -> np.ndarray:
        return self.model.decode(audio_codes=codes.T[None]).audio_values.reshape(-1).cpu().numpy()


class Xcodec2Codec(_TorchCodec):
    name = "xcodec2"

    def __init__(self, path: str | None = "HKUSTAudio/xcodec2-hf", device: str = "cpu") -> None:
        from transformers import AutoFeatureExtractor, Xcodec2Model

        self.options = {"path": path, "device": device}
        model = _from_pretrained(self.name, Xcodec2Model, path, "HKUSTAudio/xcodec2-hf")
        self.features = _from_pretrained(self.name, AutoFeatureExtractor, path, "HKUSTAudio/xcodec2-hf")
        cfg = model.config
        self._setup(model, cfg.sampling_rate, cfg.sampling_rate / cfg.hop_length, [int(np.prod(cfg.quantization_levels))])

    def _codes(self, x: np.ndarray) -> np.ndarray:
        inputs = self.features(audio=x, sampling_rate=self.sample_rate, return_tensors="pt").to(self.device)
        out = self.model.encode(**inputs)
        codes = out.audio_codes[0, 0]
        if out.audio_codes_mask is not None:
            codes = codes[out.audio_codes_mask[0].reshape(-1).bool()]
        return codes.reshape(-1, 1).cpu().numpy()

    def _wave(self, codes: Any) -> np.ndarray:
        return self.model.decode(audio_codes=codes.T[None]).audio_values.reshape(-1).cpu().numpy()


class SnacCodec(_TorchCodec):
    name = "snac"
    _ORDER = ((0, 0), (1, 0), (2, 0), (2, 1), (1, 1), (2, 2), (2, 3))  # (scale, index within the frame)

    def __init__(self, path: str | None = "hubertsiuzdak/snac_24khz", device: str = "cpu") -> None:
        try:
            from snac import SNAC
        except ImportError:
            raise CodecError("codec 'snac' needs the package snac: `pip install snac`") from None
        self.options = {"path": path, "device": device}
        model = _from_pretrained(self.name, SNAC, path, "hubertsiuzdak/snac_24khz")
        if list(model.vq_strides) != [4, 2, 1]:
            raise CodecError(f"codec 'snac': only 3-scale models with vq_strides [4, 2, 1] are supported, got {model.vq_strides}")
        self._setup(model, model.sampling_rate, model.sampling_rate / model.hop_length / 4, [model.codebook_size] * 7)

    def _codes(self, x: np.ndarray) -> np.ndarray:
        c = [t[0].cpu().numpy() for t in self.model.encode(self.model.preprocess(self._tensor(x)))]
        n = len(c[0])
        return np.stack([c[s].reshape(n, -1)[:, j] for s, j in self._ORDER], axis=1)

    def _wave(self, codes: Any) -> np.ndarray:
        import torch

        n = codes.shape[0]
        scales = [torch.empty(n, 1 << s, dtype=torch.long, device=codes.device) for s in range(3)]
        for col, (s, j) in enumerate(self._ORDER):
            scales[s][:, j] = codes[:, col]
        return self.model.decode([t.reshape(1, -1) for t in scales]).reshape(-1).cpu().numpy()


@CODECS.register("encodec")
def encodec(path: str | None = "facebook/encodec_24khz", bandwidth: float = 6.0, device: str = "cpu") -> AudioCodec:
    return EncodecCodec(path=path, bandwidth=bandwidth, device=device)


@CODECS.register("dac")
def dac(path: str | None = "descript/dac_16khz", n_quantizers: int | None = None, device: str = "cpu") -> AudioCodec:
    return DacCodec(path=path, n_quantizers=n_quantizers, device=device)


@CODECS.register("xcodec2")
def xcodec2(path: str | None = "HKUSTAudio/xcodec2-hf", device: str = "cpu") -> AudioCodec:
    return Xcodec2Codec(path=path, device=device)


@CODECS.register("snac")
def snac(path: str | None = "hubertsiuzdak/snac_24khz", device: str = "cpu") -> AudioCodec:
    return SnacCodec(path=path, device=device)


def _not_bundled(name: str, what: str, source: str) -> Callable[..., AudioCodec]:
    def factory(path: str = "", device: str = "cpu") -> AudioCodec:
        raise CodecError(
            f"codec '{name}' ({what}) is not bundled: its model code ships in no Python package ({source}). "
            "To use it, wrap its tokenizer in a class with this module's AudioCodec interface and register it: "
            f"`@speechrl.audio.codecs.CODECS.register('my_{name}')`, then set tokenize.codec: my_{name}, tokenize.path: <weights>")

    return CODECS.register(name)(factory)


_not_bundled("bicodec", "BiCodec of Spark-TTS, the target tokens of UniSE, arXiv 2510.20441", "code: github.com/SparkAudio/Spark-TTS; weights: SparkAudio/Spark-TTS-0.5B")
_not_bundled("simcodec", "SimCodec, GenSE's single-quantizer codec, arXiv 2502.02942", "code and weights from the GenSE authors")
