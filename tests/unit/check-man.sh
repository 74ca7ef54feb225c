#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Renders a manual page and fails on any warning man/groff prints.
set -eu
out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$1" 2>&1 >/dev/null)
if [ -n "$out" ]; then
        printf '%s\n' "$out"
        exit 1
fi
