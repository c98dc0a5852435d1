#!/usr/bin/env python3
"""Write the BTF of a kernel image to a file that `bpftool btf dump file` reads.

    scripts/kernel-btf.py IMAGE OUT

IMAGE is a kernel image as Debian's packages ship it (boot/vmlinuz-*): for arm64 a raw
Image, which has no ELF section table to find .BTF by. The BTF is found by its header
instead (include/uapi/linux/btf.h): magic 0xeB9F, version 1, flags, hdr_len, then the
offsets and lengths of the type and string sections, both relative to the end of the
header. A match must be self-consistent (sections in bounds, strings that begin and end
with NUL), and the largest one is taken. gzip, xz and zstd images are decompressed first
(Debian 12's arm64 Image is not compressed); an uncompressed Image or an ELF vmlinux is
searched as it is.
"""

import lzma
import struct
import subprocess
import sys
import zlib

BTF_MAGIC = b"\x9f\xeb"  # 0xeB9F, little-endian (arm64 and x86 kernels)
BTF_VERSION = 1
HEADER = struct.Struct("<HBBIIIII")  # magic, version, flags, hdr_len, type_off/len, str_off/len


def decompress(data):
    if data[:2] == b"\x1f\x8b":
        # A gzip member may be followed by padding, which gzip.decompress refuses.
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)
    if data[:6] == b"\xfd7zXZ\x00":
        return lzma.decompress(data)
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return subprocess.run(["zstd", "-dcq"], input=data, capture_output=True, check=True).stdout
    return data


def blob_at(data, pos):
    """The length of a BTF blob that starts at pos, or 0 if the bytes there are not one."""
    if pos + HEADER.size > len(data):
        return 0
    _, version, flags, hdr_len, type_off, type_len, str_off, str_len = HEADER.unpack_from(data, pos)
    if version != BTF_VERSION or flags != 0 or hdr_len < HEADER.size or hdr_len > 256:
        return 0
    if type_len == 0 or str_len == 0 or type_off % 4 or type_len % 4:
        return 0
    length = hdr_len + max(type_off + type_len, str_off + str_len)
    if pos + length > len(data):
        return 0
    # The two sections do not overlap, and the string section is NUL-delimited at both ends
    # (its first string is the empty name of anonymous types).
    if type_off < str_off < type_off + type_len or str_off < type_off < str_off + str_len:
        return 0
    strings = pos + hdr_len + str_off
    if data[strings] != 0 or data[strings + str_len - 1] != 0:
        return 0
    return length


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: kernel-btf.py IMAGE OUT")
    with open(sys.argv[1], "rb") as f:
        data = decompress(f.read())
    best_pos, best_len = -1, 0
    pos = data.find(BTF_MAGIC)
    while pos >= 0:
        length = blob_at(data, pos)
        if length > best_len:
            best_pos, best_len = pos, length
        pos = data.find(BTF_MAGIC, pos + 1)
    if best_len == 0:
        sys.exit(f"kernel-btf.py: no BTF found in {sys.argv[1]} (a kernel without CONFIG_DEBUG_INFO_BTF?)")
    with open(sys.argv[2], "wb") as f:
        f.write(data[best_pos : best_pos + best_len])
    print(f"BTF at offset {best_pos:#x}, {best_len} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
