"""Read-only memories' initial images, moved out of the Verilog and loaded at run time.

A network's weights, thresholds and other parameters are the initial images of read-only
memories in the generated Verilog. Built into the Verilator model, they would make every
re-trained or re-compressed network a new build although its hardware is the same. So the
simulation builds a variant of the Verilog in which each such image is replaced by a loader
(an ``initial`` block that reads a ``$readmemh`` file named by a ``+<plusarg>=FILE``
argument), keys the build by that variant (images excluded), and hands the images to every
run as files. Synthesis and the Verilog written to a run directory keep the inline images.

The form handled is the one Yosys's ``write_verilog`` (behind Amaranth's Verilog back end)
gives every memory with an initial image: ``reg [W-1:0] name [D-1:0];`` and an ``initial
begin name[i] = <sized literal>; ... end`` block. Only memories nothing else assigns are
moved (writable ones, FIFOs and buffers, keep their inline image, which is part of the
architecture). An initial block in any other form, or holding an ``x``/``z`` bit, stays
where it is: the design is still simulated exactly, it just is not shared between weight
sets. So the generators keep every trained value in a read-only memory (a codebook's value
table too, read combinationally), none in logic or in a register's initial value; the
integer multipliers of a residual join, which its module states, are architecture.

A loader whose plusarg is missing or whose file cannot be opened stops the simulation with
:data:`LOADER_TAG` and its plusarg in the message, so the runner can name the memory.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

LOADER_TAG = "codesign-memory-image"
"""Marks a loader's failure message in the simulator's log."""

PLUSARG_PREFIX = "codesign_mem_"
"""A memory image's plusarg is this prefix and the memory's index in the Verilog."""

_NAME = r"(?:[A-Za-z_][A-Za-z0-9_$]*|\\\S+)"
_MEMORY_DECL = re.compile(
    rf"^\s*reg\s+(?:\[(\d+):(\d+)\]\s*)?({_NAME})\s*\[(\d+):(\d+)\]\s*;\s*$")
_WORD_INIT = re.compile(
    rf"^\s*({_NAME})\s*\[\s*(\d+)\s*\]\s*=\s*(\d+)'([hdbo])([0-9a-fA-F_]+)\s*;\s*$")
_MODULE = re.compile(rf"^\s*module\s+({_NAME})")
_TARGET = re.compile(rf"^\s*({_NAME})\s*\[")
_FAILURE = re.compile(rf"{LOADER_TAG} ({PLUSARG_PREFIX}\d+): ([^\n]*)")
_RADIX = {"h": 16, "d": 10, "b": 2, "o": 8}
BACKSLASH = "\\"
"""Starts an escaped Verilog identifier (which ends at the next white space)."""


@dataclass(frozen=True)
class MemoryImage:
    """The initial image of one read-only memory, loaded by the plusarg ``plusarg``."""

    plusarg: str
    module: str
    """The Verilog module holding the memory (as written, escaped names with their ``\\``)."""
    memory: str
    width: int
    words: tuple[tuple[int, int], ...]
    """(address, value) of every initialised word, in address order."""

    @property
    def label(self) -> str:
        """``module.memory`` as a reader would write it (for messages)."""
        return f"{self.module.lstrip(BACKSLASH)}.{self.memory.lstrip(BACKSLASH)}"

    def hex_text(self) -> str:
        """The image as a ``$readmemh`` file: an ``@address`` before every run of words."""
        digits = max(1, -(-self.width // 4))
        lines = []
        expected = None
        for address, value in self.words:
            if address != expected:
                lines.append(f"@{address:x}")
            lines.append(f"{value:0{digits}x}")
            expected = address + 1
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class LoadableVerilog:
    """Verilog whose read-only memory images are loaded at run time, and those images."""

    verilog: str
    """The Verilog with a loader in place of each moved image: what is built."""
    images: tuple[MemoryImage, ...]


def split_memory_images(verilog: str) -> LoadableVerilog:
    """Move the initial image of every read-only memory out of ``verilog``.

    The returned Verilog depends on the memories' names, widths and depths only, so two
    designs that differ in their images alone give the same text (and share a build).
    """
    lines = verilog.split("\n")
    moved: dict[int, MemoryImage] = {}  # first line of an initial block -> its image
    for module in _modules(lines):
        for k, image in module.images(first_index=len(moved)):
            moved[k] = image
    out: list[str] = []
    k = 0
    while k < len(lines):
        image = moved.get(k)
        if image is None:
            out.append(lines[k])
            k += 1
        else:
            out.extend(_loader(image))
            k += len(image.words) + 2
    return LoadableVerilog("\n".join(out), tuple(moved.values()))


def write_memory_images(images: Sequence[MemoryImage], directory: Path) -> list[str]:
    """Write each image to ``directory`` as a ``$readmemh`` file; the plusargs that load them."""
    plusargs = []
    for image in images:
        path = directory / f"{image.plusarg}.hex"
        path.write_text(image.hex_text(), encoding="ascii")
        plusargs.append(f"+{image.plusarg}={path}")
    return plusargs


def loader_failure(log: str, images: Sequence[MemoryImage]) -> str | None:
    """What a loader reported in a simulator's ``log``, naming its memory; None if nothing."""
    found = _FAILURE.search(log)
    if found is None:
        return None
    plusarg, what = found.groups()
    label = next((image.label for image in images if image.plusarg == plusarg), "?")
    return f"memory image of {label} (+{plusarg}=FILE): {what.strip()}"


@dataclass
class _Module:
    """What one module of the Verilog declares and assigns, gathered in one pass."""

    name: str
    memories: dict[str, int]
    """Memory name -> word width."""
    inits: list[tuple[int, list[str]]]
    """(line of ``initial begin``, the block's statements) of every plain initial block."""
    assigned: set[str]
    """Names some line outside an initial block starts with ``name[`` (a memory write)."""

    def images(self, first_index: int) -> list[tuple[int, MemoryImage]]:
        """(line, image) of every initial block that sets the words of a read-only memory."""
        found = []
        for k, block in self.inits:
            image = self._image(block, first_index + len(found))
            if image is not None:
                found.append((k, image))
        return found

    def _image(self, block: list[str], index: int) -> MemoryImage | None:
        """The image ``block`` sets, if it sets words of one declared memory nothing else
        assigns, each to a sized literal (no ``x``/``z`` bits) that fits the word."""
        words: dict[int, int] = {}
        name = None
        for statement in block:
            found = _WORD_INIT.match(statement)
            if found is None:
                return None
            target, address, size, radix, digits = found.groups()
            if name not in (None, target.strip()):
                return None
            name = target.strip()
            width = self.memories.get(name)
            if width is None or int(size) != width or int(address) in words:
                return None
            try:
                value = int(digits.replace("_", ""), _RADIX[radix])
            except ValueError:
                return None
            if value >> width:
                return None
            words[int(address)] = value
        if name is None or name in self.assigned:
            return None
        return MemoryImage(f"{PLUSARG_PREFIX}{index}", self.name, name, self.memories[name],
                           tuple(sorted(words.items())))


def _modules(lines: list[str]) -> list[_Module]:
    """Every module of the Verilog with its memories, initial blocks and assigned names."""
    modules: list[_Module] = []
    current = _Module("", {}, [], set())
    k = 0
    while k < len(lines):
        line = lines[k]
        header = _MODULE.match(line)
        if header:
            current = _Module(header.group(1), {}, [], set())
            modules.append(current)
        declared = _MEMORY_DECL.match(line)
        if declared:
            high, low = declared.group(1, 2)
            width = abs(int(high) - int(low)) + 1 if high is not None else 1
            current.memories[declared.group(3).strip()] = width
        if line.strip() == "initial begin":
            body = _initial_block(lines, k)
            if body is not None:
                current.inits.append((k, body))
                k += len(body) + 2
                continue
        target = _TARGET.match(line)
        if target:
            current.assigned.add(target.group(1).strip())
        k += 1
    return modules


def _initial_block(lines: list[str], k: int) -> list[str] | None:
    """The statements of the ``initial begin`` block at line ``k`` up to its first ``end``
    line (None if there is none)."""
    body = []
    for line in lines[k + 1:]:
        if line.strip() == "end":
            return body
        body.append(line)
    return None


def _loader(image: MemoryImage) -> list[str]:
    """The Verilog that loads ``image`` at time 0 from the file its plusarg names.

    Verilator only warns when a ``$readmemh`` file is missing (the memory would silently
    stay empty), so the file is opened first and a failure stops the simulation."""
    var = image.plusarg
    target = image.memory + (" " if image.memory.startswith(BACKSLASH) else "")
    fail = f'$fatal(1, "{LOADER_TAG} {var}: '
    return [
        f"  string {var}_file;",
        f"  integer {var}_fd;",
        "  initial begin",
        f'    if (!$value$plusargs("{var}=%s", {var}_file))',
        f'      {fail}no file given");',
        f'    {var}_fd = $fopen({var}_file, "r");',
        f"    if ({var}_fd == 0)",
        f'      {fail}cannot open %s", {var}_file);',
        f"    $fclose({var}_fd);",
        f"    $readmemh({var}_file, {target});",
        "  end",
    ]
