import os

from bench import procfs

# A /proc/<pid>/stat line whose comm holds a space and a parenthesis, as `(sd-pam)` or
# `(python -m x)` can. Fields after comm: state ppid pgrp session tty tpgid flags minflt cminflt
# majflt cmajflt utime stime cutime cstime ...
STAT = "4242 (idgate (worker) 1) S 4000 4242 4242 0 -1 4194560 100 0 0 0 70 30 5 2 20 0 3 0"


def test_stat_line_gives_parent_and_cpu_ticks() -> None:
    """The parent pid and user/system ticks come from past the last `)` of comm."""
    line = procfs.parse_stat(STAT)
    assert line.parent == 4000
    assert line.user_ticks == 70 + 5
    assert line.system_ticks == 30 + 2


def test_rss_comes_from_vmrss_in_bytes() -> None:
    """VmRSS is reported in kB and returned in bytes; a zombie without it has none."""
    assert procfs.parse_rss_bytes("Name:\tx\nVmRSS:\t  2048 kB\nThreads:\t1\n") == 2048 * 1024
    assert procfs.parse_rss_bytes("Name:\tx\nState:\tZ (zombie)\n") == 0


def test_tree_holds_the_root_and_every_descendant_only() -> None:
    """Grandchildren belong to the tree, a sibling of the root does not."""
    parents = {10: 1, 11: 10, 12: 10, 13: 11, 20: 1}
    assert sorted(procfs.tree(10, parents)) == [10, 11, 12, 13]


def test_machine_busy_counts_everything_but_idle_and_iowait() -> None:
    """user, nice, system, irq, softirq and steal are busy; idle and iowait are not."""
    stat = "cpu  100 2 30 5000 40 6 7 8 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"
    assert procfs.parse_machine_busy(stat) == 100 + 2 + 30 + 6 + 7 + 8


def test_peak_rss_is_per_process_maximum() -> None:
    """Each pid keeps the largest value any sample saw, including pids seen only once."""
    samples = [{1: 10, 2: 50}, {1: 30, 2: 40}, {3: 5}]
    assert procfs.peak_rss(samples) == {1: 30, 2: 50, 3: 5}


def test_usage_of_this_process_is_positive() -> None:
    """Reading our own tree gives CPU time and a resident size for this process."""
    usage = procfs.usage(os.getpid())
    assert usage.cpu_seconds > 0
    assert usage.rss_bytes[os.getpid()] > 0
