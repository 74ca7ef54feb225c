#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Connections for test-deny.sh, timed:
#
#   deny-traffic.py sink PORT                 (server namespace) accept on [::]:PORT (IPv4 too),
#                                             read and discard; prints "ready"
#   deny-traffic.py connect ADDR PORT         prints "ok SECS" once connected and a byte sent, or
#                                             "err ERRNO-NAME SECS"; gives up after 5 s ("timeout")
#   deny-traffic.py udp ADDR PORT             one datagram by sendto(): "ok SECS" / "err NAME SECS"
#   deny-traffic.py stream ADDR PORT SECS     connect, print "connected", then send without
#                                             pause for SECS: "ok" at the end, or "err NAME EPOCH"
#                                             (wall clock of the failure) as soon as a send fails
#
# Every loop is bounded.

import errno
import socket
import sys
import threading
import time


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def err_name(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__


def sink(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.listen(64)
    print("ready", flush=True)

    def drain(c):
        c.settimeout(60)
        try:
            while c.recv(65536):
                pass
        except OSError:
            pass
        c.close()

    while True:
        c, _ = s.accept()
        threading.Thread(target=drain, args=(c,), daemon=True).start()


def connect(addr, port):
    t0 = time.monotonic()
    s = socket.socket(family(addr), socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect((addr, port))
        s.send(b"x")
        print("ok %.3f" % (time.monotonic() - t0))
    except socket.timeout:
        print("timeout %.3f" % (time.monotonic() - t0))
    except OSError as e:
        print("err %s %.3f" % (err_name(e), time.monotonic() - t0))


def udp(addr, port):
    t0 = time.monotonic()
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    try:
        s.sendto(b"x", (addr, port))
        print("ok %.3f" % (time.monotonic() - t0))
    except OSError as e:
        print("err %s %.3f" % (err_name(e), time.monotonic() - t0))


def stream(addr, port, secs):
    s = socket.socket(family(addr), socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect((addr, port))
    print("connected", flush=True)
    buf = b"x" * 16384
    end = time.monotonic() + secs
    s.settimeout(0.2)
    while time.monotonic() < end:
        try:
            s.send(buf)
        except socket.timeout:
            continue
        except OSError as e:
            print("err %s %.6f" % (err_name(e), time.time()), flush=True)
            return
        time.sleep(0.001)
    print("ok", flush=True)


def main():
    cmd = sys.argv[1]
    if cmd == "sink":
        sink(int(sys.argv[2]))
    elif cmd == "connect":
        connect(sys.argv[2], int(sys.argv[3]))
    elif cmd == "udp":
        udp(sys.argv[2], int(sys.argv[3]))
    elif cmd == "stream":
        stream(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        sys.exit("unknown command " + cmd)


main()
