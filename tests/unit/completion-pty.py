#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Completion through a real interactive bash on a pseudo-terminal: readline splits the line at
COMP_WORDBREAKS and puts in what the completion offers, as it does for someone at a terminal.

    completion-pty.py SETUP < CASES

SETUP is sourced first (it loads the completions and defines the commands as shell functions that
print WORDS<w1|w2|...>). Each line of CASES is INPUT, a tab, and EXPECTED: INPUT is typed, then
Tab, then Enter; the words the command then runs with, joined by '|', must be EXPECTED. Prints one
ok/FAIL line per case and exits 1 if any failed.
"""
import os
import pty
import re
import select
import sys
import time


def read_until(fd, pattern, timeout=8.0):
    buf = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
        if not r:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
        m = re.search(pattern, buf)
        if m:
            return m
    return None


def main():
    setup = sys.argv[1]
    cases = [l.rstrip("\n").split("\t") for l in sys.stdin if l.strip() and not l.startswith("#")]
    env = dict(os.environ, PS1="$ ", PS2="> ", TERM="dumb", INPUTRC="/dev/null", HISTFILE="/dev/null")
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe("bash", ["bash", "--norc", "--noprofile", "-i"], env)
    os.write(fd, f"source {setup}; echo READY$((6*7))\n".encode())
    if not read_until(fd, rb"READY42"):
        print("FAIL bash did not start or the setup failed")
        sys.exit(1)
    failed = 0
    for typed, want in cases:
        # ^U: an empty line first; Tab completes; Enter runs it
        os.write(fd, b"\x15" + typed.encode() + b"\t")
        time.sleep(0.3)
        os.write(fd, b"\n")
        m = read_until(fd, rb"WORDS<([^>\r\n]*)>\r?\n")
        got = m.group(1).decode() if m else None
        if got == want:
            print(f"ok   typed '{typed}' Tab: {want}")
        else:
            print(f"FAIL typed '{typed}' Tab: ran {got!r}, expected {want!r}")
            failed += 1
    os.write(fd, b"\x15exit\n")
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    print(f"{len(cases) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


main()
