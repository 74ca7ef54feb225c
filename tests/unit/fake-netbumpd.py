#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A stand-in for netbumpd's Varlink socket, for testing what netbumpctl sends and how it prints
the replies, without privileges or a shaper.

    fake-netbumpd.py SOCKET LOG RULES

Each request goes to LOG as one line: the method and its parameters, keys sorted. List replies
with the rules in the JSON file RULES (read anew for every call) and, given a target, applies:
the rule of that very target or null. Set replies with the rule the parameters describe, inside
"all" unless it is "all". Unset always succeeds. Top replies with the rules and the processes in
the JSON file RULES.top, if there is one.
"""
import json
import os
import socket
import sys

IFACE = "io.netbump.Manager."


def reply(method, params, rules_path):
    if method == IFACE + "List":
        with open(rules_path) as f:
            rules = json.load(f)
        out = {"rules": rules}
        if "target" in params:
            out["applies"] = next((r["target"] for r in rules if r.get("target") == params["target"]), None)
        return {"parameters": out}
    if method == IFACE + "Set":
        target = params["target"]
        rule = {
            "target": target,
            "kind": "all" if target == "all" else target.split(":")[0].split("@")[0],
            "up": params.get("up", 0),
            "down": params.get("down", 0),
            "min_up": params.get("min_up", 0),
            "min_down": params.get("min_down", 0),
            "priority": params.get("priority", "normal"),
            "parent": None if target == "all" else "all",
            "complete": True,
        }
        return {"parameters": {"rule": rule}}
    if method == IFACE + "Top":
        with open(rules_path) as f:
            rules = json.load(f)
        procs = []
        if os.path.exists(rules_path + ".top"):
            with open(rules_path + ".top") as f:
                procs = json.load(f)
        return {"parameters": {"processes": procs, "rules": rules, "accounting": True, "interval_usec": 1000000}}
    if method == IFACE + "Unset":
        return {"parameters": {}}
    return {"error": "org.varlink.service.MethodNotFound", "parameters": {"method": method}}


def serve(conn, log_path, rules_path):
    buf = b""
    with conn:
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                params = msg.get("parameters") or {}
                with open(log_path, "a") as log:
                    log.write(msg["method"][len(IFACE):] + " " + json.dumps(params, sort_keys=True) + "\n")
                conn.sendall(json.dumps(reply(msg["method"], params, rules_path)).encode() + b"\0")


def main():
    path, log_path, rules_path = sys.argv[1:4]
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path + ".tmp")
    srv.listen(8)
    os.rename(path + ".tmp", path)  # there once it accepts
    while True:
        conn, _ = srv.accept()
        try:
            serve(conn, log_path, rules_path)
        except (OSError, ValueError, KeyError) as e:
            print(f"fake-netbumpd: {e}", file=sys.stderr)


main()
