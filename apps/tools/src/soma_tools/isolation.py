"""Network isolation inside the sandbox's child process (standard library only: the child imports little).

Two layers, applied before the tool's module is imported:

1. **A network namespace** for a tool that declares no network: ``unshare(CLONE_NEWNET)`` (with
   ``CLONE_NEWUSER`` first tried as well when the process lacks CAP_SYS_ADMIN). The child then has only a
   loopback interface that is down: no packet leaves it, whatever the code does (raw ``_socket``, ctypes,
   a ``curl`` subprocess). It needs CAP_SYS_ADMIN or unprivileged user namespaces; a pod with all
   capabilities dropped and the RuntimeDefault seccomp profile has neither, so in the cluster this layer is
   usually absent and the result says so (``isolation`` = ``guard``). Where it works (root here, or a node
   allowing user namespaces) the result says ``netns+guard``.
2. **A socket guard** always: ``socket.socket.connect``/``connect_ex``/``sendto``/``sendmsg``,
   ``socket.getaddrinfo`` and ``gethostbyname`` are replaced so that only the declared hosts (and ports)
   resolve and connect; Unix sockets cannot connect either. This stops ordinary Python code (``httpx``,
   ``urllib``, ``asyncio``, ``socket.create_connection``); it does **not** stop code that goes around the
   ``socket`` module (``_socket`` directly, ctypes, a subprocess): it is a guard against mistakes and
   careless dependencies, not a security boundary.

The boundary in the cluster is the mesh: the tool service's egress is limited to the hosts the Mesh
phase's egress rules allow, and a declared host must be allowed there too.
"""
from __future__ import annotations

import ctypes
import ipaddress
import socket

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000


class NetworkDenied(PermissionError):
    """Raised inside the tool for a connection its declaration does not allow."""


def enter_network_namespace() -> bool:
    """Move this (single-threaded) process into a new, empty network namespace; False when not permitted."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    for flags in (CLONE_NEWNET, CLONE_NEWUSER | CLONE_NEWNET):
        if libc.unshare(flags) == 0:
            return True
    return False


def _split(host: str) -> tuple[str, int | None]:
    if host.startswith("["):
        address, _, port = host[1:].partition("]")
        return address.lower(), int(port[1:]) if port else None
    name, _, port = host.partition(":")
    return name.lower(), int(port) if port else None


class SocketGuard:
    """Only the declared ``host`` / ``host:port`` entries resolve and connect (none when the list is empty)."""

    def __init__(self, hosts: list[str] | tuple[str, ...]):
        self.rules: dict[str, set[int] | None] = {}
        for host in hosts:
            name, port = _split(host)
            ports = self.rules.setdefault(name, set())
            if ports is not None:
                if port is None:
                    self.rules[name] = None            # any port
                else:
                    ports.add(port)
        self.addresses: dict[str, set[int] | None] = {name: ports for name, ports in self.rules.items() if _is_ip(name)}

    def _port_ok(self, ports: set[int] | None, port: int | None) -> bool:
        return ports is None or port in ports

    def install(self) -> None:
        guard = self
        original_getaddrinfo = socket.getaddrinfo
        original = {name: getattr(socket.socket, name) for name in ("connect", "connect_ex", "sendto", "sendmsg")}

        def getaddrinfo(host, port, *args, **kwargs):
            name = host.decode() if isinstance(host, bytes) else str(host)
            name = name.lower().strip("[]")
            if name not in guard.rules:
                raise NetworkDenied(f"network access to {name!r} is not declared by this tool")
            number = _port_number(port)
            if not guard._port_ok(guard.rules[name], number):
                raise NetworkDenied(f"network access to {name}:{port} is not declared by this tool")
            answers = original_getaddrinfo(host, port, *args, **kwargs)
            for *_, address in answers:
                known = guard.addresses.setdefault(address[0].lower(), set())
                rule = guard.rules[name]
                if known is not None:
                    if rule is None:
                        guard.addresses[address[0].lower()] = None
                    else:
                        known.update(rule)
            return answers

        def check(sock, address) -> None:
            if sock.family not in (socket.AF_INET, socket.AF_INET6):
                raise NetworkDenied(f"{socket.AddressFamily(sock.family).name} connections are not allowed in tools")
            ip, port = str(address[0]).lower(), address[1]
            if ip not in guard.addresses or not guard._port_ok(guard.addresses[ip], port):
                raise NetworkDenied(f"network access to {ip}:{port} is not declared by this tool")

        def connect(self, address):
            check(self, address)
            return original["connect"](self, address)

        def connect_ex(self, address):
            check(self, address)
            return original["connect_ex"](self, address)

        def sendto(self, data, *args):
            check(self, args[-1])
            return original["sendto"](self, data, *args)

        def sendmsg(self, buffers, ancdata=(), flags=0, address=None):
            if address is not None:
                check(self, address)
            return original["sendmsg"](self, buffers, ancdata, flags, *(() if address is None else (address,)))

        socket.getaddrinfo = getaddrinfo
        socket.gethostbyname = lambda host: getaddrinfo(host, None, socket.AF_INET)[0][4][0]
        socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
        socket.socket.sendto, socket.socket.sendmsg = sendto, sendmsg


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def _port_number(port) -> int | None:
    if port is None:
        return None
    try:
        return int(port)
    except (TypeError, ValueError):
        try:
            return socket.getservbyname(str(port))
        except OSError:
            return None


def isolate(network: list[str] | None, *, namespace: bool = True) -> str:
    """Apply both layers for a tool's declaration; returns what is in force (``netns+guard`` or ``guard``).
    ``namespace=False`` skips the namespace (the executor's setting; a test uses it to show the guard alone)."""
    in_namespace = network is None and namespace and enter_network_namespace()
    SocketGuard(network or []).install()
    return "netns+guard" if in_namespace else "guard"
