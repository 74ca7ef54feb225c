#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Downloads iperf3 cannot make, for test-limit-proto.sh: a sender in the server namespace (root)
# and a receiver in the client namespace (the limited user) that counts what it gets.
#
#   proto-traffic.py serve udp ADDR PORT SIZE BPS SECS    wait for a datagram on ADDR:PORT, then send
#                                                        SIZE-byte datagrams back at BPS for SECS
#   proto-traffic.py serve tcp-dstopts ADDR PORT SECS     accept on [ADDR]:PORT (IPv6), put a
#                                                        destination options header on every segment
#                                                        (IPV6_DSTOPTS) and send as fast as it can
#   proto-traffic.py serve icmp ADDR SIZE BPS SECS        on the first echo request to ADDR, send
#                                                        SIZE-byte echo replies with its identifier
#                                                        at BPS for SECS (raw socket)
#   proto-traffic.py serve icmp-count ADDR SECS SKIP      count the echo requests to ADDR (raw
#                                                        socket); prints their bits/s, as recv
#   proto-traffic.py send icmp ADDR SIZE BPS SECS         as a client: SIZE-byte echo requests
#                                                        to ADDR at BPS for SECS (ping socket)
#   proto-traffic.py recv udp|tcp ADDR PORT SECS SKIP     as a client; prints the payload bits/s
#   proto-traffic.py recv icmp ADDR SECS SKIP             received from SKIP to SECS seconds after
#                                                        the first byte, 0 if none came (ICMP: a
#                                                        ping socket that sends a small echo
#                                                        request every 100 ms)
#
# A server prints "ready" once it listens. Every loop is bounded by SECS; the receiver gives up
# 5 s after nothing came.

import socket
import struct
import sys
import time


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def ready():
    print("ready", flush=True)


def pace(start, sent_bytes, bps):
    """Sleep until sent_bytes are due at bps since start."""
    due = start + sent_bytes * 8 / bps
    d = due - time.monotonic()
    if d > 0:
        time.sleep(d)


def serve_udp(addr, port, size, bps, secs):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.bind((addr, port))
    s.settimeout(20)
    ready()
    _, peer = s.recvfrom(64)
    s.connect(peer)
    data = b"x" * size
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < secs:
        try:
            s.send(data)
        except OSError:
            pass  # a full queue: the sender does not care, as UDP senders do not
        sent += size
        pace(start, sent, bps)


def serve_tcp_dstopts(addr, port, secs):
    ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # On the listener, so that accepted connections have it from their SYN-ACK on and size their
    # segments for it (set on a connected socket, it leaves the MSS as it was, and full segments
    # no longer fit the MTU). Next header (set by the kernel), length 0 (8 bytes), PadN over the
    # 4 bytes left.
    ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_DSTOPTS, bytes([0, 0, 1, 4, 0, 0, 0, 0]))
    ls.bind((addr, port))
    ls.listen(1)
    ls.settimeout(20)
    ready()
    c, _ = ls.accept()
    c.settimeout(5)
    data = b"x" * 65536
    start = time.monotonic()
    while time.monotonic() - start < secs:
        try:
            c.send(data)
        except socket.timeout:
            pass
        except OSError:
            break


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def serve_icmp(addr, size, bps, secs):
    fam = family(addr)
    if fam == socket.AF_INET:
        s = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        req, rep = 8, 0
    else:
        s = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        req, rep = 128, 129
    s.settimeout(20)
    ready()
    deadline = time.monotonic() + 20
    while True:
        pkt, peer = s.recvfrom(65535)
        if fam == socket.AF_INET:
            pkt = pkt[(pkt[0] & 0xF) * 4:]  # IPv4 raw sockets get the IP header
        if len(pkt) >= 8 and pkt[0] == req:
            ident = pkt[4:6]
            break
        if time.monotonic() > deadline:
            return
    payload = b"y" * (size - 8)
    hdr = bytes([rep, 0, 0, 0]) + ident + b"\0\1"
    if fam == socket.AF_INET:
        c = checksum(hdr + payload)
        hdr = hdr[:2] + struct.pack("!H", c) + hdr[4:]
    # ICMPv6: the kernel fills the checksum in (RFC 3542 section 3.1)
    data = hdr + payload
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < secs:
        try:
            s.sendto(data, peer)
        except OSError:
            pass
        sent += size
        pace(start, sent, bps)


def icmp_socket(addr, kind):
    """A raw (server) or ping (client) socket for addr's family, and its echo request type."""
    fam = family(addr)
    proto = socket.IPPROTO_ICMP if fam == socket.AF_INET else socket.IPPROTO_ICMPV6
    return socket.socket(fam, kind, proto), 8 if fam == socket.AF_INET else 128


def serve_icmp_count(addr, secs, skip):
    s, req = icmp_socket(addr, socket.SOCK_RAW)
    s.settimeout(0.2)
    ready()

    def one():
        pkt = s.recv(65535)
        if s.family == socket.AF_INET:
            pkt = pkt[(pkt[0] & 0xF) * 4:]
        return len(pkt) - 8 if len(pkt) >= 8 and pkt[0] == req else -1

    def requests():
        while True:
            n = one()
            if n >= 0:
                return n

    print("%.0f" % recv_count(requests, secs, skip))


def send_icmp(addr, size, bps, secs):
    s, req = icmp_socket(addr, socket.SOCK_DGRAM)
    s.settimeout(1)
    data = bytes([req, 0, 0, 0, 0, 0, 0, 1]) + b"z" * (size - 8)
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < secs:
        try:
            s.sendto(data, (addr, 0))
        except (OSError, socket.timeout):
            pass
        sent += size
        pace(start, sent, bps)


def recv_count(sock_recv, secs, skip, keepalive=None):
    """Payload bits/s received from skip to secs seconds after the first byte."""
    first = None
    counted = 0
    last_ka = 0.0
    begin = time.monotonic()
    while True:
        now = time.monotonic()
        if keepalive and now - last_ka >= 0.1:
            keepalive()
            last_ka = now
        if first is not None and now - first >= secs:
            break
        try:
            n = sock_recv()
        except socket.timeout:
            if now - (begin if first is None else first) > secs + 5:
                break
            continue
        if n == 0:
            break
        now = time.monotonic()
        if first is None:
            first = now
        elif now - first >= skip:
            counted += n
    if first is None:
        # a download every datagram of which lost a fragment: 0, which the caller judges
        print("nothing received", file=sys.stderr)
    return counted * 8 / (secs - skip)


def main():
    a = sys.argv[1:]
    if a[:2] == ["serve", "udp"]:
        serve_udp(a[2], int(a[3]), int(a[4]), float(a[5]), float(a[6]))
    elif a[:2] == ["serve", "tcp-dstopts"]:
        serve_tcp_dstopts(a[2], int(a[3]), float(a[4]))
    elif a[:2] == ["serve", "icmp"]:
        serve_icmp(a[2], int(a[3]), float(a[4]), float(a[5]))
    elif a[:2] == ["serve", "icmp-count"]:
        serve_icmp_count(a[2], float(a[3]), float(a[4]))
    elif a[:2] == ["send", "icmp"]:
        send_icmp(a[2], int(a[3]), float(a[4]), float(a[5]))
    elif a[:2] == ["recv", "udp"]:
        addr, port, secs, skip = a[2], int(a[3]), float(a[4]), float(a[5])
        s = socket.socket(family(addr), socket.SOCK_DGRAM)
        s.connect((addr, port))
        s.settimeout(0.2)
        s.send(b"go")
        print("%.0f" % recv_count(lambda: len(s.recv(65535)), secs, skip))
    elif a[:2] == ["recv", "tcp"]:
        addr, port, secs, skip = a[2], int(a[3]), float(a[4]), float(a[5])
        s = socket.create_connection((addr, port), timeout=5)
        s.settimeout(0.2)
        print("%.0f" % recv_count(lambda: len(s.recv(1 << 20)), secs, skip))
    elif a[:2] == ["recv", "icmp"]:
        addr, secs, skip = a[2], float(a[3]), float(a[4])
        fam = family(addr)
        s = socket.socket(fam, socket.SOCK_DGRAM, socket.IPPROTO_ICMP if fam == socket.AF_INET
                          else socket.IPPROTO_ICMPV6)
        s.settimeout(0.1)
        req = bytes([8 if fam == socket.AF_INET else 128, 0, 0, 0, 0, 0, 0, 1]) + b"ping"

        def ka():
            s.sendto(req, (addr, 0))

        # ping sockets hand over the ICMP message without the IP header
        print("%.0f" % recv_count(lambda: max(len(s.recv(65535)) - 8, 0), secs, skip, ka))
    else:
        sys.exit("usage: see the head of " + sys.argv[0])


if __name__ == "__main__":
    main()
