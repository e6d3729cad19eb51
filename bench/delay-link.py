# A point-to-point IP link with a fixed one-way delay, for the data-plane benchmark on kernels without
# sch_netem (tc's netem is the usual way; this one has no such qdisc). Two TUN devices: every packet
# read from one is written to the other `delay_ms` later, in order. Usage:
#   python3 delay-link.py HOST_IF PEER_IF DELAY_MS
# Prints "ready" once both devices exist (the caller then moves PEER_IF into its namespace and
# addresses both). Exits when stdin closes, so the devices go when the benchmark does, even if it is
# killed.
import collections
import fcntl
import os
import select
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def tun(name):
    fd = os.open('/dev/net/tun', os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def main():
    host_if, peer_if, delay_ms = sys.argv[1], sys.argv[2], float(sys.argv[3])
    delay = delay_ms / 1000
    a, b = tun(host_if), tun(peer_if)
    # A link is not a process waiting for a core: netem runs in the kernel's softirq. Real-time
    # priority keeps the delay near `delay_ms` while Envoys and clients keep both cores busy (the
    # bridge only wakes per packet, so it cannot starve them). Without root it runs as it is.
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except OSError:
        pass
    other = {a: b, b: a}
    # One delay for every packet, so due times only grow: a FIFO is the schedule.
    queue = collections.deque()
    dropped = 0
    print('ready', flush=True)
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else None
        readable, _, _ = select.select([a, b, 0], [], [], timeout)
        now = time.monotonic()
        for fd in readable:
            if fd == 0:
                if not os.read(0, 4096):
                    if dropped:
                        print(f'delay-link: dropped {dropped} packets', file=sys.stderr)
                    return
                continue
            while True:
                try:
                    packet = os.read(fd, 65536)
                except BlockingIOError:
                    break
                queue.append((now + delay, other[fd], packet))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, fd, packet = queue.popleft()
            try:
                os.write(fd, packet)
            except OSError:
                dropped += 1  # the receiving device is full or not up yet: a real link drops too


if __name__ == '__main__':
    main()
