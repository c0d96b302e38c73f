"""fastlrnr/numerics/allocator.py: glibc keeps freed MiB-sized blocks for reuse once asked to."""

import platform

from fastlrnr.numerics.allocator import retain_freed_memory


def test_thresholds_are_set_on_glibc_and_the_call_is_idempotent():
    first = retain_freed_memory()
    assert retain_freed_memory() is first
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert first is True
