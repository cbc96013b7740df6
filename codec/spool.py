"""An append-only byte buffer for encoders whose output size must be written before the output:
the first ``memory`` bytes stay in memory, the rest wait in an anonymous temporary file (page
cache, not the process's memory; removed by the OS even if the process is killed)."""

from __future__ import annotations

import os
import tempfile

from .errors import EncodeError

__all__ = ["Spool", "SPOOL_MEMORY"]

#: Bytes kept in memory before a spool moves to a temporary file.
SPOOL_MEMORY = 4 << 20
_READ = 8 << 20


class Spool:
    """Blocks of bytes, written out later in the order added or in reverse (rANS words are made
    last piece first)."""

    def __init__(self, memory: int | None = None):
        self.memory = SPOOL_MEMORY if memory is None else memory
        self.blocks: list = []  # bytes, or (offset, size) in self.file
        self.size = 0
        self.file = None

    def add(self, data) -> None:
        data = bytes(data)
        if not data:
            return
        if self.file is None and self.size + len(data) > self.memory:
            self.file = tempfile.TemporaryFile()
            self.blocks = [self._store(b) for b in self.blocks]
        self.blocks.append(self._store(data) if self.file is not None else data)
        self.size += len(data)

    def _store(self, data: bytes) -> tuple[int, int]:
        offset = self.file.seek(0, os.SEEK_END)
        self.file.write(data)
        return offset, len(data)

    @property
    def block_count(self) -> int:
        """Blocks added so far (a range of them is written by :meth:`write_blocks`)."""
        return len(self.blocks)

    def write_to(self, sink, *, reverse: bool = False) -> None:
        """Write every block to ``sink`` (anything with ``write``), then release the spool."""
        try:
            self.write_blocks(sink, 0, len(self.blocks), reverse=reverse)
        finally:
            self.close()

    def write_blocks(self, sink, start: int, stop: int, *, reverse: bool = False) -> None:
        """Write blocks start..stop-1 to ``sink`` (in reverse order if asked); the spool stays."""
        if self.file is not None:
            self.file.flush()
        blocks = self.blocks[start:stop]
        for block in reversed(blocks) if reverse else blocks:
            if isinstance(block, bytes):
                sink.write(block)
                continue
            offset, size = block
            while size:
                chunk = os.pread(self.file.fileno(), min(size, _READ), offset)
                if not chunk:
                    raise EncodeError("a temporary file of the encoder ended early")
                sink.write(chunk)
                offset += len(chunk)
                size -= len(chunk)

    def close(self) -> None:
        self.blocks = []
        if self.file is not None:
            self.file.close()
            self.file = None
