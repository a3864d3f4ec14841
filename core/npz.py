"""Reading untrusted .npz archives safely: every member checked from its header before anything is loaded.

`np.load` on an upload would inflate every member in full (a 1 MB zip bomb is 1 GiB of zeros) and trusts the
archive's shapes. `read_npz` instead checks, in this order: the archive's member count and names (each one
expected, none twice), each member's declared uncompressed size and their total (`max_bytes`), the compression
method, then each member's .npy header (numpy.lib.format: dtype and shape) against its `Member` spec, and only
then reads exactly the bytes that header promises. Nothing is unpickled; object and structured dtypes are refused.
"""
from __future__ import annotations

import io
import math
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np
from numpy.lib import format as npformat

from .errors import FaceLabError


@dataclass(frozen=True)
class Member:
    """What one array of an archive may be: dtype kinds ("f", "i", "u", "U"...), rank, and the largest side."""
    kinds: str
    ndim: int
    max_side: int = 1 << 16
    shape: tuple[int, ...] | None = None   # exact shape, when fixed

    def check(self, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        if dtype.hasobject or dtype.fields is not None or dtype.kind not in self.kinds:
            raise FaceLabError(f"member {name!r} has dtype {dtype.str}, expected kind {'/'.join(self.kinds)}")
        if len(shape) != self.ndim or any(not 0 < s <= self.max_side for s in shape) \
                or (self.shape is not None and tuple(shape) != self.shape):
            want = self.shape if self.shape is not None else f"{self.ndim} dimensions of 1-{self.max_side}"
            raise FaceLabError(f"member {name!r} has shape {tuple(shape)}, expected {want}")


def read_npz(source: str | os.PathLike | bytes, spec: dict[str, Member], max_bytes: int,
             required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The arrays of an .npz (path or bytes) that passes `spec`; FaceLabError with the reason otherwise."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
    except FileNotFoundError as e:
        raise FaceLabError("the file is gone (upload it again)") from e
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error) as e:
        raise FaceLabError("not an .npz archive") from e
    with archive:
        infos = archive.infolist()
        if len(infos) > len(spec):
            raise FaceLabError(f"{len(infos)} members, at most {len(spec)} expected ({', '.join(spec)})")
        names = [info.filename[:-4] if info.filename.endswith(".npy") else info.filename for info in infos]
        unknown = [n for n in names if n not in spec]
        if unknown:
            raise FaceLabError(f"unexpected member {unknown[0][:40]!r} (expected {', '.join(spec)})")
        if len(set(names)) != len(names):
            raise FaceLabError("a member appears twice")
        missing = [n for n in required if n not in names]
        if missing:
            raise FaceLabError(f"member {missing[0]!r} is missing")
        total = sum(info.file_size for info in infos)
        if total > max_bytes:
            raise FaceLabError(f"{total} bytes uncompressed, at most {max_bytes} expected")
        out = {}
        for name, info in zip(names, infos):
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 0x1:
                raise FaceLabError(f"member {name!r} uses an unsupported compression or encryption")
            try:
                out[name] = _read_member(archive, info, name, spec[name])
            except FaceLabError:
                raise
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error, zlib.error,
                    NotImplementedError, RuntimeError, SyntaxError) as e:
                raise FaceLabError(f"member {name!r} is damaged ({type(e).__name__})") from e
        return out


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, member: Member) -> np.ndarray:
    with archive.open(info) as f:
        version = npformat.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(f, max_header_size=4096)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = npformat.read_array_header_2_0(f, max_header_size=4096)
        else:
            raise FaceLabError(f"member {name!r} has .npy format version {version}")
        dtype = np.dtype(dtype)
        member.check(name, dtype, tuple(shape))
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > info.file_size:
            raise FaceLabError(f"member {name!r} is truncated")
        data = f.read(nbytes + 1)
    if len(data) != nbytes:
        raise FaceLabError(f"member {name!r} holds {len(data)} bytes, its header says {nbytes}")
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C").copy()
